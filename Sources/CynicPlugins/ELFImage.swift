#if canImport(Glibc)
import Glibc
#endif

/// What the host needs to know of a shared object before it lets ld.so near it, read from the
/// file's bytes.
///
/// Two reasons. First, ld.so trusts the file: it maps every `PT_LOAD` segment's file range and
/// then touches it (zero-filling the tail of the last page), so a file cut short — an interrupted
/// copy, a file written in two steps — kills the whole process with SIGBUS inside dlopen, and a
/// file built for another machine is reported as "No such file or directory". `loadable` refuses
/// both, with the reason, before dlopen. Second, an image with Swift code in it must never be
/// dlclose'd (the Swift runtime keeps pointers into its metadata, and a later lookup faults),
/// while a plain C image can be: every Swift image needs libswiftCore, and so does a C plugin
/// built as a SwiftPM product (the Swift driver links it and adds a Swift image constructor), so
/// the DT_NEEDED list tells them apart. Not seen: a plugin built with the Swift standard library
/// linked statically, or one that gets Swift code only through a library it needs.
///
/// Reads ELF64 little-endian files through the program headers, as ld.so does: PT_DYNAMIC for
/// the dynamic entries, PT_LOAD to turn DT_STRTAB's address into a file offset. Section headers
/// are optional for loading, so a stripped or lying section table changes nothing. Every offset
/// and size is checked against the file: a truncated or hostile file throws, and nothing read is
/// larger than the caps below.
public struct ELFImage: Sendable {
    /// The file named in errors.
    public let file: String
    /// `e_type`: 3 is a shared object (ET_DYN).
    public let type: UInt16
    /// `e_machine`: 62 is x86_64, 183 aarch64.
    public let machine: UInt16
    /// The DT_NEEDED names, in file order.
    public let neededLibraries: [String]

    private struct Segment {
        let address: UInt64
        let offset: UInt64
        let fileSize: UInt64
        let memorySize: UInt64
    }

    private let loads: [Segment]
    private let size: UInt64

    /// Parses the headers of `bytes`, the whole content of `file`.
    public init(bytes: [UInt8], file: String) throws(ELFImageError) {
        self.file = file
        size = UInt64(bytes.count)
        func fail(_ reason: String) -> ELFImageError { ELFImageError(file: file, reason: reason) }
        let image = Bytes(bytes: bytes, file: file)

        let header = try image.slice(at: 0, count: 64, what: "ELF header")
        guard header.prefix(4).elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else { throw fail("not an ELF file") }
        guard header[4] == 2 else { throw fail("a 32-bit ELF file; this machine loads 64-bit ones") }
        guard header[5] == 1 else { throw fail("a big-endian ELF file; this machine is little-endian") }
        type = header.uint16(at: 16)
        machine = header.uint16(at: 18)
        let programHeaders = header.uint64(at: 32)
        let programHeaderSize = Int(header.uint16(at: 54))
        let programHeaderCount = Int(header.uint16(at: 56))
        guard programHeaderSize >= 56 else { throw fail("program header entries of \(programHeaderSize) bytes, fewer than 56") }
        // 0xffff means the real count is elsewhere (PN_XNUM): no shared object has that many.
        guard programHeaderCount > 0, programHeaderCount < 0xffff else { throw fail("\(programHeaderCount) program headers") }
        let table = try image.slice(at: programHeaders, count: programHeaderSize * programHeaderCount, what: "program headers")

        var dynamic: (offset: UInt64, size: UInt64)?
        var loads: [Segment] = []
        for index in 0..<programHeaderCount {
            let entry = index * programHeaderSize
            switch table.uint32(at: entry) {
            case 1:  // PT_LOAD
                loads.append(Segment(address: table.uint64(at: entry + 16), offset: table.uint64(at: entry + 8),
                                     fileSize: table.uint64(at: entry + 32), memorySize: table.uint64(at: entry + 40)))
            case 2:  // PT_DYNAMIC
                dynamic = (table.uint64(at: entry + 8), table.uint64(at: entry + 32))
            default:
                break
            }
        }
        self.loads = loads
        neededLibraries = try Self.neededLibraries(dynamic: dynamic, loads: loads, image: image, fail: fail)
    }

    /// Reads `path` whole (at most `maximumFileSize` bytes) and parses it.
    public init(path: String) throws(ELFImageError) {
        try self.init(bytes: try Self.contents(of: path), file: path)
    }

    /// Checks what ld.so would otherwise find out by crashing or with a misleading message: a
    /// shared object (not an executable or an object file), for this machine, whose every loaded
    /// segment lies inside the file.
    public func checkLoadable(on hostMachine: UInt16 = ELFImage.hostMachine) throws(ELFImageError) {
        func fail(_ reason: String) -> ELFImageError { ELFImageError(file: file, reason: reason) }
        guard type == 3 else {
            let kind = [1: "a relocatable object (.o)", 2: "an executable", 4: "a core dump"][Int(type)] ?? "ELF type \(type)"
            throw fail("\(kind), not a shared object (build it with -shared -fPIC)")
        }
        guard machine == hostMachine else {
            throw fail("built for \(Self.machineName(machine)), this machine is \(Self.machineName(hostMachine))")
        }
        guard !loads.isEmpty else { throw fail("no loadable segment") }
        for (index, segment) in loads.enumerated() {
            let (end, overflow) = segment.offset.addingReportingOverflow(segment.fileSize)
            guard !overflow, end <= size else {
                throw fail("truncated: loaded segment \(index) needs file bytes \(segment.offset) to "
                           + "\(overflow ? "past 2^64" : String(end)), the file has \(size) (an interrupted copy?)")
            }
            guard segment.fileSize <= segment.memorySize else {
                throw fail("loaded segment \(index) has more file bytes (\(segment.fileSize)) than memory (\(segment.memorySize))")
            }
        }
    }

