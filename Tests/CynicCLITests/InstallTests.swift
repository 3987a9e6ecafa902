import CynicTestSupport
import Foundation
import Testing

/// cynic installed by scripts/install.sh into a temporary prefix, from the build under test, and
/// used from there as a user who has no checkout would: commands run in folders outside it.
final class InstalledCynic: @unchecked Sendable {
    // @unchecked: immutable after init.
    let prefix: TemporaryFolder
    /// An empty folder: as PKG_CONFIG_LIBDIR it hides every .pc file of the machine.
    private let noPkgConfig = TemporaryFolder("cynic-no-pkgconfig")

    var cynic: String { prefix.path + "/bin/cynic" }
    var path: String { prefix.path }

    init() throws {
        prefix = TemporaryFolder("cynic-prefix")
        // The first install in a checkout also builds swift-argument-parser's generate-manual.
        let result = try runProgram(Paths.repository + "/scripts/install.sh", [prefix.path],
                                    environment: ["CYNIC_BIN_PATH": Paths.buildFolder], timeout: 900)
        guard result.status == 0 else {
            throw CynicProcess.StartFailed(description: "scripts/install.sh failed (\(result.status)):\n\(result.output)")
        }
    }

    /// The environment of a user for whom pkg-config finds this install's cynic-plugin.pc.
    var withPkgConfig: [String: String] { ["PKG_CONFIG_PATH": path + "/lib/pkgconfig"] }
    /// The environment of a user whose pkg-config knows no cynic-plugin at all.
    var withoutPkgConfig: [String: String] { ["PKG_CONFIG_PATH": "", "PKG_CONFIG_LIBDIR": noPkgConfig.path] }

    /// Runs `command` with `sh` in `folder`, with this install first on PATH, as a user types it.
    func shell(_ command: String, in folder: String, environment: [String: String] = [:], timeout: Double = 120) throws -> ProgramResult {
        let searchPath = path + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return try runProgram("sh", ["-c", "cd \(shellWord(folder)) && \(command)"],
                              environment: environment.merging(["PATH": searchPath]) { $1 }, timeout: timeout)
    }

    /// Starts a printed `cynic serve ...` line in `folder`, with --json added, with this install
    /// first on PATH; returns it and the port of `service`.
    func serve(_ command: String, in folder: String, service: String) throws -> (CynicProcess, Int) {
        let searchPath = path + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let served = try CynicProcess(["-c", "cd \(shellWord(folder)) && exec \(command) --json"],
                                      environment: ["PATH": searchPath], executable: "/bin/sh")
        let start = try served.waitForStartLine()
        let port = try #require(start.port(service), "\(start.text)")
        return (served, port)
    }
}

