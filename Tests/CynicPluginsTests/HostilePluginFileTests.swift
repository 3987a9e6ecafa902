import CynicPlugins
import CynicTestSupport
import Foundation
import Testing

/// What a plugin folder meets in real life — an interrupted copy, a FIFO, a dangling link,
/// another user's file, a folder anyone can write, a file for another machine — each refused with
/// one line naming the file and the cause, never a crash or a hang.
@Suite("Hostile plugin files")
struct HostilePluginFileTests {
    private static func bytes(of file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    private static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The end of the last `PT_LOAD` segment's file bytes: what ld.so maps and touches.
    private static func endOfLoadedSegments(_ elf: [UInt8]) -> Int {
        func field(_ offset: Int, _ size: Int) -> Int { (0..<size).reduce(0) { $0 | Int(elf[offset + $1]) << (8 * $1) } }
        let table = field(32, 8), entrySize = field(54, 2), count = field(56, 2)
        return (0..<count).map { table + $0 * entrySize }.filter { field($0, 4) == 1 }
            .map { field($0 + 8, 8) + field($0 + 32, 8) }.max() ?? 0
    }

    private static func refusal(loading file: String, trust: PluginTrust = .ownerOnly) -> String? {
        do {
            _ = try Plugin.load(file: file, trust: trust)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("every cut of a real plugin is refused as truncated, before ld.so could crash on it")
    func truncatedCopies() throws {
        let folder = TemporaryFolder()
        let plugin = try compileCPlugin(minimalPlugin(name: "whole"), named: "whole", into: folder.path)
        let original = try Self.bytes(of: plugin)
        let loadedEnd = Self.endOfLoadedSegments(original)
        #expect(loadedEnd > 4096 && loadedEnd <= original.count)
        // Cut points across the loaded part: each used to end the process with SIGBUS inside
        // dlopen. (Past it are the section headers and symbols ld.so does not need: a file cut
        // there loads and runs.)
        var truncated = 0
        let cuts = Array(stride(from: 0, to: loadedEnd, by: 97))
        for length in cuts {
            let cut = folder.file("cut.so")
            try Self.write(Array(original.prefix(length)), to: cut)
            let reason = try #require(Self.refusal(loading: cut), "a \(length)-byte cut loaded")
            #expect(reason.hasPrefix("refused plugin \(cut): not a loadable shared object: "))
            #expect(!reason.contains("\n"))
            if reason.contains("truncated") { truncated += 1 }
        }
        #expect(truncated == cuts.count, "every cut is told as truncated, not as something else")
        #expect(Self.refusal(loading: plugin) == nil, "the whole file still loads")
    }

    @Test("a shared object for another machine, an executable, a 32-bit file: each says what it is")
    func wrongKindsOfELF() throws {
        let folder = TemporaryFolder()
        let plugin = try compileCPlugin(minimalPlugin(name: "native"), named: "native", into: folder.path)
        var arm = try Self.bytes(of: plugin)
        arm[18] = 183; arm[19] = 0  // e_machine: aarch64
        try Self.write(arm, to: folder.file("arm.so"))
        #expect(Self.refusal(loading: folder.file("arm.so"))?.hasSuffix(
            "not a loadable shared object: built for aarch64 (e_machine 183), this machine is \(ELFImage.machineNameForTests)") == true)

        var executable = try Self.bytes(of: plugin)
        executable[16] = 2; executable[17] = 0  // e_type: ET_EXEC
        try Self.write(executable, to: folder.file("exec.so"))
        #expect(Self.refusal(loading: folder.file("exec.so"))?.contains("an executable, not a shared object") == true)

        var narrow = try Self.bytes(of: plugin)
        narrow[4] = 1  // EI_CLASS: 32-bit
        try Self.write(narrow, to: folder.file("narrow.so"))
        #expect(Self.refusal(loading: folder.file("narrow.so"))?.contains("a 32-bit ELF file") == true)
    }

    @Test("a FIFO, a folder, a dangling link and a link loop are refused at once with what they are")
    func notFiles() throws {
        let folder = TemporaryFolder()
        #expect(mkfifo(folder.file("fifo.so"), 0o600) == 0)
        #expect(symlink(folder.file("fifo.so"), folder.file("to-fifo.so")) == 0)
        #expect(mkdir(folder.file("folder.so"), 0o700) == 0)
        #expect(symlink("/nonexistent/plugin.so", folder.file("dangling.so")) == 0)
        #expect(symlink(folder.file("loop.so"), folder.file("loop.so")) == 0)

        let started = Date()
        let catalog = try PluginCatalog.load([PluginDirectory(path: folder.path)])
        // Opened without blocking: a FIFO with no writer used to hang here for ever.
        #expect(Date().timeIntervalSince(started) < 5)
        let reasons = Dictionary(uniqueKeysWithValues: catalog.refusals.map {
            (String($0.file.split(separator: "/").last!), $0.reason.description)
        })
        #expect(reasons["fifo.so"] == "not a regular file: a FIFO")
        #expect(reasons["to-fifo.so"] == "not a regular file: a FIFO")
        #expect(reasons["folder.so"] == "not a regular file: a folder")
        #expect(reasons["dangling.so"] == "a symbolic link to '/nonexistent/plugin.so', which does not exist")
        #expect(reasons["loop.so"] == "a symbolic link loop (too many levels of links)")
        #expect(catalog.plugins.isEmpty)
    }

    @Test("a plugin others can write, in a folder others can write, or another user's, is refused with the fix")
    func unsafePermissions() throws {
        let folder = TemporaryFolder()
        let plugin = try compileCPlugin(minimalPlugin(name: "guarded"), named: "guarded", into: folder.path)
        #expect(Self.refusal(loading: plugin) == nil)

        #expect(chmod(folder.path, 0o777) == 0)
        #expect(Self.refusal(loading: plugin) == "refused plugin \(plugin): its folder \(folder.path) is writable by anyone (mode 0777): "
                + "whoever can write it chooses the code cynic runs (chmod go-w \(folder.path), or --allow-unsafe-plugins)")
        #expect(Self.refusal(loading: plugin, trust: .anyone) == nil, "--allow-unsafe-plugins loads it")
        #expect(chmod(folder.path, 0o770) == 0)
        #expect(Self.refusal(loading: plugin)?.contains("is writable by its group (mode 0770)") == true)
        #expect(chmod(folder.path, 0o700) == 0)

        #expect(chmod(plugin, 0o666) == 0)
        #expect(Self.refusal(loading: plugin)?.hasSuffix(
            "it is writable by anyone (mode 0666): whoever can write it chooses the code cynic runs (chmod go-w \(plugin), or --allow-unsafe-plugins)") == true)
        #expect(chmod(plugin, 0o644) == 0)

        // A sticky folder anyone can write (like /tmp) is fine: others cannot replace our files.
        let shared = TemporaryFolder()
        #expect(chmod(shared.path, 0o1777) == 0)
        let inner = shared.file("mine")
        #expect(mkdir(inner, 0o755) == 0)
        let sticky = try compileCPlugin(minimalPlugin(name: "sticky"), named: "sticky", into: inner)
        #expect(Self.refusal(loading: sticky) == nil)

        // A link to a plugin in a folder anyone can write is judged by where the code is.
        let open = TemporaryFolder()
        let target = try compileCPlugin(minimalPlugin(name: "linked"), named: "linked", into: open.path)
        #expect(chmod(open.path, 0o777) == 0)
        #expect(symlink(target, folder.file("linked.so")) == 0)
        #expect(Self.refusal(loading: folder.file("linked.so"))?.contains("its folder \(open.path) is writable by anyone") == true)

        if geteuid() == 0 {
            #expect(chown(plugin, 65534, 65534) == 0)
            #expect(Self.refusal(loading: plugin)?.contains("it is owned by nobody (uid 65534), not by root") == true)
            #expect(Self.refusal(loading: plugin, trust: .anyone) == nil)
        }
    }

    @Test("a name with control characters is printed escaped on one line; a 10 MB name is refused by its length")
    func hostileNames() throws {
        let folder = TemporaryFolder()
        let escape = try compileCPlugin(minimalPlugin(name: "evil\\x1b[2J\\nforged line"), named: "escape", into: folder.path)
        let reason = try #require(Self.refusal(loading: escape))
        #expect(reason.hasSuffix("invalid descriptor: name 'evil\\x1b[2J\\nforged line' may only have lowercase letters, digits, '-' and '_'"))
        #expect(!reason.contains("\n") && !reason.contains("\u{1b}"))

        let huge = try compileCPlugin("""
            #include <cynic/plugin.h>
            #include <string.h>
            static char name[10 << 20];
            static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; (void)conn; return NULL; }
            static cynic_plugin plugin = {
                .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .conn_open = conn_open,
            };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
                memset(name, 'a', sizeof name - 1);
                plugin.name = name;
                return &plugin;
            }
            """, named: "huge-name", into: folder.path)
        let long = try #require(Self.refusal(loading: huge))
        #expect(long.hasSuffix("is longer than 64 bytes"))
        #expect(long.count < 300)
    }

    @Test("copy folders of cynics that are gone are removed; those of live ones are kept")
    func staleCopyFolders() throws {
        // The private folder copy folders are made in: the parent of any of them.
        let probe = try PluginCopies()
        let parent = String(probe.directory[..<probe.directory.lastIndex(of: "/")!])
        probe.removeAll()
        // A pid that was just in use and is now free: a child that has exited and been reaped.
        let child = try ChildProcess("/bin/true", [])
        child.waitUntilExit()
        let dead = parent + "/plugins-\(child.processIdentifier)-Stale1"
        let live = parent + "/plugins-\(getpid())-Alive1"
        for folder in [dead, live] {
            #expect(mkdir(folder, 0o700) == 0)
            #expect(FileManager.default.createFile(atPath: folder + "/0123456789abcdef-x.so", contents: Data("x".utf8)))
        }
        defer { try? FileManager.default.removeItem(atPath: live) }

        let copies = try PluginCopies()
        defer { copies.removeAll() }
        #expect(copies.staleFoldersRemoved.contains(dead))
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: live + "/0123456789abcdef-x.so"))
    }

    @Test("PluginFile refuses a missing file and one over the size cap, naming the cause")
    func unreadable() throws {
        let folder = TemporaryFolder()
        #expect { try PluginFile.read(folder.file("missing.so")) } throws: { error in
            "\(error)" == "cannot open it: No such file or directory"
        }
        let big = try folder.write("big.so", "")
        #expect(truncate(big, off_t(PluginFile.maximumSize) + 1) == 0)  // sparse: costs nothing
        #expect { try PluginFile.read(big) } throws: { error in
            "\(error)" == "larger than 512 MiB, the most a plugin file may be"
        }
    }
}

extension ELFImage {
    /// How refusals name this machine.
    static var machineNameForTests: String {
        #if arch(x86_64)
        "x86_64 (e_machine 62)"
        #else
        "aarch64 (e_machine 183)"
        #endif
    }
}
