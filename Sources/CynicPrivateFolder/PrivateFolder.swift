#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// cynic's folder private to the current user: where the log socket lives and where plugin
/// copies are loaded from. Whoever can write there could put their own socket in the sink's
/// place, or their own code in the host, so one policy decides it for every user of it.
///
/// The folder is `$XDG_RUNTIME_DIR/cynic` when XDG_RUNTIME_DIR is an absolute path to a
/// directory (systemd makes it per user, 0700, on tmpfs), else `/tmp/cynic-<euid>`.
///
/// The policy: a folder we create is made 0700 whatever the umask. One that is already there is
/// used only if it is a real directory (not a symbolic link), owned by the current user, and
/// closed to group and others; anything else is refused, never repaired: a folder someone else
/// could write to may already hold their files.
public enum PrivateFolder {
    /// The current user's private folder, created or checked; see the type's documentation.
    /// - Parameter runtimeDirectory: the value of `XDG_RUNTIME_DIR`, if any.
    public static func forCurrentUser(
        runtimeDirectory: String? = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) }
    ) throws(PrivateFolderError) -> String {
        let folder: String
        if let runtime = runtimeDirectory, runtime.hasPrefix("/"), isDirectory(runtime) {
            folder = (runtime.hasSuffix("/") ? String(runtime.dropLast()) : runtime) + "/cynic"
        } else {
            folder = "/tmp/cynic-\(geteuid())"
        }
        try prepare(folder)
        return folder
    }

    /// Creates `path` with mode 0700, or checks that the folder already there passes the policy.
    /// Its parent must exist.
    public static func prepare(_ path: String) throws(PrivateFolderError) {
        var created = false
        if mkdir(path, 0o700) == 0 {
            created = true
        } else if errno != EEXIST {
            throw PrivateFolderError(path: path, reason: "cannot create it: \(errnoText())")
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw PrivateFolderError(path: path, reason: "cannot inspect it: \(errnoText())")
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: break
        case S_IFLNK: throw PrivateFolderError(path: path, reason: "it is a symbolic link")
        default: throw PrivateFolderError(path: path, reason: "it is not a directory")
        }
        // Check what we open, not the name again: it cannot be swapped for a link in between.
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PrivateFolderError(path: path, reason: "cannot open it: \(errnoText())")
        }
        defer { close(descriptor) }
        guard fstat(descriptor, &info) == 0 else {
            throw PrivateFolderError(path: path, reason: "cannot inspect it: \(errnoText())")
        }
        guard info.st_uid == geteuid() else {
            throw PrivateFolderError(
                path: path, reason: "it is owned by uid \(info.st_uid), not by the current user (uid \(geteuid()))")
        }
        if created {
            // mkdir's mode passes through the umask, which could leave it unusable to us.
            guard fchmod(descriptor, 0o700) == 0 else {
                throw PrivateFolderError(path: path, reason: "cannot make it 0700: \(errnoText())")
            }
        } else if info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o7777, radix: 8)
            throw PrivateFolderError(
                path: path,
                reason: "its mode \(String(repeating: "0", count: max(0, 4 - mode.count)) + mode) lets group or others in; "
                    + "it must be 0700 (chmod 700 \(path))")
        }
    }

    /// Creates `path`'s missing parents, like `mkdir -p` (0700 under the umask); `path` itself is
    /// left to `prepare`. Existing parents are not checked: they are the caller's choice.
    public static func makeParents(of path: String) throws(PrivateFolderError) {
        var parent = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true).dropLast() {
            parent += "/" + component
            if mkdir(parent, 0o700) != 0, errno != EEXIST {
                throw PrivateFolderError(path: parent, reason: "cannot create it: \(errnoText())")
            }
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Why a private folder cannot be used: the folder, and what is wrong with it.
public struct PrivateFolderError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}
