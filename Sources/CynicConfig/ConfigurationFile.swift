#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a configuration file's text, refusing what is not one: a FIFO, a device, a folder, or a
/// file too large to be a configuration.
///
/// The file is opened without blocking (a FIFO with no writer would otherwise hang the open, and
/// cynic with it) and checked with `fstat` on the descriptor opened, so what is checked is what is
/// read. Reading stops one byte past the limit, so `/dev/zero`-like sources end too.
enum ConfigurationFile {
    /// More than any configuration needs; a larger file is a mistake (or not a configuration).
    static let maxBytes = 16 << 20

    static func text(of path: String) throws(ConfigurationError) -> String {
        func refuse(_ message: String) -> ConfigurationError {
            ConfigurationError(file: path, line: nil, column: nil, message: message)
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw refuse("cannot read the file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw refuse("cannot read the file: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw refuse("not a regular file (\(kind(of: info.st_mode)))")
        }
        let tooLarge = "larger than \(maxBytes >> 20) MiB, which no configuration needs; is it the right file?"
        guard Int(info.st_size) <= maxBytes else { throw refuse(tooLarge) }
        // A regular file never blocks on read, O_NONBLOCK or not; it may still grow while read.
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw refuse("cannot read the file: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += chunk[..<count]
            guard bytes.count <= maxBytes else { throw refuse(tooLarge) }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw refuse("not UTF-8 text") }
        return text
    }

    /// What a non-regular file is, in the words of `ls -l`'s first letter.
    static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFDIR: "a folder"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "mode \(String(mode, radix: 8))"
        }
    }
}
