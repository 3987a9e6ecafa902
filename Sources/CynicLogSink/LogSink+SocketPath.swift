#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

extension LogSink {
    /// The socket path to use when none is given, in a directory private to the current user:
    /// `$XDG_RUNTIME_DIR/cynic/log.sock` when XDG_RUNTIME_DIR names a directory, else
    /// `/tmp/cynic-<uid>/log.sock`.
    ///
    /// The directory is created with mode 0700. One that exists is refused with
    /// `LogSinkError.unsafeDirectory` when it is a symbolic link, is not owned by the current user or lets
    /// group or others in: anyone who can write there could put their own socket in our place.
    public static func defaultSocketPath(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> String {
        let directory: String
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/"), PrivateDirectory.isDirectory(runtime) {
            directory = (runtime.hasSuffix("/") ? String(runtime.dropLast()) : runtime) + "/cynic"
        } else {
            directory = "/tmp/cynic-\(getuid())"
        }
        try PrivateDirectory.prepare(directory)
        return directory + "/log.sock"
    }
}

enum PrivateDirectory {
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Creates `path` with mode 0700, or checks that the directory already there is ours and private.
    static func prepare(_ path: String) throws {
        var created = false
        if mkdir(path, 0o700) == 0 {
            created = true
        } else if errno != EEXIST {
            throw LogSinkError.systemCall("mkdir", path: path, errno: errno)
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { throw LogSinkError.systemCall("lstat", path: path, errno: errno) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: break
        case S_IFLNK: throw LogSinkError.unsafeDirectory(path: path, reason: "it is a symbolic link")
        default: throw LogSinkError.unsafeDirectory(path: path, reason: "it is not a directory")
        }
        // Check what we open, not the name again: it cannot be swapped for a link in between.
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw LogSinkError.systemCall("open", path: path, errno: errno) }
        defer { close(descriptor) }
        guard fstat(descriptor, &info) == 0 else { throw LogSinkError.systemCall("fstat", path: path, errno: errno) }
        guard info.st_uid == geteuid() else {
            throw LogSinkError.unsafeDirectory(
                path: path, reason: "it is owned by uid \(info.st_uid), not by the current user (uid \(geteuid()))")
        }
        if created {
            // mkdir's mode passes through the umask, which could leave it unusable to us.
            guard fchmod(descriptor, 0o700) == 0 else { throw LogSinkError.systemCall("chmod", path: path, errno: errno) }
        } else if info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o7777, radix: 8)
            throw LogSinkError.unsafeDirectory(
                path: path,
                reason: "its mode \(String(repeating: "0", count: max(0, 4 - mode.count)) + mode) lets group or others in; "
                    + "it must be 0700 (chmod 700 \(path))")
        }
    }
}

enum SocketFile {
    /// Removes a socket file nobody listens on any more. Anything else at `path` is left alone and refused.
    static func removeStale(at path: String, group: any EventLoopGroup) async throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw LogSinkError.systemCall("lstat", path: path, errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw LogSinkError.notASocket(path: path) }
        // Only a socket that refuses connections is stale; a live one belongs to another sink.
        let live = try? await ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .connect(unixDomainSocketPath: path)
            .get()
        if let live {
            try? await live.close()
            throw LogSinkError.socketInUse(path: path)
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw LogSinkError.systemCall("unlink", path: path, errno: errno)
        }
    }

    static func remove(at path: String) {
        _ = unlink(path)
    }
}

/// Which file a path names, to tell our socket from one that replaced it.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
