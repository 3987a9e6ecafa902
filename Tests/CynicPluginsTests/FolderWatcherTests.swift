import CynicPlugins
import CynicTestSupport
import Foundation
import Synchronization
import Testing

/// What a watcher reported, with each file's size when reported (nil: gone), for tests to wait on.
private final class Reports: Sendable {
    struct Entry: Equatable {
        let path: String
        let size: Int?
    }

    private let batches = Mutex<[[Entry]]>([])

    func record(_ batch: [String]) {
        let entries = batch.map { path in
            var status = stat()
            return Entry(path: path, size: stat(path, &status) == 0 ? Int(status.st_size) : nil)
        }
        batches.withLock { $0.append(entries) }
    }

    var all: [[Entry]] { batches.withLock { $0 } }
    var entries: [Entry] { all.flatMap { $0 } }
    var paths: [String] { entries.map(\.path) }

    func count(of path: String) -> Int { paths.filter { $0 == path }.count }

    /// Waits (wide bounds: a loaded 2-core machine) until every path in `paths` was reported.
    func waitFor(_ paths: String..., timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if Set(paths).isSubset(of: self.paths) { return true }
            usleep(10_000)
        }
        return false
    }
}

private func watch(_ directories: [PluginDirectory], settle: Duration = .milliseconds(50),
                   into reports: Reports) throws -> FolderWatcher {
    try FolderWatcher(directories: directories, settle: settle) { reports.record($0) }
}

/// Enough for a report that was going to come to have come: many settle periods.
private func quietPeriod() { usleep(500_000) }

@Suite("Watching plugin folders")
struct FolderWatcherTests {
    @Test("a file written in several steps is reported once, complete, after it is closed")
    func writtenInSteps() throws {
        let folder = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }
        let path = folder.file("steps.so")

        let descriptor = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        try #require(descriptor >= 0)
        let chunk = [UInt8](repeating: 7, count: 1000)
        for _ in 0..<3 {
            #expect(write(descriptor, chunk, chunk.count) == chunk.count)
            usleep(200_000)  // longer than the settle time: only the close may count
        }
        #expect(reports.paths.isEmpty, "reported before the file was closed")
        close(descriptor)

