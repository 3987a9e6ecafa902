#if canImport(Glibc)
import Glibc
#endif
import CynicPrivateFolder

/// Private copies of plugin files, one path per version, to dlopen from.
///
/// Loading the user's file itself goes wrong twice: dlopen of a path already loaded returns the
/// image loaded first, so a new version renamed over the file would never run; and a file
/// rewritten in place while mapped (`cp new.so loaded.so`, same inode) crashes the host inside
/// ld.so. A copy under a name of its own content is a fresh load for every new version, and
/// nobody else writes to it.
///
/// Copies are named `<version>-<file name>`, the version being a 64-bit FNV-1a hash of the bytes
/// in 16 hex digits: one content, one path. So an unchanged file needs no reload, and loading a
/// content again while its earlier image is still mapped gets that image back, globals and all
/// (dlopen matches the path): treat an unchanged version as no change.
///
/// When to `remove(path:)` a copy: on Linux a mapped file may be unlinked safely (the mapping
/// keeps the inode), so removing the copy right after dlopen is what we recommend: nothing is
/// left behind to clean, even when an image with Swift code in it stays mapped until exit, and the
/// memory is the same either way (a mapped file's pages stay until it is unmapped). The cost:
/// `/proc/self/maps`, debuggers and crash reports show the path as `(deleted)`.
///
/// The folder is private (0700, ours) because code loaded from it runs in the host: nobody else
/// may put a file there.
public final class PluginCopies: Sendable {
    /// The largest plugin file copied. A debug Swift plugin linking NIO is about 20 MB; a file
    /// past this is a mistake, and it is read into memory whole.
    public static let maximumFileSize = 512 << 20

    /// The private folder the copies are in.
    public let directory: String

    /// Creates a private folder for copies: `directory` (made 0700, with any missing parents), or
    /// by default a fresh `plugins-<pid>-XXXXXX` in cynic's folder private to the current user
    /// (`PrivateFolder.forCurrentUser()`). A fresh folder per instance lets two of them in one
    /// process (tests) each `removeAll()` their own. Refuses a folder that `PrivateFolder`'s
    /// policy refuses (a link, not ours, open to others), and one on a `noexec` file system,
    /// where dlopen could not map the code.
    public init(directory: String? = nil) throws(PluginCopyError) {
        if let directory {
            try Self.privateFolder { () throws(PrivateFolderError) in
                try PrivateFolder.makeParents(of: directory)
                try PrivateFolder.prepare(directory)
            }
            self.directory = directory
        } else {
            let parent = try Self.privateFolder { () throws(PrivateFolderError) in try PrivateFolder.forCurrentUser() }
            var template = Array("\(parent)/plugins-\(getpid())-XXXXXX".utf8CString)
            // mkdtemp makes it 0700 and never reuses a folder, even one left by a process that
            // had our pid and crashed.
            guard let made = mkdtemp(&template) else {
                throw PluginCopyError(file: parent, reason: "cannot create a folder in it: \(Self.errnoText())")
            }
            self.directory = String(cString: made)
        }
        var fileSystem = statvfs()
        if statvfs(self.directory, &fileSystem) == 0, fileSystem.f_flag & Self.noExecFlag != 0 {
            throw PluginCopyError(file: self.directory, reason: "is on a file system mounted noexec: code cannot be loaded from it")
        }
    }

    /// Copies `file` into the folder, unless a copy of this content is there already; returns the
    /// copy's path and the content's version.
    public func copy(of file: String) throws(PluginCopyError) -> (path: String, version: String) {
        let bytes = try Self.contents(of: file)
        let version = Self.hexadecimal(Self.fnv1a(bytes))
        let name = file.lastIndex(of: "/").map { String(file[file.index(after: $0)...]) } ?? file
        let path = "\(directory)/\(version)-\(name)"

        var existing = stat()
        if lstat(path, &existing) == 0 {
            // A 64-bit hash is no proof: compare. Two contents on one path would make dlopen
            // return the wrong one.
            let same = (try? Self.contents(of: path)) == bytes
            guard same else {
                throw PluginCopyError(file: file, reason: "its copy \(path) exists with other content (a hash collision or a change from outside)")
            }
            return (path, version)
        }

        // Written under a temporary name and renamed: the copy's path never shows a partial file.
        var template = Array("\(directory)/.copy-XXXXXX".utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            throw PluginCopyError(file: file, reason: "cannot create a copy in \(directory): \(Self.errnoText())")
        }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        var failure: String?
        if let error = Self.write(bytes, to: descriptor) {
            failure = "cannot write its copy: \(error)"
        } else if fchmod(descriptor, 0o500) != 0 {
            failure = "cannot make its copy read-only: \(Self.errnoText())"
        }
        if close(descriptor) != 0, failure == nil {
            failure = "cannot write its copy: \(Self.errnoText())"
        }
        if failure == nil, rename(temporary, path) != 0 {
            failure = "cannot rename its copy into place: \(Self.errnoText())"
        }
        if let failure {
            unlink(temporary)
            throw PluginCopyError(file: file, reason: failure)
        }
        return (path, version)
    }

    /// Deletes one copy. Does nothing for a path outside the folder, or already gone; a copy
    /// that cannot be deleted goes with the folder in `removeAll()`.
    public func remove(path: String) {
        guard path.hasPrefix(directory + "/"), !path.dropFirst(directory.count + 1).contains("/") else { return }
        unlink(path)
    }

    /// Deletes every copy and the folder: call at exit. Images still mapped are not affected.
    public func removeAll() {
        if let folder = opendir(directory) {
            while let entry = readdir(folder) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                unlink(directory + "/" + name)
            }
            closedir(folder)
        }
        rmdir(directory)
    }

    // MARK: Helpers

    /// `ST_NOEXEC` of <sys/statvfs.h>: not imported (it needs _GNU_SOURCE); its value is Linux ABI.
    private static let noExecFlag: UInt = 8

    /// Runs a step of `PrivateFolder`, its refusal told as a copy error.
    private static func privateFolder<Result>(
        _ step: () throws(PrivateFolderError) -> Result
    ) throws(PluginCopyError) -> Result {
        do { return try step() } catch { throw PluginCopyError(file: error.path, reason: error.reason) }
    }

    /// The whole file, read once, so the copy and its version are of the same bytes.
    private static func contents(of file: String) throws(PluginCopyError) -> [UInt8] {
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PluginCopyError(file: file, reason: "cannot open: \(errnoText())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw PluginCopyError(file: file, reason: "cannot inspect: \(errnoText())") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw PluginCopyError(file: file, reason: "is not a regular file") }
        let tooLarge = PluginCopyError(file: file, reason: "is larger than \(maximumFileSize >> 20) MiB, the most a plugin file may be")
        guard status.st_size <= maximumFileSize else { throw tooLarge }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(status.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        // Read to the end rather than st_size bytes: the file may be growing.
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw PluginCopyError(file: file, reason: "cannot read: \(errnoText())")
            }
            if count == 0 { return bytes }
            guard bytes.count + count <= maximumFileSize else { throw tooLarge }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    /// Writes everything; returns the error text on failure.
    private static func write(_ bytes: [UInt8], to descriptor: Int32) -> String? {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errnoText()
                }
                offset += written
            }
            return nil
        }
    }

    /// 64-bit FNV-1a: a content address, not a defence (an existing copy is compared byte by
    /// byte before reuse).
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBufferPointer { buffer in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in buffer { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            return hash
        }
    }

    static func hexadecimal(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A copy that could not be made or a folder that cannot hold copies: the path, and why.
public struct PluginCopyError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}
