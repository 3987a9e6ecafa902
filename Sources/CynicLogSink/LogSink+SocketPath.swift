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
import CynicPrivateFolder

extension LogSink {
    /// The socket path to use when none is given: `log.sock` in cynic's folder private to the
    /// current user, `$XDG_RUNTIME_DIR/cynic` or `/tmp/cynic-<uid>` (see `PrivateFolder`).
    ///
    /// The folder is created with mode 0700. One that exists is refused with
    /// `LogSinkError.unsafeDirectory` when it is a symbolic link, is not owned by the current user or lets
    /// group or others in: anyone who can write there could put their own socket in our place.
    public static func defaultSocketPath(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> String {
        do {
            return try PrivateFolder.forCurrentUser(runtimeDirectory: environment["XDG_RUNTIME_DIR"]) + "/log.sock"
        } catch {
            throw LogSinkError.unsafeDirectory(path: error.path, reason: error.reason)
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

    /// Binds a socket at `path` that only the current user can connect to, with no moment when
    /// another could: the socket is bound inside a fresh 0700 folder beside `path` (the same file
    /// system, so the rename below is atomic), made 0600, renamed into place, and the folder
    /// removed. Binding at `path` itself would create the socket with the umask's mode (0777
    /// under umask 000) until a chmod, and anyone connected meanwhile stays connected.
    /// `bind` binds the socket at the path it is given.
    static func bindOwnerOnly(at path: String, _ bind: (String) async throws -> any Channel) async throws -> any Channel {
        let folder = path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
        var template = Array("\(folder)/.cynic-sink-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw LogSinkError.systemCall("mkdtemp in", path: folder, errno: errno) }
        let staging = String(cString: template)
        defer { rmdir(staging) }
        // mkdtemp asks for 0700, less what the umask takes; make it exactly that.
        guard chmod(staging, 0o700) == 0 else { throw LogSinkError.systemCall("chmod", path: staging, errno: errno) }
        let staged = staging + "/s"
        let channel = try await bind(staged)
        do {
            guard chmod(staged, 0o600) == 0 else { throw LogSinkError.systemCall("chmod", path: staged, errno: errno) }
            guard rename(staged, path) == 0 else { throw LogSinkError.systemCall("rename to \(path)", path: staged, errno: errno) }
        } catch {
            unlink(staged)
            try? await channel.close()
            throw error
        }
        return channel
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
