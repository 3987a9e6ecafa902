extension LogRecord {
    /// The record as console text: `[py:1234 tests.client] WARNING something happened`.
    ///
    /// The tag is the sender's `source`, else "py" for Python's SocketHandler and "json" for JSON, then
    /// the pid when known. Further lines of the message and the traceback follow, each indented by four
    /// spaces so that they read as part of the record. Control characters other than tab are shown
    /// escaped (`\u{1B}`): a sender cannot move the cursor, rewrite a line or change the terminal.
    public var consoleLine: String {
        var tag = source.map { Self.escaped($0, keepingNewlines: false) } ?? (format == .pickle ? "py" : "json")
        if let processID { tag += ":\(processID)" }
        if !loggerName.isEmpty { tag += " " + Self.escaped(loggerName, keepingNewlines: false) }

        var lines = Self.escaped(message, keepingNewlines: true).split(separator: "\n", omittingEmptySubsequences: false)
        if let exceptionText, !exceptionText.isEmpty {
            lines += Self.escaped(exceptionText, keepingNewlines: true).split(separator: "\n", omittingEmptySubsequences: false)
        }
        while lines.count > 1, lines.last?.allSatisfy(\.isWhitespace) == true { lines.removeLast() }

        var text = "[\(tag)] \(Self.escaped(level, keepingNewlines: false)) \(lines.first ?? "")"
        for line in lines.dropFirst() {
            text += "\n    " + line
        }
        return text
    }

    private static func escaped(_ text: String, keepingNewlines: Bool) -> String {
        let text = keepingNewlines ? text.replacingCRLF : text
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A where keepingNewlines, 0x09:
                result.unicodeScalars.append(scalar)
            case 0x00...0x1F, 0x7F...0x9F:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    /// "\r\n" as "\n", so that text from Windows-style senders is not shown with escaped carriage returns.
    fileprivate var replacingCRLF: String {
        guard contains("\r\n") else { return self }
        return split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n")
    }
}