        #expect(reports.waitFor(path))
        quietPeriod()
        #expect(reports.entries == [Reports.Entry(path: path, size: 3000)])
    }

    @Test("a file renamed into the folder is reported; its staging name never is")
    func renamedIn() throws {
        let folder = TemporaryFolder()
        let elsewhere = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }

        let moved = try elsewhere.write("moved.so", "from another folder")
        #expect(rename(moved, folder.file("moved.so")) == 0)
        let staged = try folder.write(".staged.so.tmp", "staged beside it")
        #expect(rename(staged, folder.file("staged.so")) == 0)

        #expect(reports.waitFor(folder.file("moved.so"), folder.file("staged.so")))
        quietPeriod()
        #expect(reports.paths.sorted() == [folder.file("moved.so"), folder.file("staged.so")])
    }

    @Test("a rename is whole when it lands: reported at once, not after the settle; the last report is the last version")
    func renamesAreImmediate() throws {
        let folder = TemporaryFolder()
        let staging = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], settle: .seconds(5), into: reports)
        defer { watcher.stop() }

        let start = Date()
        for version in 1...3 {
            let built = try staging.write("v\(version).so", String(repeating: "x", count: version))
            #expect(rename(built, folder.file("plugin.so")) == 0)
            usleep(20_000)
        }
        #expect(reports.waitFor(folder.file("plugin.so")))
        #expect(Date().timeIntervalSince(start) < 4, "a rename does not wait for the 5 s settle")
        let last = Reports.Entry(path: folder.file("plugin.so"), size: 3)
        let deadline = Date().addingTimeInterval(10)
        while reports.entries.last != last, Date() < deadline { usleep(10_000) }
        #expect(reports.entries.last == last)
    }

    @Test("removing a file, or renaming it away, is reported")
    func removed() throws {
        let folder = TemporaryFolder()
        let elsewhere = TemporaryFolder()
        let doomed = try folder.write("doomed.so", "bytes")
        let leaving = try folder.write("leaving.so", "bytes")
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }

        #expect(unlink(doomed) == 0)
        #expect(rename(leaving, elsewhere.file("leaving.so")) == 0)
        #expect(reports.waitFor(doomed, leaving))
        #expect(reports.entries.allSatisfy { $0.size == nil })
    }

    @Test("temporary files, dot-files, other names and folders are not reported")
    func ignoresOtherNames() throws {
        let folder = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }

        try folder.write("half.so.tmp", "x")
        try folder.write(".hidden.so", "x")
        try folder.write("notes.txt", "x")
        try folder.write("libthing.so.1", "x")
        #expect(mkdir(folder.file("folder.so"), 0o755) == 0)
        // Events are handled in order: once the sentinel is reported, the others would have been.
        try folder.write("sentinel.so", "x")
        #expect(reports.waitFor(folder.file("sentinel.so")))
        quietPeriod()
        #expect(reports.paths == [folder.file("sentinel.so")])
    }

    @Test("cp over an existing file (same inode) is reported once")
    func copiedOver() throws {
        let folder = TemporaryFolder()
        let elsewhere = TemporaryFolder()
        let target = try folder.write("target.so", "old")
        let source = try elsewhere.write("new.so", String(repeating: "new", count: 10_000))
        var before = stat(), after = stat()
        stat(target, &before)
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }

        let result = try runProgram("cp", [source, target])
        #expect(result.status == 0, "\(result.output)")
        stat(target, &after)
        #expect(before.st_ino == after.st_ino, "cp should rewrite the file in place")
        #expect(reports.waitFor(target))
        quietPeriod()
        #expect(reports.entries == [Reports.Entry(path: target, size: 30_000)])
    }

    @Test("two folders are watched, each with its own prefix")
    func twoFolders() throws {
        let plain = TemporaryFolder()
        let build = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: plain.path),
                                 PluginDirectory(path: build.path, prefix: "libcynic-plugin-")], into: reports)
        defer { watcher.stop() }

        try plain.write("one.so", "x")
        try build.write("libFoundation.so", "x")
        try build.write("libcynic-plugin-two.so", "x")
        #expect(reports.waitFor(plain.file("one.so"), build.file("libcynic-plugin-two.so")))
        quietPeriod()
        #expect(reports.paths.sorted() == [plain.file("one.so"), build.file("libcynic-plugin-two.so")].sorted())
    }

    @Test("a symbolic link created in the folder is reported")
    func symbolicLink() throws {
        let folder = TemporaryFolder()
        let elsewhere = TemporaryFolder()
        let target = try elsewhere.write("real.so", "x")
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], into: reports)
        defer { watcher.stop() }

        #expect(symlink(target, folder.file("link.so")) == 0)
        #expect(reports.waitFor(folder.file("link.so")))
        quietPeriod()
        #expect(reports.count(of: folder.file("link.so")) == 1)
    }

    @Test("stop() returns promptly, is idempotent, and no report follows it")
    func stops() throws {
        let folder = TemporaryFolder()
        let reports = Reports()
        let watcher = try watch([PluginDirectory(path: folder.path)], settle: .seconds(1), into: reports)

        try folder.write("pending.so", "x")  // still settling when stop() is called
        let started = ContinuousClock.now
        watcher.stop()
        let took = ContinuousClock.now - started
        #expect(took < .seconds(2), "stop took \(took)")
        watcher.stop()
        try folder.write("after.so", "x")
        usleep(1_500_000)  // past the settle: the pending file would have been reported by now
        #expect(reports.paths.isEmpty)
    }

    @Test("a watcher let go of stops")
    func stopsWhenReleased() throws {
        let folder = TemporaryFolder()
        let reports = Reports()
        _ = try watch([PluginDirectory(path: folder.path)], into: reports)
        try folder.write("unwatched.so", "x")
        usleep(500_000)
        #expect(reports.paths.isEmpty)
    }

    @Test("stop() from inside a report finishes that report, and none follows")
    func stopsFromReport() throws {
        let folder = TemporaryFolder()
        let reports = Reports()
        let box = Mutex<FolderWatcher?>(nil)
        let watcher = try FolderWatcher(directories: [PluginDirectory(path: folder.path)]) { batch in
            reports.record(batch)
            box.withLock { $0 }?.stop()
        }
        box.withLock { $0 = watcher }

        try folder.write("first.so", "x")
        #expect(reports.waitFor(folder.file("first.so")))
        try folder.write("second.so", "x")
        usleep(500_000)
        #expect(reports.paths == [folder.file("first.so")])
        box.withLock { $0 = nil }
    }

    @Test("a folder that cannot be watched is an error naming it")
    func missingFolder() throws {
        let folder = TemporaryFolder()
        let missing = folder.file("missing")
        #expect {
            _ = try FolderWatcher(directories: [PluginDirectory(path: folder.path), PluginDirectory(path: missing)]) { _ in }
        } throws: { error in
            (error as? PluginDirectoryError)?.path == missing
        }
    }
}
