import ArgumentParser
import CynicPlugins

/// `--param NAME=VALUE`, as every command that takes one reads it (`serve`, `check`, `ctl create`,
/// `ctl set`): parsed once, by ArgumentParser, so a malformed one is refused before any command
/// runs, with the parser's one message everywhere:
/// "The value 'x' is invalid for '--param <NAME=VALUE>'".
struct ParameterAssignment: ExpressibleByArgument, Equatable, CustomStringConvertible {
    let name: String
    let value: String

    /// As it was given: "NAME=VALUE".
    var description: String { "\(name)=\(value)" }

    init?(argument: String) {
        let split = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard split.count == 2, !split[0].isEmpty else { return nil }
        name = String(split[0])
        value = String(split[1])
    }

    /// The help of a `--param` option: its value name is part of the parser's error message, so
    /// every command gives the same one.
    static func help(_ text: String) -> ArgumentHelp {
        ArgumentHelp(text, valueName: "NAME=VALUE")
    }

    /// The parameters as the API takes them; a repeated name keeps its last value.
    static func parameters(_ assignments: [ParameterAssignment]) -> [String: String] {
        assignments.reduce(into: [:]) { $0[$1.name] = $1.value }
    }

    /// The parameters as a service takes them, each naming its flag as its origin (so a value the
    /// plugin refuses is named in the error); a repeated name keeps its last value.
    static func inputs(_ assignments: [ParameterAssignment]) -> [String: ParameterInput] {
        parameters(assignments).reduce(into: [:]) { $0[$1.key] = ParameterInput($1.value, origin: "--param \($1.key)") }
    }
}
