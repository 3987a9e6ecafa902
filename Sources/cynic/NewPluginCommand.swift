import ArgumentParser
import Foundation

struct NewPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-plugin",
        abstract: "Write a ready plugin to start from: a C source and its build script, or a Swift package.",
        discussion: """
            The plugin is a small but real behaviour: it greets every connection (its `greeting` \
            parameter) and closes, or with --http answers every request with 200. It builds as \
            written; the commands printed at the end build it, check it and serve it. A C plugin \
            builds against <cynic/plugin.h> through `pkg-config --cflags cynic-plugin`, else the \
            header beside this cynic (PREFIX/include), else its checkout's; a Swift one against \
            the CynicPluginKit installed with cynic (PREFIX/share/cynic/plugin-kit), else the \
            checkout, or CYNIC_PLUGIN_KIT. Existing files are never overwritten. \
            Example: cynic new-plugin slow-hello --lang c
            """)

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case c, swift
    }

    @Argument(help: "The behaviour's name: lowercase letters, digits, '-' and '_'.")
    var name: String

    @Option(help: "The plugin's language: c or swift.")
    var lang: Language

    @Option(help: ArgumentHelp("The folder to write into (default: ./NAME).", valueName: "DIR"))
    var dir: String?

    @Flag(help: "An HTTP/1.x behaviour (answers 200) instead of a raw TCP one (sends a line).")
    var http = false

    func validate() throws {
        let allowed = { (byte: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard !name.isEmpty, name.utf8.allSatisfy(allowed) else {
            throw ValidationError("'\(name)' is not a behaviour name: use lowercase letters, digits, '-' and '_'")
        }
    }

    func run() throws {
        let inputs = PluginBuildInputs.forThisCynic()
        let template: PluginTemplate
        do {
            template = lang == .c ? PluginTemplate.c(name: name, http: http, header: try inputs.header())
                                  : PluginTemplate.swift(name: name, http: http, kit: try inputs.kit())
        } catch {
            throw failure("\(error)")
        }
        let folder = dir ?? name
        // Every file is checked before any is written: a refusal leaves nothing half-made.
        for file in template.files where FileManager.default.fileExists(atPath: joined(folder, file.path)) {
            throw failure("\(joined(folder, file.path)) already exists: not overwriting it (remove it, or give another --dir)")
        }
        do {
            for file in template.files {
                let path = joined(folder, file.path)
                let parent = (path as NSString).deletingLastPathComponent
                if !parent.isEmpty {
                    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
                }
                try file.text.write(toFile: path, atomically: false, encoding: .utf8)
                if file.executable {
                    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
                }
            }
        } catch {
            throw failure("cannot write the plugin into \(folder): \(error.localizedDescription)")
        }
        for file in template.files {
            print("wrote \(joined(folder, file.path))")
        }
        print(template.buildsAgainst)
        print("next:")
        for command in template.commands(folder) {
            print("  \(command)")
        }
    }
}

/// The files of a new plugin and the commands that take it from scaffold to serving.
struct PluginTemplate {
    struct File {
        /// Relative to the plugin's folder.
        let path: String
        let text: String
        var executable = false
    }

    let files: [File]
    /// What it builds against, and where that came from: the line printed before the commands.
    let buildsAgainst: String
    /// The commands, given the plugin's folder as the user wrote it.
    let commands: (String) -> [String]

    /// `NAME.c` and `build.sh`, compiled against cynic's header alone.
    static func c(name: String, http: Bool, header: PluginHeader) -> PluginTemplate {
        let script: String
        let buildsAgainst: String
        switch header {
        case .pkgConfig(let includeFolder):
            buildsAgainst = "builds against <cynic/plugin.h> through pkg-config's cynic-plugin (\(includeFolder))"
            // The flags in a variable first: under `set -e` a pkg-config that knows no cynic-plugin
            // stops the script with its own message, instead of cc failing on the #include.
            script = """
                #!/bin/sh
                # Builds \(name).so against cynic's plugin header alone, which pkg-config finds:
                # cynic-plugin.pc comes with cynic (scripts/install.sh PREFIX); for a PREFIX that
                # pkg-config does not search, set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig.
                set -e
                cd "$(dirname "$0")"
                cflags="$(pkg-config --cflags cynic-plugin)"
                \(cBuildLine(name: name, includeFlags: "$cflags"))

                """
        case .folder(let folder, let origin):
            buildsAgainst = "builds against <cynic/plugin.h> in \(folder) (\(origin); pkg-config knows no cynic-plugin)"
            script = """
                #!/bin/sh
                # Builds \(name).so against cynic's plugin header alone, in \(folder)
                # (\(origin)). Where cynic is installed with its cynic-plugin.pc,
                # $(pkg-config --cflags cynic-plugin) gives the flags instead of this -I.
                set -e
                cd "$(dirname "$0")"
                \(cBuildLine(name: name, includeFlags: "-I " + shellQuoted(folder)))

                """
        }
        return PluginTemplate(
            files: [File(path: "\(name).c", text: http ? cHTTPSource(name: name) : cRawSource(name: name)),
                    File(path: "build.sh", text: script, executable: true)],
            buildsAgainst: buildsAgainst,
            commands: { folder in
                ["sh \(shellQuoted(joined(folder, "build.sh")))",
                 "cynic check \(shellQuoted(joined(folder, "\(name).so")))",
                 "cynic serve \(name) --port 0 --plugin-dir \(shellQuoted(folder))"]
            })
    }

    /// The line a C plugin is built with: warnings are errors, the header is the only input.
    static func cBuildLine(name: String, includeFlags: String) -> String {
        "cc -shared -fPIC -Wall -Werror \(includeFlags) -o \(name).so \(name).c"
    }

    /// A package with one dynamic library product, depending on cynic's CynicPluginKit.
    static func swift(name: String, http: Bool, kit: PluginKit) -> PluginTemplate {
        let target = swiftTargetName(name)
        // A path dependency is known by its folder's name unless it is given one: `name:` makes
        // `package: "cynic"` right whatever the kit's folder is called.
        let manifest = """
            // swift-tools-version:6.0
            import PackageDescription

            // CynicPluginKit, the Swift side of cynic's plugin ABI, is the package in
            // \(kit.folder) (\(kit.origin)).
            // To build against another copy (another install's PREFIX/share/cynic/plugin-kit, or a
            // checkout of cynic), set CYNIC_PLUGIN_KIT to its folder, or change the path below.
            let kit = Context.environment["CYNIC_PLUGIN_KIT"] ?? \(swiftQuoted(kit.folder))

            let package = Package(
                name: "\(name)",
                platforms: [.macOS(.v13)],
                products: [.library(name: "\(name)", type: .dynamic, targets: ["\(target)"])],
                dependencies: [.package(name: "cynic", path: kit)],
                targets: [.target(name: "\(target)", dependencies: [.product(name: "CynicPluginKit", package: "cynic")])]
            )

            """
        return PluginTemplate(
            files: [File(path: "Package.swift", text: manifest),
                    File(path: "Sources/\(target)/\(target).swift",
                         text: http ? swiftHTTPSource(name: name) : swiftRawSource(name: name)),
                    File(path: ".gitignore", text: ".build/\n")],
            buildsAgainst: "builds against CynicPluginKit in \(kit.folder) (\(kit.origin)); "
                + "CYNIC_PLUGIN_KIT=DIR builds against another copy",
            commands: { folder in
                ["swift build --package-path \(shellQuoted(folder))",
                 "cynic check \(shellQuoted(joined(folder, ".build/debug/lib\(name).so")))",
                 "cynic serve \(name) --port 0 --plugin-dir \(shellQuoted(joined(folder, ".build/debug")))"]
            })
    }

    /// "slow-hello" → "SlowHelloPlugin": a module name no target of cynic's package has.
    static func swiftTargetName(_ name: String) -> String {
        var target = name.split(whereSeparator: { $0 == "-" || $0 == "_" })
            .map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined()
        if target.first?.isNumber ?? true { target = "P" + target }
        return target.hasSuffix("Plugin") ? target : target + "Plugin"
    }
}

// MARK: - The sources

extension PluginTemplate {
    static func cRawSource(name: String) -> String {
        #"""
        /*
         * \#(name) — a cynic behaviour: greets every connection, then closes it (FIN).
         *
         * A plugin never touches a socket: cynic calls it when a connection opens (and when bytes
         * arrive, and when the connection ends), and the plugin asks cynic for actions — send, wait,
         * close, reset, shutdown_write, stop_reading — which cynic performs in order. Every type and
         * function used here is documented in <cynic/plugin.h>: the descriptor (cynic_plugin), the
         * parameters (cynic_param and the configure function), the host's function table
         * (cynic_host), and which thread calls what (THREADS).
         *
         *     sh build.sh                                      # builds \#(name).so
         *     cynic check \#(name).so --param greeting=Hi       # runs it once, shows each action
         *     cynic serve \#(name) --port 0 --plugin-dir .      # serves it
         */
        #include <cynic/plugin.h>
        #include <stdlib.h>
        #include <string.h>

        /* One service's state: made by create, filled by configure, then only read, because the
         * connections of one service may run on several threads at once. */
        typedef struct {
            const cynic_host *host; /* the host's function table, valid until the process exits */
            char *line;             /* the greeting and its newline */
        } service;

        static void *service_create(const cynic_host *host) {
            service *self = calloc(1, sizeof *self);
            if (self) self->host = host;
            return self; /* with a destroy function, NULL means out of memory: the service is refused */
        }

        static void service_destroy(void *instance) {
            service *self = instance;
            free(self->line);
            free(self);
        }

        /* Called once per service, with each parameter as an ordinary C argument in the order of
         * `params` below. Returns NULL to accept the values, or a message saying what is wrong. */
        static const char *service_configure(void *instance, const char *greeting) {
            service *self = instance;
            if (greeting == NULL || greeting[0] == '\0') return "greeting must not be empty";
            size_t length = strlen(greeting);
            self->line = malloc(length + 2);
            if (self->line == NULL) return "out of memory";
            memcpy(self->line, greeting, length);
            memcpy(self->line + length, "\n", 2);
            return NULL;
        }

        /* A connection was accepted: queue its actions, which cynic performs in order; the close
         * ends the connection. Returns the connection's own state: none here. */
        static void *conn_open(void *instance, cynic_conn *conn) {
            service *self = instance;
            self->host->send(conn, self->line, strlen(self->line)); /* copied before it returns */
            self->host->close(conn);
            return NULL;
        }

        static const cynic_param params[] = {
            {"greeting", CYNIC_TYPE_STRING, "Hello from \#(name)!", "The line sent to every client."},
        };

        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION,
            .struct_size = sizeof(cynic_plugin),
            .name = "\#(name)", /* as in `cynic serve \#(name)` */
            .description = "Greets every connection, then closes it.",
            .default_port = 0, /* a port here makes plain `cynic` serve it at start */
            .params = params,
            .param_count = sizeof params / sizeof params[0],
            .configure = CYNIC_CONFIGURE(service_configure),
            .create = service_create,
            .destroy = service_destroy,
            .conn_open = conn_open,
        };

        /* The one exported symbol: cynic reaches everything else through the descriptor. */
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
            return &plugin;
        }

        """#
    }

    static func cHTTPSource(name: String) -> String {
        #"""
        /*
         * \#(name) — a cynic HTTP/1.x behaviour: answers every request with 200 and a line of text.
         *
         * A plugin never touches a socket: cynic parses each request and calls conn_request, and the
         * plugin answers by asking cynic for actions — send, wait, close, reset, ... — which cynic
         * performs in order. The answer is raw bytes, so a behaviour may break HTTP on purpose.
         * Every type and function used here is documented in <cynic/plugin.h>: the descriptor
         * (cynic_plugin), the parameters (cynic_param and the configure function), requests
         * (cynic_http_request), the host's function table (cynic_host), and which thread calls
         * what (THREADS).
         *
         *     sh build.sh                                      # builds \#(name).so
         *     cynic check \#(name).so --param greeting=Hi       # runs it once, shows each action
         *     cynic serve \#(name) --port 0 --plugin-dir .      # serves it
         */
        #include <cynic/plugin.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>

        /* One service's state: made by create, filled by configure, then only read, because the
         * connections of one service may run on several threads at once. */
        typedef struct {
            const cynic_host *host; /* the host's function table, valid until the process exits */
            char *body;             /* the greeting and its newline */
        } service;

        static void *service_create(const cynic_host *host) {
            service *self = calloc(1, sizeof *self);
            if (self) self->host = host;
            return self; /* with a destroy function, NULL means out of memory: the service is refused */
        }

        static void service_destroy(void *instance) {
            service *self = instance;
            free(self->body);
            free(self);
        }

        /* Called once per service, with each parameter as an ordinary C argument in the order of
         * `params` below. Returns NULL to accept the values, or a message saying what is wrong. */
        static const char *service_configure(void *instance, const char *greeting) {
            service *self = instance;
            if (greeting == NULL || greeting[0] == '\0') return "greeting must not be empty";
            size_t length = strlen(greeting);
            self->body = malloc(length + 2);
            if (self->body == NULL) return "out of memory";
            memcpy(self->body, greeting, length);
            memcpy(self->body + length, "\n", 2);
            return NULL;
        }

        /* A connection was accepted. The instance, read-only by now, doubles as its state. */
        static void *conn_open(void *instance, cynic_conn *conn) {
            (void)conn;
            return instance;
        }

        /* A complete request arrived: queue the answer. With keep-alive, cynic hands over the
         * client's next request once everything queued here is done. */
        static void conn_request(void *state, cynic_conn *conn, const cynic_http_request *request) {
            const service *self = state;
            char head[256];
            int length = snprintf(head, sizeof head,
                                  "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: text/plain\r\n"
                                  "Content-Length: %zu\r\n"
                                  "%s\r\n",
                                  strlen(self->body), request->keep_alive ? "" : "Connection: close\r\n");
            self->host->send(conn, head, (size_t)length); /* copied before it returns */
            self->host->send(conn, self->body, strlen(self->body));
            if (!request->keep_alive) self->host->close(conn);
        }

        static const cynic_param params[] = {
            {"greeting", CYNIC_TYPE_STRING, "Hello from \#(name)!", "The body of every answer."},
        };

        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION,
            .struct_size = sizeof(cynic_plugin),
            .name = "\#(name)", /* as in `cynic serve \#(name)` */
            .description = "Answers every request with 200 and a greeting.",
            .default_port = 0, /* a port here makes plain `cynic` serve it at start */
            .flags = CYNIC_PLUGIN_HTTP1, /* cynic parses requests: conn_request instead of conn_data */
            .params = params,
            .param_count = sizeof params / sizeof params[0],
            .configure = CYNIC_CONFIGURE(service_configure),
            .create = service_create,
            .destroy = service_destroy,
            .conn_open = conn_open,
            .conn_request = conn_request,
        };

        /* The one exported symbol: cynic reaches everything else through the descriptor. */
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
            return &plugin;
        }

        """#
    }

    /// The comment, configure function and descriptor both Swift sources share.
    private static func swiftSource(name: String, summary: String, description: String, http: Bool,
                                    behaviour: String) -> String {
        #"""
        // \#(name) — a cynic behaviour: \#(summary)
        //
        // Built on CynicPluginKit, which fills cynic's C descriptor: no Swift type crosses into
        // cynic. <cynic/plugin.h>, in the kit's include/ folder (see Package.swift), documents
        // every call (which thread makes it, who owns what); cynic's README ("Writing a plugin")
        // and docs/plugins.md show more. From this folder:
        //
        //     swift build
        //     cynic check .build/debug/lib\#(name).so --param greeting=Hi
        //     cynic serve \#(name) --port 0 --plugin-dir .build/debug
        import CynicPluginKit

        \#(behaviour)

        /// Called once per service with the parameters, in the order declared below, as C values;
        /// an error thrown here refuses the service with its message.
        private let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
            instance, greeting in
            Greeter.configure(instance) { greeter in
                guard let greeting, greeting.pointee != 0 else { throw ConfigurationError("greeting must not be empty") }
                greeter.greeting = String(cString: greeting)
            }
        }

        private let plugin = PluginDescriptor(
            name: "\#(name)", description: "\#(description)",
            defaultPort: 0, http: \#(http),  // a port here makes plain `cynic` serve it at start
            params: [Parameter("greeting", .string, default: "Hello from \#(name)!", doc: "\#(http ? "The body of every answer." : "The line sent to every client.")")],
            configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: Greeter.self)

        /// The one exported symbol: cynic reaches everything else through the descriptor.
        @_cdecl("cynic_plugin_entry")
        public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }

        """#
    }

    static func swiftRawSource(name: String) -> String {
        swiftSource(name: name, summary: "greets every connection, then closes it (FIN).",
                    description: "Greets every connection, then closes it.", http: false, behaviour: #"""
            /// One service: made on `create`, given its parameters by `configure`, then shared by
            /// every connection, on several threads at once: only read it from then on.
            final class Greeter: Behaviour, ConnectionHandler {
                var greeting = ""

                /// A connection was accepted: queue its actions, which cynic performs in order; the
                /// close ends the connection. Nothing is kept per connection: the behaviour handles it.
                func open(_ conn: Connection) -> any ConnectionHandler {
                    conn.send(greeting + "\n")
                    conn.close()
                    return self
                }
            }
            """#)
    }

    static func swiftHTTPSource(name: String) -> String {
        swiftSource(name: name, summary: "answers every request with 200 and a line of text.",
                    description: "Answers every request with 200 and a greeting.", http: true, behaviour: #"""
            /// One service: made on `create`, given its parameters by `configure`, then shared by
            /// every connection, on several threads at once: only read it from then on.
            final class Greeter: Behaviour, ConnectionHandler {
                var greeting = ""

                /// A complete request arrived: queue the answer, raw bytes cynic sends in order (a
                /// behaviour may break HTTP on purpose).
                func request(_ request: HTTPRequest, on conn: Connection) {
                    let body = Array((greeting + "\n").utf8)
                    conn.send(HTTPResponse.head(headers: ["Content-Type": "text/plain",
                                                          "Content-Length": String(body.count),
                                                          "Connection": "close"]))
                    conn.send(body)
                    conn.close()
                }
            }
            """#)
    }
}

/// `folder/path`, without doubling a slash.
private func joined(_ folder: String, _ path: String) -> String {
    folder.hasSuffix("/") ? folder + path : folder + "/" + path
}

/// A word for `sh`: as is when it is plain, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_./+=:,@%".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// A Swift string literal of `text`.
private func swiftQuoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
