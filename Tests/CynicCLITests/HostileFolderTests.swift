import CynicTestSupport
import Foundation
import Testing

/// A C plugin that greets with `text` and closes.
private func greeter(_ name: String, says text: String) -> String {
    """
    #include <cynic/plugin.h>
    #include <string.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) {
        (void)instance;
        host->send(conn, "\(text)", strlen("\(text)"));
        host->close(conn);
        return NULL;
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "\(name)",
        .create = create, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

/// What a new connection to `port` reads, to the end.
private func answer(_ port: Int) throws -> String {
    String(decoding: try SocketClient(port: port).receiveAll().bytes, as: UTF8.self)
}

/// A plugin folder as users meet it while cynic serves from it: an interrupted copy, a FIFO, a
/// folder anyone can write. cynic stays up and says, in one line, which file and why.
@Suite("Hostile plugin folders")
struct HostileFolderTests {
    @Test("a truncated copy renamed into a watched folder is refused; the service keeps answering, the whole file loads")
    func truncatedCopyWhileServing() throws {
        let folder = TemporaryFolder("cynic-hostile")
        let staging = TemporaryFolder("cynic-staging")
        try compileCPlugin(greeter("greeter", says: "hello"), named: "greeter", into: folder.path)
        let cynic = try CynicProcess(["serve", "greeter", "--port", "0", "--plugin-dir", folder.path])
        let port = try #require(try cynic.waitForServices(1)["greeter"])
        #expect(try answer(port) == "hello")

        // A second plugin, cut short as an interrupted copy leaves it, then renamed in.
        let whole = try compileCPlugin(greeter("late", says: "late"), named: "late", into: staging.path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        for (index, length) in [1000, 3000, 6000, 9000, 12000].filter({ $0 < bytes.count }).enumerated() {
            let cut = staging.file("cut\(index).so")
            try bytes.prefix(length).write(to: URL(fileURLWithPath: cut))
            #expect(rename(cut, folder.file("cut\(index).so")) == 0)
            try cynic.waitFor("refused plugin \(folder.file("cut\(index).so")): not a loadable shared object: truncated", inError: true)
            #expect(cynic.process.isRunning)
            #expect(try answer(port) == "hello")
        }
        // The same file, whole, loads next to them.
        #expect(rename(whole, folder.file("late.so")) == 0)
        try cynic.waitFor("loaded late version", inError: true)
        #expect(cynic.process.isRunning)
    }

    @Test("a FIFO named x.so neither hangs the start nor stops later plugins from loading")
    func fifoAtStartAndHot() throws {
        let folder = TemporaryFolder("cynic-hostile")
        #expect(mkfifo(folder.file("a-fifo.so"), 0o600) == 0)
        try compileCPlugin(greeter("greeter", says: "hello"), named: "greeter", into: folder.path)
        let cynic = try CynicProcess(["serve", "greeter", "--port", "0", "--plugin-dir", folder.path])
        let port = try #require(try cynic.waitForServices(1, timeout: 20)["greeter"])
        #expect(try answer(port) == "hello")
        #expect(cynic.standardError.contains("refused plugin \(folder.file("a-fifo.so")): not a regular file: a FIFO"))

        // Hot: a FIFO and a dangling link dropped in, then a real plugin after them.
        #expect(mkfifo(folder.file("b-fifo.so"), 0o600) == 0)
        try cynic.waitFor("refused plugin \(folder.file("b-fifo.so")): not a regular file: a FIFO", inError: true)
        #expect(symlink("/nonexistent/gone.so", folder.file("c-dangling.so")) == 0)
        try cynic.waitFor("refused plugin \(folder.file("c-dangling.so")): a symbolic link to '/nonexistent/gone.so', which does not exist",
                          inError: true)
        try compileCPlugin(greeter("after", says: "after"), named: "z-after", into: folder.path)
        try cynic.waitFor("loaded after version", inError: true)

        // SIGTERM is heard: nothing is stuck in open().
        cynic.process.terminate()
        #expect(cynic.waitForExit(timeout: 15) != nil)
    }

    @Test("cynic plugins and check do not hang on a FIFO")
    func fifoInOneShotCommands() throws {
        let folder = TemporaryFolder("cynic-hostile")
        #expect(mkfifo(folder.file("fifo.so"), 0o600) == 0)
        let listing = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", folder.path])
        #expect(listing.status == 0)
        #expect(listing.standardOutput.contains("refused plugin \(folder.file("fifo.so")): not a regular file: a FIFO"))
        let check = try runProgram(Paths.cynic, ["check", folder.file("fifo.so")])
        #expect(check.status == 1)
        #expect(check.standardError == "cynic: refused plugin \(folder.file("fifo.so")): not a regular file: a FIFO\n")
    }

    @Test("a plugin folder anyone can write is refused with the fix; --allow-unsafe-plugins loads it and says so")
    func worldWritableFolder() throws {
        let folder = TemporaryFolder("cynic-hostile")
        try compileCPlugin(greeter("greeter", says: "hello"), named: "greeter", into: folder.path)
        #expect(chmod(folder.path, 0o777) == 0)

        let listing = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", folder.path])
        #expect(listing.standardOutput.contains(
            "refused plugin \(folder.file("greeter.so")): its folder \(folder.path) is writable by anyone (mode 0777): "
            + "whoever can write it chooses the code cynic runs (chmod go-w \(folder.path), or --allow-unsafe-plugins)"))
        let refused = try runProgram(Paths.cynic, ["serve", "greeter", "--port", "0", "--plugin-dir", folder.path])
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("unknown behaviour 'greeter'"))

        let cynic = try CynicProcess(["serve", "greeter", "--port", "0", "--plugin-dir", folder.path, "--allow-unsafe-plugins"])
        let port = try #require(try cynic.waitForServices(1)["greeter"])
        #expect(try answer(port) == "hello")
        #expect(cynic.standardError.contains("--allow-unsafe-plugins: plugin files and folders that other users own or can write are loaded"))
    }

    @Test("another user's plugin, copied into a watched folder, is refused while cynic serves")
    func anotherUsersFile() throws {
        guard geteuid() == 0 else { return }  // only root can give a file away
        let folder = TemporaryFolder("cynic-hostile")
        let staging = TemporaryFolder("cynic-staging")
        try compileCPlugin(greeter("greeter", says: "hello"), named: "greeter", into: folder.path)
        let cynic = try CynicProcess(["serve", "greeter", "--port", "0", "--plugin-dir", folder.path])
        let port = try #require(try cynic.waitForServices(1)["greeter"])

        let theirs = try compileCPlugin(greeter("theirs", says: "pwned"), named: "theirs", into: staging.path)
        #expect(chown(theirs, 65534, 65534) == 0)
        #expect(rename(theirs, folder.file("theirs.so")) == 0)
        try cynic.waitFor("refused plugin \(folder.file("theirs.so")): it is owned by nobody (uid 65534), not by root", inError: true)
        #expect(!cynic.standardError.contains("loaded theirs"))
        #expect(try answer(port) == "hello")
    }

    @Test("a plugin's log message with a newline and an escape sequence stays one line, escaped")
    func pluginLogIsOneLine() throws {
        let folder = TemporaryFolder("cynic-hostile")
        try compileCPlugin("""
            #include <cynic/plugin.h>
            static const cynic_host *host;
            static void *create(const cynic_host *h) { host = h; return NULL; }
            static void *conn_open(void *instance, cynic_conn *conn) {
                (void)instance;
                host->log(conn, CYNIC_LOG_WARNING, "first\\nforged: second\\x1b[31m");
                host->close(conn);
                return NULL;
            }
            static const cynic_plugin plugin = {
                .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "chatty",
                .create = create, .conn_open = conn_open,
            };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
            """, named: "chatty", into: folder.path)
        let cynic = try CynicProcess(["serve", "chatty", "--port", "0", "--plugin-dir", folder.path])
        let port = try #require(try cynic.waitForServices(1)["chatty"])
        _ = try SocketClient(port: port).receiveAll()
        try cynic.waitFor("first\\nforged: second\\x1b[31m", inError: true)
        #expect(!cynic.standardError.split(separator: "\n").contains { $0.hasPrefix("forged") })
        #expect(!cynic.standardError.contains("\u{1b}"))
    }
}
