import Foundation

/// Where things are, for tests: the repository, and the build folder that holds the test
/// executable beside `cynic` and the shipped plugins.
public enum Paths {
    /// The repository's root, from this file's path (Tests/CynicTestSupport/Paths.swift).
    public static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static let include = repository + "/include"

    /// The folder of the running test executable, links resolved: the build products.
    public static let buildFolder: String = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        // The test bundle on Linux is `<build>/cynicPackageTests.xctest`, a plain executable.
        return executable.deletingLastPathComponent().path
    }()

    public static let cynic = buildFolder + "/cynic"

    /// A shipped plugin's built file.
    public static func shippedPlugin(_ name: String) -> String {
        buildFolder + "/libcynic-plugin-\(name).so"
    }
}

/// A fresh temporary folder, removed when the value is released.
public final class TemporaryFolder: @unchecked Sendable {
    // @unchecked: `path` is immutable.
    public let path: String

    public init(_ label: String = "cynic-test") {
        let template = NSTemporaryDirectory() + "\(label)-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { fatalError("mkdtemp failed: \(errno)") }
        path = String(cString: made)
    }

    deinit { remove() }

    /// Removes the folder and everything in it now; harmless when already removed.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let file = file(name)
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        return file
    }
}
