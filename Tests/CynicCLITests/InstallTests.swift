import CynicTestSupport
import Foundation
import Testing

@Suite("Installing cynic")
struct InstallTests {
    @Test("scripts/install.sh lays out binary, plugins, header and pkg-config file; the search path finds them",
          .enabled(if: programExists("pkg-config")))
    func install() throws {
        let prefix = TemporaryFolder("cynic-prefix")
        let result = try runProgram(Paths.repository + "/scripts/install.sh", [prefix.path],
                                    environment: ["CYNIC_BIN_PATH": Paths.buildFolder], timeout: 120)
        #expect(result.status == 0, "\(result.output)")
        let cynic = prefix.path + "/bin/cynic"
        #expect(FileManager.default.isExecutableFile(atPath: cynic))
        #expect(FileManager.default.fileExists(atPath: prefix.path + "/include/cynic/plugin.h"))

        // The installed cynic finds its plugins in PREFIX/lib/cynic/plugins and says so.
        let listing = try runProgram(cynic, ["plugins"])
        #expect(listing.standardOutput.contains("file: \(prefix.path)/lib/cynic/plugins/reset.so (installed with cynic)"), "\(listing.output)")

        // An author builds against the installed header through pkg-config alone...
        let cflags = try runProgram("pkg-config", ["--cflags", "cynic-plugin"],
                                    environment: ["PKG_CONFIG_PATH": prefix.path + "/lib/pkgconfig"])
        #expect(cflags.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "-I\(prefix.path)/include")
        let work = TemporaryFolder()
        try work.write("mine.c", """
            #include <cynic/plugin.h>
            static const cynic_host *host;
            static void *create(const cynic_host *h) { host = h; return NULL; }
            static void *conn_open(void *i, cynic_conn *c) { (void)i; host->send(c, "mine\\n", 5); host->close(c); return NULL; }
            static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
                .name = "mine", .create = create, .conn_open = conn_open };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
            """)
        let userPlugins = work.path + "/home/.local/lib/cynic/plugins"
        let pathPlugins = work.path + "/extra"
        for folder in [userPlugins, pathPlugins] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let build = try runProgram("sh", ["-c", "cc $(pkg-config --cflags cynic-plugin) -shared -fPIC -o '\(userPlugins)/mine.so' '\(work.file("mine.c"))'"],
                                   environment: ["PKG_CONFIG_PATH": prefix.path + "/lib/pkgconfig"])
        #expect(build.status == 0, "\(build.output)")
        // ...installs it for the user, and cynic finds it there, and in CYNIC_PLUGIN_PATH, in that order.
        try FileManager.default.copyItem(atPath: userPlugins + "/mine.so", toPath: pathPlugins + "/mine.so")
        let found = try runProgram(cynic, ["plugins"], environment: ["HOME": work.path + "/home", "CYNIC_PLUGIN_PATH": pathPlugins])
        #expect(found.standardOutput.contains("file: \(userPlugins)/mine.so (~/.local/lib/cynic/plugins)"), "\(found.output)")
        #expect(found.standardOutput.contains("refused plugin \(pathPlugins)/mine.so: behaviour 'mine' is already provided by \(userPlugins)/mine.so"), "\(found.output)")
        let served = try CynicProcess(["serve", "mine", "--port", "0"], environment: ["HOME": work.path + "/home"], executable: cynic)
        let port = try #require(try served.waitForServices(1)["mine"])
        #expect(String(decoding: try SocketClient(port: port).receiveAll().bytes, as: UTF8.self) == "mine\n")
    }
}
