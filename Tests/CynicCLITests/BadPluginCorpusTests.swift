import CynicTestSupport
import Foundation
import Testing

/// A good HTTP plugin, `name`, answering every request with its name; its own service on `port`.
private func goodPlugin(_ name: String, port: Int) -> String {
    """
    #include <cynic/plugin.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; (void)conn; return NULL; }
    static void conn_request(void *state, cynic_conn *conn, const cynic_http_request *request) {
        (void)state; (void)request;
        static const char answer[] = "HTTP/1.1 200 OK\\r\\nContent-Length: \(name.utf8.count + 1)\\r\\nConnection: close\\r\\n\\r\\n\(name)\\n";
        host->send(conn, answer, sizeof answer - 1);
        host->close(conn);
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "\(name)",
        .default_port = \(port), .flags = CYNIC_PLUGIN_HTTP1,
        .create = create, .conn_open = conn_open, .conn_request = conn_request,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

/// A plugin whose descriptor is `fields` (C designated initialisers) around `prelude`.
private func descriptor(_ fields: String, prelude: String = "") -> String {
    """
    #include <cynic/plugin.h>
    #include <stddef.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; host->close(conn); return NULL; }
    \(prelude)
    static const cynic_plugin plugin = { \(fields) };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { (void)create; (void)conn_open; return &plugin; }
    """
}

private let current = ".abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin)"

/// One kind of bad plugin file: how it is made, and the one line cynic says of it.
private struct BadKind: Sendable, CustomStringConvertible {
    enum Making: Sendable {
        /// C compiled with cc (with extra flags).
        case c(String, flags: [String] = [])
        /// These bytes.
        case bytes(@Sendable (_ goodPlugin: [UInt8]) -> [UInt8])
        /// A shared object for another machine (clang --target, or a native one's header bytes
        /// patched when no cross compiler exists).
        case foreign(target: String, machine: UInt16, elfClass: UInt8)
        case fifo
        /// A symbolic link to this target ("" for itself, a loop).
        case symlink(to: String)
    }

    let kind: String
    /// Its file name in the folder, which its line names: one cynic tells every kind apart.
    let file: String
    let making: Making
    /// The line, without the log's prefix, given the file's path and the folder's.
    let line: @Sendable (_ path: String, _ folder: String) -> String

    var description: String { kind }
}

/// A 64-bit machine that is not this one, for a plugin built for another architecture.
#if arch(x86_64)
private let foreignMachine = (name: "aarch64", target: "aarch64-linux-gnu", number: UInt16(183), native: "x86_64 (e_machine 62)")
#else
private let foreignMachine = (name: "x86_64", target: "x86_64-linux-gnu", number: UInt16(62), native: "aarch64 (e_machine 183)")
#endif

/// The ports of the two plugins whose own services fail, never bound: free now.
private let configureFailsPort = freePort(), createFailsPort = freePort()

/// Every kind of bad plugin cynic has refused so far (issue 13, item 6).
private let corpus: [BadKind] = {
    func refused(_ reason: String) -> @Sendable (String, String) -> String {
        { path, _ in "refused plugin \(path): \(reason)" }
    }
    return [
        BadKind(kind: "empty", file: "empty.so", making: .bytes { _ in [] },
                line: refused("not a loadable shared object: truncated: ELF header (64 bytes at offset 0) past the end of the 0-byte file")),
        BadKind(kind: "text", file: "text.so",
                making: .bytes { _ in Array("#!/bin/sh\n# A shell script named like a plugin: longer than an ELF header, and not one.\n".utf8) },
                line: refused("not a loadable shared object: not an ELF file")),
        BadKind(kind: "truncated", file: "truncated.so", making: .bytes { Array($0.prefix(3000)) },
                line: refused("not a loadable shared object: truncated: ")),
        BadKind(kind: "another architecture (\(foreignMachine.name))", file: "foreign.so",
                making: .foreign(target: foreignMachine.target, machine: foreignMachine.number, elfClass: 2),
                line: refused("not a loadable shared object: built for \(foreignMachine.name) (e_machine \(foreignMachine.number)), this machine is \(foreignMachine.native)")),
        BadKind(kind: "another architecture (i386)", file: "i386.so", making: .foreign(target: "i386-linux-gnu", machine: 3, elfClass: 1),
                line: refused("not a loadable shared object: a 32-bit ELF file; this machine loads 64-bit ones")),
        BadKind(kind: "FIFO", file: "fifo.so", making: .fifo, line: refused("not a regular file: a FIFO")),
        BadKind(kind: "symlink loop", file: "loop.so", making: .symlink(to: ""),
                line: refused("a symbolic link loop (too many levels of links)")),
        BadKind(kind: "dangling symlink", file: "dangling.so", making: .symlink(to: "/nonexistent/gone.so"),
                line: refused("a symbolic link to '/nonexistent/gone.so', which does not exist")),
        BadKind(kind: "no entry", file: "no-entry.so", making: .c("int unrelated(void) { return 1; }"),
                line: refused("no entry symbol cynic_plugin_entry")),
        BadKind(kind: "NULL entry", file: "null-entry.so", making: .c("""
                    #include <cynic/plugin.h>
                    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return NULL; }
                    """),
                line: refused("cynic_plugin_entry returned NULL")),
        BadKind(kind: "ABI 0", file: "abi-0.so",
                making: .c(descriptor(".abi_version = 0, .struct_size = sizeof(cynic_plugin), .name = \"abi-zero\", .conn_open = conn_open")),
                line: refused("ABI version 0 instead of 1")),
        BadKind(kind: "ABI from the future", file: "abi-99.so",
                making: .c(descriptor(".abi_version = 99, .struct_size = sizeof(cynic_plugin), .name = \"future\", .conn_open = conn_open")),
                line: refused("ABI version 99 instead of 1")),
        BadKind(kind: "tiny struct", file: "tiny-struct.so",
                making: .c(descriptor(".abi_version = CYNIC_ABI_VERSION, .struct_size = 8, .name = \"tiny\", .conn_open = conn_open")),
                line: refused("invalid descriptor: struct_size 8 is smaller than the ")),
        BadKind(kind: "no name", file: "no-name.so", making: .c(descriptor("\(current), .conn_open = conn_open")),
                line: refused("invalid descriptor: missing name")),
        BadKind(kind: "bad name", file: "bad-name.so", making: .c(descriptor("\(current), .name = \"Bad Name\", .conn_open = conn_open")),
                line: refused("invalid descriptor: name 'Bad Name' may only have lowercase letters, digits, '-' and '_'")),
        BadKind(kind: "overlong name", file: "long-name.so",
                making: .c(descriptor("\(current), .name = \"\(String(repeating: "n", count: 100))\", .conn_open = conn_open")),
                line: refused("invalid descriptor: name '\(String(repeating: "n", count: 64))…' is longer than 64 bytes")),
        BadKind(kind: "duplicate name", file: "z-duplicate.so", making: .c(descriptor("\(current), .name = \"good-a\", .conn_open = conn_open")),
                line: { path, folder in "refused plugin \(path): behaviour 'good-a' is already provided by \(folder)/a-good.so" }),
        BadKind(kind: "unknown parameter type", file: "unknown-type.so", making: .c(descriptor("""
                    \(current), .name = "unknown-type", .params = params, .param_count = 1,
                    .configure = CYNIC_CONFIGURE(configure), .conn_open = conn_open
                    """, prelude: """
                    static const char *configure(void *instance, uint32_t n) { (void)instance; (void)n; return NULL; }
                    static const cynic_param params[] = { { "count", 99, "1", "how many" } };
                    """)),
                line: refused("invalid descriptor: 'unknown-type' parameter 'count' has unknown type 99")),
        BadKind(kind: "bad default", file: "bad-default.so", making: .c(descriptor("""
                    \(current), .name = "bad-default", .params = params, .param_count = 1,
                    .configure = CYNIC_CONFIGURE(configure), .conn_open = conn_open
                    """, prelude: """
                    static const char *configure(void *instance, uint32_t n) { (void)instance; (void)n; return NULL; }
                    static const cynic_param params[] = { { "count", CYNIC_TYPE_UINT32, "-5", "how many" } };
                    """)),
                line: refused("invalid descriptor: parameter 'count': default '-5' is not an unsigned 32-bit integer (0...4294967295)")),
        BadKind(kind: "undefined symbol", file: "undefined.so", making: .c(descriptor("""
                    \(current), .name = "undefined", .conn_open = open_and_call
                    """, prelude: """
                    extern int cynic_corpus_missing(void);
                    static void *open_and_call(void *instance, cynic_conn *conn) { (void)instance; (void)conn; cynic_corpus_missing(); return NULL; }
                    """), flags: ["-Wl,-z,undefs"]),
                line: refused("not a loadable shared object: undefined symbol: cynic_corpus_missing")),
        BadKind(kind: "configure failing", file: "configure-fails.so", making: .c(descriptor("""
                    \(current), .name = "configure-fails", .default_port = \(configureFailsPort), .params = params,
                    .param_count = 1, .configure = CYNIC_CONFIGURE(configure), .create = create, .conn_open = conn_open
                    """, prelude: """
                    static const char *configure(void *instance, uint32_t n) { (void)instance; (void)n; return "configure says no"; }
                    static const cynic_param params[] = { { "count", CYNIC_TYPE_UINT32, "1", "how many" } };
                    """)),
                line: { path, _ in
                    "default service of \(path): service 'configure-fails': behaviour 'configure-fails' refused its parameters: configure says no"
                }),
        BadKind(kind: "create failing", file: "create-fails.so", making: .c(descriptor("""
                    \(current), .name = "create-fails", .default_port = \(createFailsPort), .create = create_nothing,
                    .destroy = destroy, .conn_open = conn_open
                    """, prelude: """
                    static void *create_nothing(const cynic_host *h) { (void)h; return NULL; }
                    static void destroy(void *instance) { (void)instance; }
                    """)),
                line: { path, _ in
                    "default service of \(path): service 'create-fails': behaviour 'create-fails' could not create an instance (create returned NULL)"
                }),
        BadKind(kind: "missing conn_open", file: "no-conn-open.so", making: .c(descriptor("\(current), .name = \"no-conn-open\"")),
                line: refused("invalid descriptor: 'no-conn-open' has no conn_open (and is not a shaper)")),
        BadKind(kind: "missing conn_request", file: "no-conn-request.so",
                making: .c(descriptor("\(current), .name = \"no-conn-request\", .flags = CYNIC_PLUGIN_HTTP1, .conn_open = conn_open")),
                line: refused("invalid descriptor: 'no-conn-request' speaks HTTP/1 but has no conn_request")),
    ]
}()

/// The bad files, made once in a folder of their own (each compiled file as `cc` left it), to be
/// copied or renamed where a test wants them.
private final class Corpus: Sendable {
    let folder = TemporaryFolder("cynic-corpus")
    /// A good plugin's bytes, cut for `truncated`.
    let goodBytes: [UInt8]

    init() throws {
        let scratch = TemporaryFolder("cynic-corpus-scratch")
        let good = try compileCPlugin(goodPlugin("cut", port: 0), named: "cut", into: scratch.path)
        goodBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        for kind in corpus {
            let name = String(kind.file.dropLast(3))
            switch kind.making {
            case .c(let source, let flags):
                try compileCPlugin(source, named: name, into: folder.path, extraFlags: flags)
            case .bytes(let make):
                try Data(make(goodBytes)).write(to: URL(fileURLWithPath: folder.file(kind.file)))
            case .foreign(let target, let machine, let elfClass):
                try Data(Self.foreign(target: target, machine: machine, elfClass: elfClass, native: goodBytes, scratch: scratch))
                    .write(to: URL(fileURLWithPath: folder.file(kind.file)))
            case .fifo, .symlink:
                break  // made where they are needed: they cannot be moved in as files are
            }
        }
    }

    /// A shared object for `target`, from the toolchain's clang and lld when they can build one;
    /// else the native plugin with its ELF header's class and machine set as that target's.
    private static func foreign(target: String, machine: UInt16, elfClass: UInt8, native: [UInt8],
                                scratch: TemporaryFolder) throws -> [UInt8] {
        let source = try scratch.write("foreign.c", "const void *cynic_plugin_entry(void) { return 0; }\n")
        let output = scratch.file("foreign-\(target).so")
        if programExists("clang"),
           let built = try? runProgram("clang", ["--target=\(target)", "-ffreestanding", "-nostdlib", "-shared", "-fPIC",
                                                 "-fuse-ld=lld", "-o", output, source]),
           built.status == 0, let bytes = try? Data(contentsOf: URL(fileURLWithPath: output)) {
            return [UInt8](bytes)
        }
        var patched = native
        patched[4] = elfClass
        patched[18] = UInt8(machine & 0xff)
        patched[19] = UInt8(machine >> 8)
        return patched
    }

    /// Puts `kind` into `destination` as a user installs a plugin: a file renamed in whole, a
    /// FIFO or link made there.
    func place(_ kind: BadKind, in destination: String) throws {
        let target = destination + "/" + kind.file
        switch kind.making {
        case .fifo:
            #expect(mkfifo(target, 0o600) == 0)
        case .symlink(let to):
            #expect(symlink(to.isEmpty ? target : to, target) == 0)
        default:
            // Staged beside the folder under a dot-name, which cynic skips, then renamed in.
            let staged = destination + "/." + kind.file + ".part"
            try FileManager.default.copyItem(atPath: folder.file(kind.file), toPath: staged)
            #expect(rename(staged, target) == 0)
        }
    }
}

/// cynic as installed, with none of its own plugins: its default services are the folder's alone
/// (the shipped ones take fixed ports other tests may hold). A hard link to the build's binary,
/// which finds its plugins beside `bin/`.
private final class BareCynic: Sendable {
    let prefix = TemporaryFolder("cynic-bare")
    var executable: String { prefix.path + "/bin/cynic" }

    init() throws {
        try FileManager.default.createDirectory(atPath: prefix.path + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix.path + "/lib/cynic/plugins", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix.path + "/home", withIntermediateDirectories: true)
        if link(Paths.cynic, executable) != 0 {
            try FileManager.default.copyItem(atPath: Paths.cynic, toPath: executable)
        }
    }

    /// `cynic --plugin-dir FOLDER`: the folder's plugins, each with its own service.
    func serve(_ folder: String) throws -> CynicProcess {
        try CynicProcess(["--plugin-dir", folder, "--no-api", "--no-log-sink"],
                         environment: ["HOME": prefix.path + "/home", "CYNIC_PLUGIN_PATH": ""], executable: executable)
    }
}

/// A plugin folder with the two good plugins, each with its own service on a free port.
private final class GoodFolder: Sendable {
    let folder: TemporaryFolder
    let ports = (a: freePort(), b: freePort())
    var path: String { folder.path }

    init(_ label: String) throws {
        folder = TemporaryFolder(label)
        try compileCPlugin(goodPlugin("good-a", port: ports.a), named: "a-good", into: folder.path)
        try compileCPlugin(goodPlugin("good-b", port: ports.b), named: "b-good", into: folder.path)
    }

    /// Whether both services answer curl.
    func answer() throws -> Bool {
        try answers(ports.a, "good-a") && answers(ports.b, "good-b")
    }

    /// Waits for both services' lines; whether they are on the ports their plugins ask for.
    func served(by cynic: CynicProcess) throws -> Bool {
        try cynic.waitForServices(2) == ["good-a": ports.a, "good-b": ports.b]
    }
}

/// What curl gets from a good service: its name.
private func answers(_ port: Int, _ name: String) throws -> Bool {
    let result = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
    #expect(result.status == 0 && result.standardOutput == name + "\n", "curl to \(name): \(result.status) \(result.output)")
    return result.status == 0 && result.standardOutput == name + "\n"
}

/// The lines of cynic's log that say `text`.
private func lines(_ cynic: CynicProcess, saying text: String) -> Int {
    cynic.standardError.split(separator: "\n").filter { $0.contains(text) }.count
}

/// Every kind of bad plugin refused so far, each a real file made here, met at start beside good
/// plugins and dropped into the watched folder while cynic serves: each is one line naming the
/// file and the reason, and the good services answer throughout. One cynic per mode serves all
/// the kinds: each line names its own file.
@Suite("The bad-plugin corpus", .serialized)
struct BadPluginCorpusTests {
    @Test("at start: cynic starts beside every bad kind, says one line for each, and the good services answer curl")
    func atStart() throws {
        let corpusFiles = try Corpus()
        let folder = try GoodFolder("cynic-corpus-start")
        for kind in corpus { try corpusFiles.place(kind, in: folder.path) }

        let bare = try BareCynic()
        let cynic = try bare.serve(folder.path)
        #expect(try folder.served(by: cynic), "\(cynic.standardOutput)\(cynic.standardError)")
        for kind in corpus {
            let line = kind.line(folder.folder.file(kind.file), folder.path)
            // Said before the services listen, but read from cynic's standard error by a thread
            // of our own, which a loaded machine may run late.
            try? cynic.waitFor(line, inError: true, timeout: 30)
            #expect(lines(cynic, saying: line) == 1, "\(kind): '\(line)' once in:\n\(cynic.standardError)")
        }
        #expect(try folder.answer())
        #expect(cynic.process.isRunning)
    }

    @Test("dropped in hot: each bad kind is one line while the good services keep answering curl")
    func droppedHot() throws {
        let corpusFiles = try Corpus()
        let folder = try GoodFolder("cynic-corpus-hot")
        let bare = try BareCynic()
        let cynic = try bare.serve(folder.path)
        #expect(try folder.served(by: cynic), "\(cynic.standardOutput)\(cynic.standardError)")
        for kind in corpus {
            try corpusFiles.place(kind, in: folder.path)
            try cynic.waitFor(kind.line(folder.folder.file(kind.file), folder.path), inError: true, timeout: 20)
            #expect(try folder.answer(), "after \(kind)")
        }
        // Every line once: a kind is not said again when the next one lands.
        for kind in corpus {
            let line = kind.line(folder.folder.file(kind.file), folder.path)
            #expect(lines(cynic, saying: line) == 1, "\(kind): '\(line)' once in:\n\(cynic.standardError)")
        }
        #expect(cynic.process.isRunning)
    }
}
