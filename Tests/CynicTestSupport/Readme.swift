import Foundation

/// The README's code, run as a reader would: its examples cannot rot.
public enum Readme {
    public static let text = try! String(contentsOfFile: Paths.repository + "/README.md", encoding: .utf8)

    /// The fenced code blocks of a language, in order.
    public static func blocks(_ language: String) -> [String] {
        let parts = text.components(separatedBy: "```")
        return stride(from: 1, to: parts.count, by: 2).compactMap { index in
            let block = parts[index]
            guard block.hasPrefix(language + "\n") else { return nil }
            return String(block.dropFirst(language.count + 1))
        }
    }
}