/// `word` quoted for sh.
func shellWord(_ word: String) -> String {
    "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// Every file under `folder` whose text names `text`.
func files(in folder: String, naming text: String) -> [String] {
    let found = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []
    return found.filter { relative in
        !relative.hasPrefix(".build") && !relative.contains("/.build")
            && ((try? String(contentsOfFile: folder + "/" + relative, encoding: .utf8))?.contains(text) ?? false)
    }
}

@Suite("Installing cynic", .serialized, .enabled(if: programExists("pkg-config")))
struct InstallTests {
    @Test("scripts/install.sh lays out binary, plugins, header, pkg-config file and kit; the search path finds them")
    func install() throws {
        let installed = try InstalledCynic()
        let prefix = installed.prefix
        let cynic = installed.cynic
        #expect(FileManager.default.isExecutableFile(atPath: cynic))
        #expect(FileManager.default.fileExists(atPath: prefix.path + "/include/cynic/plugin.h"))
        #expect(FileManager.default.fileExists(atPath: prefix.path + "/share/cynic/plugin-kit/include/cynic/plugin.h"))
        #expect(FileManager.default.fileExists(atPath: prefix.path + "/share/cynic/plugin-kit/Sources/CynicPluginKit/PluginDescriptor.swift"))

        // The installed binary says which it is, and which ABI its pkg-config file describes.
        let abi = try ScriptOutputTests.headerABI()
        let version = try runProgram(cynic, ["--version"])
        #expect(version.status == 0 && version.standardOutput.hasSuffix("(plugin ABI \(abi))\n"), "\(version.output)")
        let modversion = try runProgram("pkg-config", ["--modversion", "cynic-plugin"], environment: installed.withPkgConfig)
        #expect(modversion.standardOutput == "\(abi)\n", "\(modversion.output)")

        // The installed cynic finds its plugins in PREFIX/lib/cynic/plugins and says so.
        let listing = try runProgram(cynic, ["plugins"])
        #expect(listing.standardOutput.contains("file: \(prefix.path)/lib/cynic/plugins/reset.so (installed with cynic)"), "\(listing.output)")

        // An author builds against the installed header through pkg-config alone...
        let cflags = try runProgram("pkg-config", ["--cflags", "cynic-plugin"], environment: installed.withPkgConfig)
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
                                   environment: installed.withPkgConfig)
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

    @Test("the manual and the bash, zsh and fish completions are installed where man and the shells look")
    func manualAndCompletions() throws {
        let installed = try InstalledCynic()
        let manual = try runProgram("man", ["-M", installed.path + "/share/man", "-P", "cat", "cynic"],
                                    environment: ["MANWIDTH": "120", "MAN_KEEP_FORMATTING": ""])
        #expect(manual.status == 0, "\(manual.output)")
        for word in ["serve", "new-plugin", "--json", "--version", "--param"] {
            #expect(manual.standardOutput.contains(word), "\(word) is not in the manual:\n\(manual.output)")
        }

        // Bash completes as a user's Tab would: subcommands, then a subcommand's flags.
        let bash = installed.path + "/share/bash-completion/completions/cynic"
        func complete(_ words: [String]) throws -> [String] {
            let line = words.joined(separator: " ")
            let script = """
                source \(shellWord(bash))
                COMP_WORDS=(\(words.map(shellWord).joined(separator: " "))); COMP_CWORD=\(words.count - 1)
                COMP_LINE=\(shellWord(line)); COMP_POINT=\(line.utf8.count)
                _cynic cynic \(shellWord(words.last!)) \(shellWord(words[words.count - 2]))
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let result = try runProgram("bash", ["-c", script], environment: ["PATH": installed.path + "/bin:/usr/bin:/bin"])
            return result.standardOutput.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(try complete(["cynic", "ser"]).contains("serve"))
        #expect(try complete(["cynic", "new-"]).contains("new-plugin"))
        #expect(try complete(["cynic", "serve", "--js"]) == ["--json"])
        #expect(try complete(["cynic", "plugins", "--js"]) == ["--json"])

        let zsh = try String(contentsOfFile: installed.path + "/share/zsh/site-functions/_cynic", encoding: .utf8)
        #expect(zsh.hasPrefix("#compdef cynic"), "\(zsh.prefix(200))")
        let fish = try String(contentsOfFile: installed.path + "/share/fish/vendor_completions.d/cynic.fish", encoding: .utf8)
        #expect(fish.contains("complete -c 'cynic'") || fish.contains("complete -c cynic"), "\(fish.prefix(400))")
        for (shell, file, check) in [("zsh", "share/zsh/site-functions/_cynic", "-n"),
                                     ("fish", "share/fish/vendor_completions.d/cynic.fish", "--no-execute")] where programExists(shell) {
            let syntax = try runProgram(shell, [check, installed.path + "/" + file])
            #expect(syntax.status == 0, "\(shell): \(syntax.output)")
        }
    }

    @Test("an installed cynic's C scaffold builds outside the checkout as printed: through pkg-config, else the installed header")
    func cScaffold() throws {
        let installed = try InstalledCynic()
        let work = TemporaryFolder("cynic-author")

        // pkg-config knows the install: build.sh names no path of this machine.
        let generated = try installed.shell("cynic new-plugin slowpoke --lang c", in: work.path, environment: installed.withPkgConfig)
        #expect(generated.status == 0, "\(generated.output)")
        #expect(generated.standardOutput.contains(
            "builds against <cynic/plugin.h> through pkg-config's cynic-plugin (\(installed.path)/include)\n"), "\(generated.output)")
        let commands = NewPluginTests.nextCommands(generated.standardOutput)
        #expect(commands == ["sh slowpoke/build.sh", "cynic check slowpoke/slowpoke.so",
                             "cynic serve slowpoke --port 0 --plugin-dir slowpoke"], "\(generated.output)")
        try #require(commands.count == 3)
        let script = try String(contentsOfFile: work.file("slowpoke/build.sh"), encoding: .utf8)
        #expect(script.contains("\ncflags=\"$(pkg-config --cflags cynic-plugin)\"\ncc -shared -fPIC -Wall -Werror $cflags -o slowpoke.so slowpoke.c\n"),
                "\(script)")
        #expect(files(in: work.path, naming: installed.path).isEmpty && files(in: work.path, naming: Paths.repository).isEmpty,
                "\(script)")

        let build = try installed.shell(commands[0], in: work.path, environment: installed.withPkgConfig)
        #expect(build.status == 0, "\(build.output)")
        let check = try installed.shell(commands[1], in: work.path)
        #expect(check.status == 0 && check.standardOutput.contains(#"send 21 bytes  "Hello from slowpoke!\n""#), "\(check.output)")
        let (served, port) = try installed.serve(commands[2], in: work.path, service: "slowpoke")
        #expect(String(decoding: try SocketClient(port: port).receiveAll().bytes, as: UTF8.self) == "Hello from slowpoke!\n")
        served.stop()

        // Where pkg-config knows no cynic-plugin, that build.sh stops with pkg-config's own word.
        try FileManager.default.removeItem(atPath: work.file("slowpoke/slowpoke.so"))
        let elsewhere = try installed.shell(commands[0], in: work.path, environment: installed.withoutPkgConfig)
        #expect(elsewhere.status != 0 && elsewhere.standardError.contains("cynic-plugin"), "\(elsewhere.output)")
        #expect(!FileManager.default.fileExists(atPath: work.file("slowpoke/slowpoke.so")))

        // And a scaffold written there builds against the header beside the installed binary.
        let fallback = try installed.shell("cynic new-plugin slowpoke --lang c --http --dir beside", in: work.path,
                                           environment: installed.withoutPkgConfig)
        #expect(fallback.status == 0, "\(fallback.output)")
        #expect(fallback.standardOutput.contains("builds against <cynic/plugin.h> in \(installed.path)/include (beside this cynic; "
            + "pkg-config knows no cynic-plugin)\n"), "\(fallback.output)")
        let besideScript = try String(contentsOfFile: work.file("beside/build.sh"), encoding: .utf8)
        #expect(besideScript.contains("\ncc -shared -fPIC -Wall -Werror -I \(installed.path)/include -o slowpoke.so slowpoke.c\n"),
                "\(besideScript)")
        let besideCommands = NewPluginTests.nextCommands(fallback.standardOutput)
        try #require(besideCommands.count == 3)
        let besideBuild = try installed.shell(besideCommands[0], in: work.path, environment: installed.withoutPkgConfig)
        #expect(besideBuild.status == 0, "\(besideBuild.output)")
        let (web, webPort) = try installed.serve(besideCommands[2], in: work.path, service: "slowpoke")
        let curl = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(webPort)/"])
        #expect(curl.standardOutput == "Hello from slowpoke!\n", "\(curl.output)")
        web.stop()
    }

    @Test("an installed cynic's Swift scaffold builds outside the checkout as printed, against the installed kit")
    func swiftScaffold() throws {
        let installed = try InstalledCynic()
        let work = TemporaryFolder("cynic-author")
        let kit = installed.path + "/share/cynic/plugin-kit"
        let generated = try installed.shell("cynic new-plugin slowpoke --lang swift", in: work.path)
        #expect(generated.status == 0, "\(generated.output)")
        #expect(generated.standardOutput.contains("builds against CynicPluginKit in \(kit) (installed with cynic); "
            + "CYNIC_PLUGIN_KIT=DIR builds against another copy\n"), "\(generated.output)")
        let commands = NewPluginTests.nextCommands(generated.standardOutput)
        #expect(commands == ["swift build --package-path slowpoke", "cynic check slowpoke/.build/debug/libslowpoke.so",
                             "cynic serve slowpoke --port 0 --plugin-dir slowpoke/.build/debug"], "\(generated.output)")
        try #require(commands.count == 3)
        let manifest = try String(contentsOfFile: work.file("slowpoke/Package.swift"), encoding: .utf8)
        #expect(manifest.contains(#"let kit = Context.environment["CYNIC_PLUGIN_KIT"] ?? "\#(kit)""#), "\(manifest)")
        #expect(files(in: work.path, naming: Paths.repository).isEmpty, "\(manifest)")

        // CYNIC_PLUGIN_KIT points the package elsewhere without an edit.
        let elsewhere = try installed.shell("swift package --package-path slowpoke dump-package", in: work.path,
                                            environment: ["CYNIC_PLUGIN_KIT": "/elsewhere/plugin-kit"], timeout: 300)
        #expect(elsewhere.standardOutput.contains("/elsewhere/plugin-kit") && !elsewhere.standardOutput.contains(kit), "\(elsewhere.output)")

        let build = try installed.shell(commands[0], in: work.path, timeout: 900)
        #expect(build.status == 0, "\(build.output)")
        #expect(!build.output.contains("warning:"), "\(build.output)")
        let check = try installed.shell(commands[1], in: work.path)
        #expect(check.status == 0 && check.standardOutput.contains(#"send 21 bytes  "Hello from slowpoke!\n""#), "\(check.output)")
        let (served, port) = try installed.serve(commands[2], in: work.path, service: "slowpoke")
        #expect(String(decoding: try SocketClient(port: port).receiveAll().bytes, as: UTF8.self) == "Hello from slowpoke!\n")
        served.stop()
    }
}
