#if canImport(Glibc)
import Glibc
#endif

/// What the host needs to know of a shared object before loading it, read from the file.
///
/// Why: an image with Swift code in it must never be dlclose'd (the Swift runtime keeps pointers
/// into its metadata, and a later lookup faults), while a plain C image can be. Every Swift image
/// needs libswiftCore, and so does a C plugin built as a SwiftPM product (the Swift driver links
/// it and adds a Swift image constructor), so the DT_NEEDED list tells them apart. Not seen: a
/// plugin built with the Swift standard library linked statically, or one that gets Swift code
/// only through a library it needs.
///
/// Reads ELF64 little-endian files (x86_64 and aarch64; nothing here is specific to a machine)
/// through the program headers, as ld.so does: PT_DYNAMIC for the dynamic entries, PT_LOAD to
/// turn DT_STRTAB's address into a file offset. Section headers are optional for loading, so a
/// stripped or lying section table changes nothing. Every offset and size is checked against
/// the file: a truncated or hostile file throws, and nothing read is larger than the caps below.
public enum ELFImage {
    /// The DT_NEEDED names, in file order.
    public static func neededLibraries(of path: String) throws(ELFImageError) -> [String] {
        let file = try ReadOnlyFile(path)
        func fail(_ reason: String) -> ELFImageError { ELFImageError(file: path, reason: reason) }

        let header = try file.bytes(at: 0, count: 64, what: "ELF header")
        guard header.prefix(4).elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else { throw fail("not an ELF file") }
        guard header[4] == 2 else { throw fail("not a 64-bit ELF file") }
        guard header[5] == 1 else { throw fail("not a little-endian ELF file") }
        let programHeaders = header.uint64(at: 32)
        let programHeaderSize = Int(header.uint16(at: 54))
        let programHeaderCount = Int(header.uint16(at: 56))
        guard programHeaderSize >= 56 else { throw fail("program header entries of \(programHeaderSize) bytes, fewer than 56") }
        // 0xffff means the real count is elsewhere (PN_XNUM): no shared object has that many.
        guard programHeaderCount > 0, programHeaderCount < 0xffff else { throw fail("\(programHeaderCount) program headers") }
        let table = try file.bytes(at: programHeaders, count: programHeaderSize * programHeaderCount, what: "program headers")

        var dynamic: (offset: UInt64, size: UInt64)?
        var loads: [(address: UInt64, offset: UInt64, size: UInt64)] = []
        for index in 0..<programHeaderCount {
            let entry = index * programHeaderSize
            switch table.uint32(at: entry) {
            case 1:  // PT_LOAD
                loads.append((table.uint64(at: entry + 16), table.uint64(at: entry + 8), table.uint64(at: entry + 32)))
            case 2:  // PT_DYNAMIC
                dynamic = (table.uint64(at: entry + 8), table.uint64(at: entry + 32))
            default:
                break
            }
        }
        // A static executable or a bare object needs nothing.
        guard let dynamic else { return [] }
        guard dynamic.size <= maximumDynamicSize else { throw fail("a dynamic section of \(dynamic.size) bytes") }
        let entries = try file.bytes(at: dynamic.offset, count: Int(dynamic.size), what: "dynamic section")

        var needed: [UInt64] = []
        var stringTable: UInt64?
        var stringTableSize: UInt64?
        for entry in stride(from: 0, to: entries.count - 15, by: 16) {
            let tag = entries.uint64(at: entry)
            let value = entries.uint64(at: entry + 8)
            if tag == 0 { break }  // DT_NULL ends the list; the rest is padding
            switch tag {
            case 1: needed.append(value)  // DT_NEEDED
            case 5: stringTable = value  // DT_STRTAB
            case 10: stringTableSize = value  // DT_STRSZ
            default: break
            }
        }
        guard !needed.isEmpty else { return [] }
        guard let stringTable, let stringTableSize else { throw fail("DT_NEEDED without DT_STRTAB and DT_STRSZ") }

        // DT_STRTAB is an address: the PT_LOAD segment holding it says where it is in the file.
        guard let segment = loads.first(where: { stringTable >= $0.address && stringTable - $0.address < $0.size }) else {
            throw fail("string table address 0x\(String(stringTable, radix: 16)) is in no loaded segment")
        }
        let stringsOffset = segment.offset &+ (stringTable - segment.address)
        guard stringsOffset >= segment.offset, stringsOffset <= file.size, stringTableSize <= file.size - stringsOffset,
              stringTableSize <= segment.size - (stringTable - segment.address) else {
            throw fail("string table (\(stringTableSize) bytes at offset \(stringsOffset)) runs past its segment or the file")
        }

        return try needed.map { (nameOffset: UInt64) throws(ELFImageError) -> String in
            guard nameOffset < stringTableSize else { throw fail("DT_NEEDED name offset \(nameOffset) past the string table") }
            let length = min(stringTableSize - nameOffset, UInt64(maximumNameLength))
            let bytes = try file.bytes(at: stringsOffset + nameOffset, count: Int(length), what: "DT_NEEDED name")
            guard let end = bytes.firstIndex(of: 0) else { throw fail("unterminated DT_NEEDED name") }
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// Whether the image needs the Swift runtime, and so must stay mapped. Throws when the file
    /// cannot be read as ELF: callers deciding whether to unmap should then keep it (closing a
    /// Swift image crashes the host later; keeping a C one costs only its mapping).
    public static func linksSwiftRuntime(_ path: String) throws(ELFImageError) -> Bool {
        try neededLibraries(of: path).contains { $0.hasPrefix("libswiftCore") }
    }

    /// A real dynamic section is a few hundred bytes; this caps what a hostile header can make
    /// us allocate.
    static let maximumDynamicSize: UInt64 = 1 << 20
    static let maximumNameLength = 4096
}

/// A file that cannot be read as an ELF64 little-endian image: its path, and why.
public struct ELFImageError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// An open file read at offsets, each read checked against the file's size.
private final class ReadOnlyFile {
    let path: String
    let descriptor: Int32
    let size: UInt64

    init(_ path: String) throws(ELFImageError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ELFImageError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            // Closed here: `size` is not set yet, so this throw does not run deinit.
            close(descriptor)
            throw ELFImageError(file: path, reason: "not a regular file")
        }
        size = UInt64(status.st_size)
    }

    deinit { close(descriptor) }

    /// Exactly `count` bytes at `offset`, or an error naming `what` ran past the end.
    func bytes(at offset: UInt64, count: Int, what: String) throws(ELFImageError) -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw ELFImageError(file: path, reason: "truncated: \(what) (\(count) bytes at offset \(offset)) past the end of the \(size)-byte file")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else {
                throw ELFImageError(file: path, reason: "cannot read \(what): \(got < 0 ? String(cString: strerror(errno)) : "the file shrank")")
            }
            done += got
        }
        return bytes
    }
}

extension [UInt8] {
    // Little-endian fields at offsets the caller has checked (they are inside what was read).
    fileprivate func uint16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    fileprivate func uint32(at offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) } }
    fileprivate func uint64(at offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * $1) } }
}
