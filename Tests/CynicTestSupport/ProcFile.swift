import Foundation

/// The whole text of a file in /proc, read to its end.
///
/// Not `String(contentsOfFile:)`: /proc files say they are empty, and Foundation then reads one
/// page of them. `/proc/self/maps` of a test process is four or more pages, so a mapping past the
/// first was never seen.
public func procFileText(_ path: String) throws -> String {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
    return String(decoding: ChildProcess.readToEndAndClose(descriptor), as: UTF8.self)
}
