#if canImport(Glibc)
import Glibc
#endif

/// Whose plugin files cynic loads. A plugin's code runs as cynic's user, so a file that another
/// user could write, or a folder where another user could put or swap one, hands that user
/// cynic's account (as root: the machine). ssh refuses keys others can write for the same reason.
public enum PluginTrust: Sendable, Equatable {
    /// Only files owned by cynic's user or root, that nobody else can write, in folders (and
    /// folders above them) that nobody else can write, unless sticky (like /tmp): others can
    /// put files there but cannot replace ours.
    case ownerOnly
    /// Whatever the ownership and permissions (`--allow-unsafe-plugins`).
    case anyone
}

/// A plugin file's content, read the one safe way: opened without blocking (a FIFO named `x.so`
/// must not hang the loader), checked to be a regular file, checked for who could have written
/// it, and read whole from that one descriptor. The loader validates and loads these bytes
/// (through a private copy), so nothing can change between the check and the load.
public struct PluginFile: Sendable {
    public let path: String
    public let bytes: [UInt8]

    /// The largest plugin file read. A debug Swift plugin linking NIO is about 20 MB; a file past
    /// this is a mistake, and it is read into memory whole.
    public static let maximumSize = 512 << 20

    public static func read(_ path: String, trust: PluginTrust = .ownerOnly) throws(PluginError) -> PluginFile {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .notAPluginFile(whyNotOpened(path, errno: errno)) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .notAPluginFile("cannot inspect it: \(errnoText())") }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw .notAPluginFile("not a regular file: \(kind(of: status.st_mode))")
        }
        if trust == .ownerOnly {
            // The file checked is the one opened, whatever happens to its name meanwhile.
            if let problem = permissionProblem(status, what: "it") {
                throw .unsafePermissions("\(problem.reason) (\(problem.fix(path)), or --allow-unsafe-plugins)")
            }
            for folder in folders(holding: path) {
                var folderStatus = stat()
                guard stat(folder, &folderStatus) == 0 else { continue }
                if let problem = permissionProblem(folderStatus, what: "its folder \(folder)", folder: true) {
                    throw .unsafePermissions("\(problem.reason) (\(problem.fix(folder)), or --allow-unsafe-plugins)")
                }
            }
        }
        guard status.st_size <= maximumSize else { throw tooLarge }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(status.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        // Read to the end rather than st_size bytes: the file may be growing.
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .notAPluginFile("cannot read it: \(errnoText())")
            }
            if count == 0 { return PluginFile(path: path, bytes: bytes) }
            guard bytes.count + count <= maximumSize else { throw tooLarge }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    private static var tooLarge: PluginError {
        .notAPluginFile("larger than \(maximumSize >> 20) MiB, the most a plugin file may be")
    }

    // MARK: Permissions

    private struct PermissionProblem {
        let reason: String
        let fix: (String) -> String
    }

    /// What makes a file or folder unsafe to load code from: an owner other than cynic's user or
    /// root, or write permission for group or others (harmless on a sticky folder, where others
    /// cannot remove or rename what is not theirs).
    private static func permissionProblem(_ status: stat, what: String, folder: Bool = false) -> PermissionProblem? {
        let me = geteuid()
        if status.st_uid != me, status.st_uid != 0 {
            return PermissionProblem(
                reason: "\(what) is owned by \(userName(status.st_uid)), not by \(me == 0 ? "root" : "\(userName(me)) or root"): its owner chooses the code cynic runs",
                fix: { "chown \(loginName(me)) \($0)" })
        }
        let sticky = folder && status.st_mode & S_ISVTX != 0
        if status.st_mode & 0o022 != 0, !sticky {
            let who = status.st_mode & 0o002 != 0 ? "anyone" : "its group"
            return PermissionProblem(
                reason: "\(what) is writable by \(who) (mode \(octal(status.st_mode & 0o7777))): whoever can write it chooses the code cynic runs",
                fix: { "chmod go-w \($0)" })
        }
        return nil
    }

    /// Every folder whose owner or writers could replace the file: the folder named, and each
    /// one above it; for a symbolic link, those of its target too. Resolved, so a linked folder is
    /// judged by what it points to.
    private static func folders(holding path: String) -> [String] {
        var folders: [String] = []
        func addChain(from folder: String) {
            guard let resolved = realpath(folder, nil) else { return }
            var current = String(cString: resolved)
            free(resolved)
            while true {
                if !folders.contains(current) { folders.append(current) }
                guard current != "/", let slash = current.lastIndex(of: "/") else { return }
                current = slash == current.startIndex ? "/" : String(current[..<slash])
            }
        }
        addChain(from: parent(of: path))
        if let target = realpath(path, nil) {
            addChain(from: parent(of: String(cString: target)))
            free(target)
        }
        return folders
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    // MARK: Telling what went wrong

    /// Why `open` failed, in the user's terms: a dangling or looping link is not "No such file".
    private static func whyNotOpened(_ path: String, errno code: Int32) -> String {
        var link = stat()
        let isLink = lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK
        if isLink, code == ENOENT {
            return "a symbolic link to \(linkTarget(path).map { "'\($0)'" } ?? "a path"), which does not exist"
        }
        if isLink, code == ELOOP { return "a symbolic link loop (too many levels of links)" }
        return "cannot open it: \(String(cString: strerror(code)))"
    }

    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a folder"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "file type \(octal(mode & S_IFMT))"
        }
    }

    /// "nobody (uid 65534)", for a sentence.
    private static func userName(_ uid: uid_t) -> String {
        let name = loginName(uid)
        return name == "\(uid)" ? "uid \(uid)" : "\(name) (uid \(uid))"
    }

    /// "nobody", or the number when the user has no name: what `chown` takes.
    private static func loginName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "\(uid)" }
        return String(cString: name)
    }

    private static func octal(_ value: mode_t) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
