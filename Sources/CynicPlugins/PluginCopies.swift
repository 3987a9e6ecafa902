#if canImport(Glibc)
import Glibc
#endif
import CynicPrivateFolder
import Synchronization

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
    /// The private folder the copies are in.
    public let directory: String
    /// Copy folders of cynic processes that are gone (crashed, killed), removed when this one was
    /// made in the same private folder.
    public let staleFoldersRemoved: [String]
    /// One load at a time: two loads of one content share its copy, and one must not delete it
    /// before the other has mapped it (ld.so serialises dlopen anyway).
    private let loading = Mutex(())

    /// Creates a private folder for copies: `directory` (made 0700, with any missing parents), or
    /// by default a fresh `plugins-<pid>-XXXXXX` in cynic's folder private to the current user
    /// (`PrivateFolder.forCurrentUser()`). A fresh folder per instance lets two of them in one
    /// process (tests) each `removeAll()` their own. Refuses a folder that `PrivateFolder`'s
    /// policy refuses (a link, not ours, open to others), and one on a `noexec` file system,
    /// where dlopen could not map the code.
    public init(directory: String? = nil) throws(PluginCopyError) {
        if let directory {
            staleFoldersRemoved = []
            try Self.privateFolder { () throws(PrivateFolderError) in
                try PrivateFolder.makeParents(of: directory)
                try PrivateFolder.prepare(directory)
            }
            self.directory = directory
        } else {
            let parent = try Self.privateFolder { () throws(PrivateFolderError) in try PrivateFolder.forCurrentUser() }
            staleFoldersRemoved = Self.removeFoldersOfGoneProcesses(in: parent)
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

    /// The version a load of these bytes gets (`Plugin.version`): a rescan compares it with the
    /// loaded one before loading again.
    public static func version(of file: PluginFile) -> String {
        hexadecimal(fnv1a(file.bytes))
    }

    /// Copies `file`'s bytes into the folder, unless a copy of this content is there already;
    /// returns the copy's path and the content's version.
    public func copy(of file: PluginFile) throws(PluginCopyError) -> (path: String, version: String) {
        let bytes = file.bytes
        let version = Self.version(of: file)
        let name = file.path.lastIndex(of: "/").map { String(file.path[file.path.index(after: $0)...]) } ?? file.path
        let path = "\(directory)/\(version)-\(name)"
        let file = file.path

        var existing = stat()
        if lstat(path, &existing) == 0 {
            // A 64-bit hash is no proof: compare. Two contents on one path would make dlopen
            // return the wrong one.
            let same = Self.contents(of: path) == bytes
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

    /// Runs `body` (a copy, its dlopen, then its removal) while no other load of this folder
    /// runs.
    public func exclusively<Result: Sendable, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        try loading.withLock { _ throws(Failure) in try body() }
    }

    /// Deletes one copy. Does nothing for a path outside the folder, or already gone; a copy
    /// that cannot be deleted goes with the folder in `removeAll()`.
    public func remove(path: String) {
        guard path.hasPrefix(directory + "/"), !path.dropFirst(directory.count + 1).contains("/") else { return }
        unlink(path)
    }

    /// Deletes every copy and the folder: call at exit. Images still mapped are not affected.
    public func removeAll() {
        Self.removeFolder(directory)
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

    /// A copy already in the folder, read back to compare it with what it should hold.
    private static func contents(of path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            guard bytes.count + count <= PluginFile.maximumSize else { return nil }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    /// Removes the `plugins-<pid>-*` folders in `parent` whose process is gone: a cynic that
    /// crashed or was killed left them. A folder whose pid is alive is kept, even if the pid was
    /// reused by another program: a stale folder costs disk, a deleted live one breaks a cynic.
    static func removeFoldersOfGoneProcesses(in parent: String) -> [String] {
        guard let folder = opendir(parent) else { return [] }
        var gone: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[0] == "plugins", let pid = pid_t(parts[1]), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            gone.append(parent + "/" + name)
        }
        closedir(folder)
        for path in gone { removeFolder(path) }
        return gone
    }

    /// Deletes the files of a copy folder, then the folder (copies hold no subfolders).
    private static func removeFolder(_ path: String) {
        if let folder = opendir(path) {
            while let entry = readdir(folder) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                unlink(path + "/" + name)
            }
            closedir(folder)
        }
        rmdir(path)
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
    /// FNV-1a over 64-bit words, then the last bytes one by one: a byte at a time was 7 % of
    /// start-up with the shipped plugins (a multiply per byte, each waiting for the last).
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { buffer in
            let prime: UInt64 = 0x0000_0100_0000_01b3
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            let words = buffer.count / 8
            for index in 0..<words {
                let word = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                hash = (hash ^ word) &* prime
                hash ^= hash >> 29
            }
            for byte in buffer[(words * 8)...] { hash = (hash ^ UInt64(byte)) &* prime }
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

extension PluginCopies {
    /// The copies of a program that loads plugins and exits (`cynic plugins`, `cynic check`, a
    /// test): one folder for the process, made at first use and removed at exit. A process that
    /// dies without exiting leaves it; the next cynic removes it (`staleFoldersRemoved`).
    public static func forThisProcess() throws(PluginCopyError) -> PluginCopies {
        try processWide.get()
    }

    private static let processWide: Result<PluginCopies, PluginCopyError> = {
        do throws(PluginCopyError) {
            let copies = try PluginCopies()
            atexit {
                if case .success(let copies) = PluginCopies.processWide { copies.removeAll() }
            }
            return .success(copies)
        } catch {
            return .failure(error)
        }
    }()
}
