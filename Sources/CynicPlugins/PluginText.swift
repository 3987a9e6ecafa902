#if canImport(Glibc)
import Glibc
#endif

/// Text a plugin hands the host — its name, descriptions, parameter docs, refusal and log
/// messages — read with a bound and made printable before it reaches a log line or a listing.
/// A plugin's strings are data from a file anyone could have written: a 10 MB name must not be
/// read whole, and an ESC byte or a newline must not reach a terminal raw, where it would split
/// the "one line" an error promises or forge another.
public enum PluginText {
    /// The C string at `pointer`, reading at most `limit` bytes (never past its NUL), and whether
    /// it was longer. Invalid UTF-8 is repaired, as `String(cString:)` does.
    public static func read(_ pointer: UnsafePointer<CChar>, limit: Int) -> (text: String, truncated: Bool) {
        let length = strnlen(pointer, limit + 1)
        let count = min(length, limit)
        let text = pointer.withMemoryRebound(to: UInt8.self, capacity: count) {
            String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
        }
        return (text, length > limit)
    }

    /// `text` with every control character (C0, DEL, C1) written as an escape — `\n`, `\t`,
    /// `\x1b`, `\u{85}` — so it prints on one line and moves no cursor. Other characters are
    /// kept: names in other scripts stay readable.
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                result += scalar.value < 0x80 ? "\\x" + (hex.count < 2 ? "0" : "") + hex : "\\u{\(hex)}"
            }
        }
        return result
    }

    /// Reads with `read(_:limit:)` and returns `printable`, marked "…" when cut.
    public static func printable(_ pointer: UnsafePointer<CChar>, limit: Int) -> String {
        let (text, truncated) = read(pointer, limit: limit)
        return printable(text) + (truncated ? "…" : "")
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
    }

    /// Names: a behaviour's or a parameter's; they are typed on command lines.
    public static let nameLimit = 64
    /// A description, a parameter's doc, a refusal or log message.
    public static let messageLimit = 4096
    /// A parameter's default value, which is data (a string parameter's default body, say).
    public static let defaultValueLimit = 64 << 10
}