    /// Whether the image needs the Swift runtime, and so must stay mapped.
    public var linksSwiftRuntime: Bool { neededLibraries.contains { $0.hasPrefix("libswiftCore") } }

    // MARK: By path

    /// The DT_NEEDED names of the file at `path`, in file order.
    public static func neededLibraries(of path: String) throws(ELFImageError) -> [String] {
        try ELFImage(path: path).neededLibraries
    }

    /// Whether the file at `path` needs the Swift runtime. Throws when the file cannot be read as
    /// ELF: callers deciding whether to unmap should then keep it (closing a Swift image crashes
    /// the host later; keeping a C one costs only its mapping).
    public static func linksSwiftRuntime(_ path: String) throws(ELFImageError) -> Bool {
        try ELFImage(path: path).linksSwiftRuntime
    }

    // MARK: Machines

    /// The `e_machine` of the code this host runs.
    public static let hostMachine: UInt16 = {
        #if arch(x86_64)
        return 62
        #elseif arch(arm64)
        return 183
        #elseif arch(i386)
        return 3
        #elseif arch(arm)
        return 40
        #elseif arch(riscv64)
        return 243
        #elseif arch(powerpc64le) || arch(powerpc64)
        return 21
        #elseif arch(s390x)
        return 22
        #else
        return 0
        #endif
    }()

    static func machineName(_ machine: UInt16) -> String {
        let names: [UInt16: String] = [3: "x86 (32-bit)", 8: "MIPS", 20: "PowerPC", 21: "PowerPC 64", 22: "s390x",
                                       40: "32-bit ARM", 62: "x86_64", 183: "aarch64", 243: "RISC-V"]
        return names[machine].map { "\($0) (e_machine \(machine))" } ?? "e_machine \(machine)"
    }

    // MARK: Limits

    /// A real dynamic section is a few hundred bytes; this caps what a hostile header can make
    /// us allocate.
    static let maximumDynamicSize: UInt64 = 1 << 20
    static let maximumNameLength = 4096
    /// The most read by `init(path:)`. A debug Swift plugin linking NIO is about 20 MB.
    public static let maximumFileSize = 512 << 20

    // MARK: Reading

    private static func neededLibraries(dynamic: (offset: UInt64, size: UInt64)?, loads: [Segment], image: Bytes,
                                        fail: (String) -> ELFImageError) throws(ELFImageError) -> [String] {
        // A static executable or a bare object needs nothing.
        guard let dynamic else { return [] }
        guard dynamic.size <= maximumDynamicSize else { throw fail("a dynamic section of \(dynamic.size) bytes") }
        let entries = try image.slice(at: dynamic.offset, count: Int(dynamic.size), what: "dynamic section")

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
        guard let segment = loads.first(where: { stringTable >= $0.address && stringTable - $0.address < $0.fileSize }) else {
            throw fail("string table address 0x\(String(stringTable, radix: 16)) is in no loaded segment")
        }
        let stringsOffset = segment.offset &+ (stringTable - segment.address)
        guard stringsOffset >= segment.offset, stringsOffset <= image.size, stringTableSize <= image.size - stringsOffset,
              stringTableSize <= segment.fileSize - (stringTable - segment.address) else {
            throw fail("string table (\(stringTableSize) bytes at offset \(stringsOffset)) runs past its segment or the file")
        }

        return try needed.map { (nameOffset: UInt64) throws(ELFImageError) -> String in
            guard nameOffset < stringTableSize else { throw fail("DT_NEEDED name offset \(nameOffset) past the string table") }
            let length = min(stringTableSize - nameOffset, UInt64(maximumNameLength))
            let bytes = try image.slice(at: stringsOffset + nameOffset, count: Int(length), what: "DT_NEEDED name")
            guard let end = bytes.firstIndex(of: 0) else { throw fail("unterminated DT_NEEDED name") }
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// The whole file, without blocking on a FIFO, refusing anything but a regular file.
    private static func contents(of path: String) throws(ELFImageError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ELFImageError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw ELFImageError(file: path, reason: "not a regular file")
        }
        guard status.st_size <= maximumFileSize else {
            throw ELFImageError(file: path, reason: "larger than \(maximumFileSize >> 20) MiB")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var done = 0
        while done < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + done, $0.count - done) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { break }  // shrank while read: what was read is checked as it is
            done += got
        }
        return Array(bytes.prefix(done))
    }
}

/// A file that cannot be read as an ELF64 little-endian image, or not loaded: its path, and why.
public struct ELFImageError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// A file's bytes, read at offsets, each read checked against the size.
private struct Bytes {
    let bytes: [UInt8]
    let file: String
    var size: UInt64 { UInt64(bytes.count) }

    /// Exactly `count` bytes at `offset`, or an error naming `what` ran past the end.
    func slice(at offset: UInt64, count: Int, what: String) throws(ELFImageError) -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw ELFImageError(file: file, reason: "truncated: \(what) (\(count) bytes at offset \(offset)) past the end of the \(size)-byte file")
        }
        let start = Int(offset)
        // A copy indexed from 0, so the callers' offsets are relative to what they asked for.
        return Array(bytes[start..<(start + count)])
    }
}

extension [UInt8] {
    // Little-endian fields at offsets the caller has checked (they are inside what was read).
    fileprivate func uint16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    fileprivate func uint32(at offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) } }
    fileprivate func uint64(at offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * $1) } }
}
