import Foundation

public struct CompileFailed: Error, CustomStringConvertible {
    public let output: String
    public init(output: String) { self.output = output }
    public var description: String { "cc failed:\n\(output)" }
}

/// Compiles a C plugin from source, the way a third-party author builds one: `cc -shared
/// -fPIC -I include`, against the public header alone. Returns the `.so` path in `folder`.
@discardableResult
public func compileCPlugin(_ source: String, named name: String, into folder: String,
                           extraFlags: [String] = []) throws -> String {
    let sourceFile = folder + "/\(name).c"
    // Built beside the folder, then renamed in: a watcher never sees a half-written file.
    let output = folder + "/\(name).so"
    let staging = folder + "/.\(name).so.tmp"
    try source.write(toFile: sourceFile, atomically: false, encoding: .utf8)
    let result = try runProgram("cc", ["-shared", "-fPIC", "-Wall", "-Werror", "-Wl,--no-undefined",
                                       "-I", Paths.include, "-o", staging, sourceFile] + extraFlags)
    guard result.status == 0 else { throw CompileFailed(output: result.output) }
    try? FileManager.default.removeItem(atPath: sourceFile)
    guard rename(staging, output) == 0 else { throw CompileFailed(output: "rename failed: \(errno)") }
    return output
}
