import CCynicPlugin
import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// The ABI as released: each published version of `cynic/plugin.h`, frozen byte for byte under
/// `Tests/Fixtures/abi-N/cynic/plugin.h`. A plugin built against any of them must keep loading.
enum FrozenABI {
    static let fixtures = Paths.repository + "/Tests/Fixtures"

    /// The include folder of frozen version `version`.
    static func include(_ version: UInt32) -> String { fixtures + "/abi-\(version)" }

    /// Every frozen version, in order.
    static var versions: [UInt32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? []
        return names.compactMap { $0.hasPrefix("abi-") ? UInt32($0.dropFirst(4)) : nil }.sorted()
    }

    /// The structs a header defines (`typedef struct NAME { ... } NAME;`) with their fields in
    /// declaration order, read from the text: the frozen header itself says what to check.
    static func structs(inHeader text: String) throws -> [(name: String, fields: [String])] {
        let code = try text.replacing(Regex(#"/\*[\s\S]*?\*/"#), with: "")
            .replacing(Regex(#"//[^\n]*"#), with: "")
        var result: [(String, [String])] = []
        for match in code.matches(of: try Regex(#"typedef struct (\w+) \{([^}]*)\} (\w+);"#)) {
            guard let name = match.output[1].substring.map(String.init),
                  let body = match.output[2].substring else { continue }
            let fields = try body.split(separator: ";").compactMap { declaration -> String? in
                let declaration = declaration.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !declaration.isEmpty else { return nil }
                // `int (*send)(cynic_conn *conn, ...)` names `send`; otherwise the last word.
                if let pointer = declaration.firstMatch(of: try Regex(#"\(\s*\*\s*(\w+)\s*\)"#)) {
                    return pointer.output[1].substring.map(String.init)
                }
                return declaration.firstMatch(of: try Regex(#"(\w+)\s*$"#))?.output[1].substring.map(String.init)
            }
            result.append((name, fields))
        }
        return result
    }

    /// A C program printing, for every field of `structs`, its offset, size and kind, and each
    /// struct's size: `cynic_host.send 8 8 pointer`, `cynic_host 112`.
    static func layoutProgram(_ structs: [(name: String, fields: [String])]) -> String {
        var lines = [
            "#include <cynic/plugin.h>",
            "#include <stdio.h>",
            // Same size, different meaning: a uint32_t that became int32_t must be caught too.
            "#define KIND(x) _Generic((x), bool: \"bool\", uint16_t: \"uint16_t\", int32_t: \"int32_t\", "
                + "uint32_t: \"uint32_t\", int64_t: \"int64_t\", uint64_t: \"uint64_t\", double: \"double\", default: \"pointer\")",
            "#define FIELD(s, f) printf(#s \".\" #f \" %zu %zu %s\\n\", offsetof(s, f), sizeof(((s *)0)->f), KIND(((s *)0)->f))",
            "int main(void) {",
            "    printf(\"CYNIC_ABI_VERSION %u\\n\", (unsigned)CYNIC_ABI_VERSION);",
        ]
        for (name, fields) in structs {
            lines.append("    printf(\"\(name) %zu\\n\", sizeof(\(name)));")
            lines += fields.map { "    FIELD(\(name), \($0));" }
        }
        lines += ["    return 0;", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    struct ABICheckFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// Compiles and runs `program` against the header in `include`: what it printed, by key.
    static func layout(_ program: String, include: String) throws -> [String: [String]] {
        let folder = TemporaryFolder("cynic-abi-layout")
        let source = try folder.write("layout.c", program)
        let build = try runProgram("cc", ["-std=c11", "-Wall", "-Werror", "-I", include, "-o", folder.file("layout"), source])
        guard build.status == 0 else {
            // A field of the frozen ABI the header no longer has: cc names the struct and field.
            let errors = build.output.split(separator: "\n").filter { $0.contains("error") }
            throw ABICheckFailed(description: "the header in \(include) does not have every field of the frozen ABI:\n"
                               + errors.joined(separator: "\n"))
        }
        let run = try runProgram(folder.file("layout"), [])
        var values: [String: [String]] = [:]
        for line in run.standardOutput.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            values[words[0]] = Array(words.dropFirst())
        }
        return values
    }

    /// Every way the header in `current` breaks the layout of the frozen header `frozen`, one line
    /// each, naming the struct and field; empty when `current` only appended.
    static func differences(frozen: String, current: String) throws -> [String] {
        let structs = try structs(inHeader: String(contentsOfFile: frozen + "/cynic/plugin.h", encoding: .utf8))
        let program = layoutProgram(structs)
        let old = try layout(program, include: frozen)
        let new = try layout(program, include: current)
        let sameVersion = old["CYNIC_ABI_VERSION"] == new["CYNIC_ABI_VERSION"]
        var problems: [String] = []
        for (name, fields) in structs {
            for field in fields {
                let key = "\(name).\(field)"
                guard let was = old[key], let now = new[key], was != now else { continue }
                problems.append("\(key) moved or changed: offset \(was[0]) size \(was[1]) \(was[2]) → "
                                + "offset \(now[0]) size \(now[1]) \(now[2]) (fields are append-only)")
            }
            guard let was = old[name].flatMap({ Int($0[0]) }), let now = new[name].flatMap({ Int($0[0]) }) else { continue }
            if now < was {
                problems.append("\(name) shrank from \(was) to \(now) bytes")
            } else if now > was, ["cynic_param", "cynic_http_header"].contains(name) {
                problems.append("\(name) grew from \(was) to \(now) bytes: it is read in arrays, so it is frozen")
            } else if now > was, sameVersion {
                problems.append("\(name) grew from \(was) to \(now) bytes but CYNIC_ABI_VERSION is still \(old["CYNIC_ABI_VERSION"]![0]): "
                                + "a new field needs a new ABI version (and a History line)")
            }
        }
        return problems
    }

    /// Builds a plugin against the frozen header of `version` alone, as its author did then.
    @discardableResult
    static func compile(_ source: String, named name: String, into folder: TemporaryFolder,
                        version: UInt32 = 1) throws -> String {
        let sourceFile = try folder.write(name + ".c", source)
        let output = folder.file(name + ".so")
        let result = try runProgram("cc", ["-shared", "-fPIC", "-Wall", "-Werror", "-Wl,--no-undefined",
                                           "-I", include(version), "-o", output, sourceFile])
        guard result.status == 0 else { throw ABICheckFailed(description: "cc failed for \(name).c:\n\(result.output)") }
        return output
    }
}

/// Plugins written against ABI 1, kept here as their authors wrote them.
enum ABI1Plugins {
    /// A raw behaviour using every ABI 1 callback: a banner, a timer, a `then`, an echo, a goodbye.
    static let raw = """
        #include <cynic/plugin.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>

        static const cynic_host *host;
        typedef struct { char banner[64]; } instance;

        static void *create(const cynic_host *h) { host = h; return calloc(1, sizeof(instance)); }
        static void destroy(void *raw) { free(raw); }
        static const char *configure(void *raw, const char *banner) {
            instance *self = raw;
            if (strlen(banner) >= sizeof self->banner) return "banner: at most 63 bytes";
            strcpy(self->banner, banner);
            return NULL;
        }
        static void *conn_open(void *raw, cynic_conn *conn) {
            instance *self = raw;
            host->send(conn, self->banner, strlen(self->banner));
            host->send(conn, "\\n", 1);
            host->after(conn, 20, 7);
            return NULL;
        }
        static void conn_timer(void *state, cynic_conn *conn, uint64_t tag) {
            (void)state;
            char line[32];
            int n = snprintf(line, sizeof line, "timer %u\\n", (unsigned)tag);
            host->send(conn, line, (size_t)n);
            host->then(conn, tag + 1);
        }
        static void conn_resume(void *state, cynic_conn *conn, uint64_t tag) {
            (void)state;
            char line[32];
            int n = snprintf(line, sizeof line, "resumed %u\\n", (unsigned)tag);
            host->send(conn, line, (size_t)n);
        }
        static void conn_data(void *state, cynic_conn *conn, const uint8_t *bytes, size_t length) {
            (void)state;
            host->send(conn, bytes, length);
        }
        static void conn_peer_closed(void *state, cynic_conn *conn) {
            (void)state;
            host->send(conn, "bye\\n", 4);
            host->close(conn);
        }
        static void conn_end(void *state, cynic_conn *conn) { (void)state; (void)conn; }
        static const void *get_extension(const char *id) { (void)id; return NULL; }

        static const cynic_param params[] = { { "banner", CYNIC_TYPE_STRING, "abi one", "sent first" } };
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
            .name = "frozen-raw", .description = "built against ABI 1",
            .params = params, .param_count = 1, .configure = CYNIC_CONFIGURE(configure),
            .create = create, .destroy = destroy, .conn_open = conn_open, .conn_data = conn_data,
            .conn_resume = conn_resume, .conn_peer_closed = conn_peer_closed, .conn_end = conn_end,
            .get_extension = get_extension, .conn_timer = conn_timer,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// An HTTP behaviour with a parameter of every type, answering with what it was given.
    static let http = """
        #include <cynic/plugin.h>
        #include <stdio.h>
        #include <stdlib.h>

        static const cynic_host *host;
        typedef struct {
            char greeting[64]; uint32_t status; int32_t offset; int64_t big; uint64_t count;
            double ratio; bool verbose;
        } instance;

        static void *create(const cynic_host *h) { host = h; return calloc(1, sizeof(instance)); }
        static void destroy(void *raw) { free(raw); }
        static const char *configure(void *raw, const char *greeting, uint32_t status, int32_t offset,
                                     int64_t big, uint64_t count, double ratio, bool verbose) {
            instance *self = raw;
            if (status < 100 || status > 599) return "status: expected 100 to 599";
            snprintf(self->greeting, sizeof self->greeting, "%s", greeting);
            self->status = status; self->offset = offset; self->big = big; self->count = count;
            self->ratio = ratio; self->verbose = verbose;
            return NULL;
        }
        /* The instance is read-only once configured: it is every connection's state. */
        static void *conn_open(void *raw, cynic_conn *conn) { (void)conn; return raw; }
        static void conn_request(void *state, cynic_conn *conn, const cynic_http_request *r) {
            const instance *self = state;
            const char *test = cynic_http_header_value(r, "x-test");
            char body[512];
            int n = snprintf(body, sizeof body,
                             "%s %s %s HTTP/%u.%u x-test=%s status=%u offset=%d big=%lld count=%llu ratio=%g verbose=%d\\n",
                             self->greeting, r->method, r->target, r->version_major, r->version_minor,
                             test ? test : "-", self->status, self->offset, (long long)self->big,
                             (unsigned long long)self->count, self->ratio, self->verbose);
            char head[128];
            int h = snprintf(head, sizeof head, "HTTP/1.1 %u Frozen\\r\\nContent-Length: %d\\r\\nConnection: %s\\r\\n\\r\\n",
                             self->status, n, r->keep_alive ? "keep-alive" : "close");
            host->send(conn, head, (size_t)h);
            host->send(conn, body, (size_t)n);
            if (!r->keep_alive) host->close(conn);
        }
        static const cynic_param params[] = {
            { "greeting", CYNIC_TYPE_STRING, "hello", "first word of the body" },
            { "status", CYNIC_TYPE_UINT32, "200", NULL },
            { "offset", CYNIC_TYPE_INT32, "-1", NULL },
            { "big", CYNIC_TYPE_INT64, "-9000000000", NULL },
            { "count", CYNIC_TYPE_UINT64, "18000000000000000000", NULL },
            { "ratio", CYNIC_TYPE_DOUBLE, "0.5", NULL },
            { "verbose", CYNIC_TYPE_BOOL, "false", NULL },
        };
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
            .name = "frozen-http", .description = "built against ABI 1", .flags = CYNIC_PLUGIN_HTTP1,
            .params = params, .param_count = sizeof params / sizeof params[0],
            .configure = CYNIC_CONFIGURE(configure), .create = create, .destroy = destroy,
            .conn_open = conn_open, .conn_request = conn_request,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// A shaper: upper-cases what passes through it and announces the close.
    static let shaper = """
        #include <cynic/plugin.h>
        #include <ctype.h>
        #include <stdlib.h>
        #include <string.h>

        static const cynic_host *host;
        typedef struct { char note[64]; } instance;

        static void *create(const cynic_host *h) { host = h; return calloc(1, sizeof(instance)); }
        static void destroy(void *raw) { free(raw); }
        static const char *configure(void *raw, const char *note) {
            instance *self = raw;
            if (strlen(note) >= sizeof self->note) return "note: at most 63 bytes";
            strcpy(self->note, note);
            return NULL;
        }
        static void *conn_open(void *raw, cynic_conn *downstream) { (void)downstream; return raw; }
        static void shape_send(void *state, cynic_conn *downstream, const uint8_t *bytes, size_t length) {
            (void)state;
            uint8_t *upper = malloc(length ? length : 1);
            if (upper == NULL) { host->reset(downstream); return; }
            for (size_t i = 0; i < length; i++) upper[i] = (uint8_t)toupper(bytes[i]);
            host->send(downstream, upper, length);
            free(upper);
        }
        static void shape_close(void *state, cynic_conn *downstream) {
            const instance *self = state;
            host->send(downstream, self->note, strlen(self->note));
            host->close(downstream);
        }
        static const cynic_shaper shaper = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_shaper),
            .conn_open = conn_open, .send = shape_send, .close = shape_close,
        };
        static const void *get_extension(const char *id) {
            return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &shaper : NULL;
        }
        static const cynic_param params[] = { { "note", CYNIC_TYPE_STRING, "[closed by a shaper]\\n", NULL } };
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
            .name = "frozen-upper", .description = "a shaper built against ABI 1",
            .params = params, .param_count = 1, .configure = CYNIC_CONFIGURE(configure),
            .create = create, .destroy = destroy, .get_extension = get_extension,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// A descriptor from before `get_extension` and `conn_timer`: its `struct_size` ends there.
    /// What lies past it in memory is not the plugin's to give: here, fields that would make it
    /// never accept and answer its timer, were the host to read them.
    static let older = """
        #include <cynic/plugin.h>
        #include <string.h>

        static const cynic_host *host;
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *raw, cynic_conn *conn) {
            (void)raw;
            host->send(conn, "old\\n", 4);
            host->after(conn, 10, 1);
            host->wait(conn, 150);
            host->send(conn, "done\\n", 5);
            host->close(conn);
            return NULL;
        }
        static void conn_timer(void *state, cynic_conn *conn, uint64_t tag) {
            (void)state; (void)tag;
            host->send(conn, "read past struct_size\\n", 22);
        }
        static const cynic_listen never = { CYNIC_ABI_VERSION, sizeof(cynic_listen), 0, 0, true };
        static const void *get_extension(const char *id) {
            return strcmp(id, CYNIC_LISTEN_ID) == 0 ? &never : NULL;
        }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = offsetof(cynic_plugin, get_extension),
            .name = "older", .create = create, .conn_open = conn_open,
            .get_extension = get_extension, .conn_timer = conn_timer,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// A listen capability from before `never_accept`: the backlog is read, the rest is zero.
    static let olderListen = """
        #include <cynic/plugin.h>
        #include <string.h>

        static const cynic_host *host;
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *raw, cynic_conn *conn) { (void)raw; host->send(conn, "accepted\\n", 9); host->close(conn); return NULL; }
        static const cynic_listen listen = { CYNIC_ABI_VERSION, offsetof(cynic_listen, never_accept), 7, 0, true };
        static const void *get_extension(const char *id) {
            return strcmp(id, CYNIC_LISTEN_ID) == 0 ? &listen : NULL;
        }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
            .name = "older-listen", .create = create, .conn_open = conn_open, .get_extension = get_extension,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// The minimal behaviour, declaring `abi_version` as given: a plugin from a newer header is
    /// simulated by its version alone (no ABI 2 exists to build against).
    static func versioned(_ abi: String, name: String = "versioned") -> String {
        """
        #include <cynic/plugin.h>
        static const cynic_host *host;
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *raw, cynic_conn *conn) { (void)raw; host->send(conn, "served\\n", 7); host->close(conn); return NULL; }
        static const cynic_plugin plugin = {
            .abi_version = \(abi), .struct_size = sizeof(cynic_plugin),
            .name = "\(name)", .create = create, .conn_open = conn_open,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """
    }

    /// A shaper whose capability struct declares `abi_version` as given.
    static func versionedShaper(_ abi: String) -> String {
        """
        #include <cynic/plugin.h>
        #include <string.h>
        static const cynic_shaper shaper = { .abi_version = \(abi), .struct_size = sizeof(cynic_shaper) };
        static const void *get_extension(const char *id) { return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &shaper : NULL; }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
            .name = "versioned-shaper", .get_extension = get_extension,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """
    }
}

/// Starts a service of `behaviour` from plugins loaded with `Plugin.load`, as the host does.
private func serve(_ behaviour: String, _ plugins: [Plugin], parameters: [String: String] = [:],
                   shapers: [String] = []) async throws -> Service {
    signal(SIGPIPE, SIG_IGN)  // a client that leaves must not kill the test process
    let spec = ServiceSpec(name: behaviour, behaviour: behaviour, address: .tcp(host: "127.0.0.1", port: 0),
                           parameters: parameters.mapValues { ParameterInput($0, origin: "test") },
                           shapers: try shapers.map { try ShaperSpec(commandLine: $0) }, origin: "test")
    return try await Service.start(spec, plugins: Dictionary(uniqueKeysWithValues: plugins.map { ($0.name, $0) }),
                                   group: TestServices.group, logger: TestServices.logger)
}

extension SocketClient {
    /// Receives until the bytes so far end with `expected` (or `timeout`); returns them all.
    func receive(through expected: String, timeout: Double = 10) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        while !text.hasSuffix(expected), deadline.timeIntervalSinceNow > 0 {
            guard case .bytes(let bytes) = receive(timeout: deadline.timeIntervalSinceNow) else { break }
            text += String(decoding: bytes, as: UTF8.self)
        }
        return text
    }
}

@Suite("ABI stability: released headers keep working")
struct ABIStabilityTests {
    @Test("every released ABI is frozen, and the current header only appends to its structs")
    func layoutsAreAppendOnly() throws {
        let versions = FrozenABI.versions
        #expect(versions.first == 1)
        #expect(versions.last == CYNIC_ABI_VERSION, "freeze include/cynic/plugin.h as Tests/Fixtures/abi-\(CYNIC_ABI_VERSION) when it is released")
        let structs = try FrozenABI.structs(inHeader: String(contentsOfFile: FrozenABI.include(1) + "/cynic/plugin.h", encoding: .utf8))
        // The parser found what ABI 1 has, so the comparison below is not vacuous.
        let fields = Dictionary(uniqueKeysWithValues: structs.map { ($0.name, $0.fields) })
        #expect(Set(fields.keys) == ["cynic_param", "cynic_http_header", "cynic_http_request", "cynic_host",
                                     "cynic_plugin", "cynic_listen", "cynic_shaper"])
        #expect(fields["cynic_plugin"]?.count == 19)
        #expect(fields["cynic_plugin"]?.last == "conn_timer")
        #expect(fields["cynic_host"] == ["abi_version", "struct_size", "send", "wait", "close", "reset", "shutdown_write",
                                         "stop_reading", "then", "cancel_pending", "log", "get_extension", "after"])
        #expect(fields["cynic_shaper"]?.count == 10)
        #expect(fields["cynic_listen"] == ["abi_version", "struct_size", "backlog", "receive_buffer", "never_accept"])
        #expect(fields["cynic_http_request"]?.count == 10)
        #expect(fields["cynic_param"] == ["name", "type", "default_value", "doc"])
        for version in versions {
            let problems = try FrozenABI.differences(frozen: FrozenABI.include(version), current: Paths.include)
            #expect(problems.isEmpty, "include/cynic/plugin.h against ABI \(version):\n\(problems.joined(separator: "\n"))")
        }
    }

    @Test("the guard names the struct and field of an insertion, a changed type, a removal, an unversioned append")
    func guardCatchesViolations() throws {
        let header = try String(contentsOfFile: Paths.include + "/cynic/plugin.h", encoding: .utf8)
        func check(_ edit: (String) -> String) throws -> [String] {
            let folder = TemporaryFolder("cynic-abi-edit")
            try FileManager.default.createDirectory(atPath: folder.file("cynic"), withIntermediateDirectories: true)
            let edited = edit(header)
            #expect(edited != header, "the edit must apply")
            try folder.write("cynic/plugin.h", edited)
            return try FrozenABI.differences(frozen: FrozenABI.include(1), current: folder.path)
        }
        let inserted = try check {
            $0.replacingOccurrences(of: "    int (*send)(cynic_conn *conn, const void *bytes, size_t length);",
                                    with: "    uint64_t inserted;\n    int (*send)(cynic_conn *conn, const void *bytes, size_t length);")
        }
        #expect(inserted.first?.hasPrefix("cynic_host.send moved or changed: offset 8 size 8 pointer → offset 16 size 8 pointer") == true, "\(inserted)")
        #expect(inserted.contains { $0.hasPrefix("cynic_host.after moved") })

        let retyped = try check { $0.replacingOccurrences(of: "    uint32_t flags;", with: "    int32_t flags;") }
        #expect(retyped == ["cynic_plugin.flags moved or changed: offset 28 size 4 uint32_t → offset 28 size 4 int32_t (fields are append-only)"])

        let appended = try check {
            $0.replacingOccurrences(of: "    bool never_accept;\n} cynic_listen;", with: "    bool never_accept;\n    uint32_t later;\n} cynic_listen;")
        }
        #expect(appended == ["cynic_listen grew from 20 to 24 bytes but CYNIC_ABI_VERSION is still 1: a new field needs a new ABI version (and a History line)"])

        let versioned = try check {
            $0.replacingOccurrences(of: "    bool never_accept;\n} cynic_listen;", with: "    bool never_accept;\n    uint32_t later;\n} cynic_listen;")
                .replacingOccurrences(of: "#define CYNIC_ABI_VERSION 1u", with: "#define CYNIC_ABI_VERSION 2u")
        }
        #expect(versioned.isEmpty, "appending with a new version is allowed: \(versioned)")

        let paramGrew = try check {
            $0.replacingOccurrences(of: "    const char *doc;\n} cynic_param;", with: "    const char *doc;\n    int extra;\n} cynic_param;")
                .replacingOccurrences(of: "#define CYNIC_ABI_VERSION 1u", with: "#define CYNIC_ABI_VERSION 2u")
        }
        #expect(paramGrew.first?.hasPrefix("cynic_param grew from 32 to 40 bytes: it is read in arrays") == true, "\(paramGrew)")

        do {
            _ = try check { $0.replacingOccurrences(of: "void (*conn_timer)(", with: "void (*on_timer)(") }
            Issue.record("a removed field must fail")
        } catch let error as FrozenABI.ABICheckFailed {
            #expect(error.description.contains("conn_timer"), "\(error)")
            #expect(error.description.contains("cynic_plugin"), "\(error)")
        }
    }

    @Test("a raw behaviour built against ABI 1 serves: banner, timer, then, echo, goodbye")
    func frozenRawBehaviour() async throws {
        let folder = TemporaryFolder("cynic-abi1")
        let plugin = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.raw, named: "frozen-raw", into: folder))
        #expect(plugin.abiVersion == 1)
        #expect(plugin.parameters.map(\.name) == ["banner"])
        let service = try await serve("frozen-raw", [plugin])
        defer { Task { await service.stop() } }
        let seen = try await offThePool { () -> [String] in
            let client = try SocketClient(port: service.port)
            let first = client.receive(through: "resumed 8\n")
            client.send("ping\n")
            let echo = client.receive(through: "ping\n")
            client.shutdownWrite()
            let (rest, end) = client.receiveAll()
            return [first, echo, String(decoding: rest, as: UTF8.self), end.description]
        }
        #expect(seen == ["abi one\ntimer 7\nresumed 8\n", "ping\n", "bye\n", "EOF"])
    }

    @Test("an HTTP behaviour built against ABI 1 gets its typed parameters and its requests")
    func frozenHTTPBehaviour() async throws {
        let folder = TemporaryFolder("cynic-abi1")
        let plugin = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.http, named: "frozen-http", into: folder))
        #expect(plugin.speaksHTTP1)
        #expect(plugin.parameters.map(\.type.cName) == ["const char *", "uint32_t", "int32_t", "int64_t", "uint64_t", "double", "bool"])
        let service = try await serve("frozen-http", [plugin], parameters: [
            "greeting": "hi there", "status": "203", "offset": "-5", "big": "-9000000001", "ratio": "0.25", "verbose": "yes",
        ])
        defer { Task { await service.stop() } }
        let (text, end) = try await offThePool { () -> (String, String) in
            let client = try SocketClient(port: service.port)
            client.send("GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-Test: one\r\n\r\nPOST /b HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
            let (bytes, end) = client.receiveAll()
            return (String(decoding: bytes, as: UTF8.self), end.description)
        }
        let first = "hi there GET /a?b=c HTTP/1.1 x-test=one status=203 offset=-5 big=-9000000001 count=18000000000000000000 ratio=0.25 verbose=1\n"
        let second = "hi there POST /b HTTP/1.0 x-test=- status=203 offset=-5 big=-9000000001 count=18000000000000000000 ratio=0.25 verbose=1\n"
        #expect(text == "HTTP/1.1 203 Frozen\r\nContent-Length: \(first.utf8.count)\r\nConnection: keep-alive\r\n\r\n\(first)"
                + "HTTP/1.1 203 Frozen\r\nContent-Length: \(second.utf8.count)\r\nConnection: close\r\n\r\n\(second)")
        #expect(end == "EOF")
    }

    @Test("a shaper built against ABI 1 shapes a service in the current host")
    func frozenShaper() async throws {
        let folder = TemporaryFolder("cynic-abi1")
        let raw = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.raw, named: "frozen-raw", into: folder))
        let shaper = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.shaper, named: "frozen-upper", into: folder))
        #expect(shaper.isShaper)
        #expect(shaper.shaper?.struct_size == UInt32(MemoryLayout<cynic_shaper>.size))
        let service = try await serve("frozen-raw", [raw, shaper], parameters: ["banner": "shaped"], shapers: ["frozen-upper"])
        defer { Task { await service.stop() } }
        let seen = try await offThePool { () -> [String] in
            let client = try SocketClient(port: service.port)
            let first = client.receive(through: "RESUMED 8\n")
            client.send("ping\n")
            let echo = client.receive(through: "PING\n")
            client.shutdownWrite()
            let (rest, end) = client.receiveAll()
            return [first, echo, String(decoding: rest, as: UTF8.self), end.description]
        }
        #expect(seen == ["SHAPED\nTIMER 7\nRESUMED 8\n", "PING\n", "BYE\n[closed by a shaper]\n", "EOF"])
    }

    @Test("an older, smaller descriptor loads: the fields past its struct_size read as zero, and it serves")
    func olderDescriptor() async throws {
        let folder = TemporaryFolder("cynic-abi1")
        let plugin = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.older, named: "older", into: folder))
        #expect(plugin.descriptor.struct_size == UInt32(MemoryLayout<cynic_plugin>.offset(of: \.get_extension)!))
        #expect(plugin.descriptor.get_extension == nil)
        #expect(plugin.descriptor.conn_timer == nil)
        #expect(plugin.listen == nil)
        let listening = try Plugin.load(file: FrozenABI.compile(ABI1Plugins.olderListen, named: "older-listen", into: folder))
        #expect(listening.listen?.backlog == 7)
        #expect(listening.listen?.never_accept == false)

        let service = try await serve("older", [plugin])
        let other = try await serve("older-listen", [listening])
        defer { Task { await service.stop(); await other.stop() } }
        let answers = try await offThePool { () -> [String] in
            try [service.port, other.port].map { port in
                let (bytes, end) = try SocketClient(port: port).receiveAll()
                return String(decoding: bytes, as: UTF8.self) + end.description
            }
        }
        #expect(answers == ["old\ndone\nEOF", "accepted\nEOF"])
    }

    @Test("a plugin from a newer ABI is refused at load with the exact reason")
    func newerABIRefused() throws {
        let folder = TemporaryFolder("cynic-abi1")
        let newer = try FrozenABI.compile(ABI1Plugins.versioned("CYNIC_ABI_VERSION + 1"), named: "newer", into: folder)
        let refusal = #expect(throws: PluginRefusal.self) { try Plugin.load(file: newer) }
        #expect(refusal?.file == newer)
        #expect(refusal?.reason == .unsupportedABI(found: CYNIC_ABI_VERSION + 1, supported: Plugin.supportedABI))
        if CYNIC_ABI_VERSION == 1 {
            #expect(refusal?.reason.description == "ABI version 2 instead of 1")
            #expect(refusal?.description == "refused plugin \(newer): ABI version 2 instead of 1")
        }
        // A host that only knows ABI 1 refuses a version-2 plugin the same way, whatever this
        // host's own version.
        let two = try FrozenABI.compile(ABI1Plugins.versioned("2"), named: "two", into: folder)
        let old = #expect(throws: PluginRefusal.self) { try Plugin.load(file: two, supportedABI: 1...1) }
        #expect(old?.reason.description == "ABI version 2 instead of 1")
        let zero = try FrozenABI.compile(ABI1Plugins.versioned("0"), named: "zero", into: folder)
        #expect(throws: PluginRefusal(file: zero, reason: .unsupportedABI(found: 0, supported: 1...1))) {
            try Plugin.load(file: zero, supportedABI: 1...1)
        }
        // A capability is versioned like the descriptor.
        let shaper = try FrozenABI.compile(ABI1Plugins.versionedShaper("2"), named: "shaper-two", into: folder)
        let capability = #expect(throws: PluginRefusal.self) { try Plugin.load(file: shaper, supportedABI: 1...1) }
        #expect(capability?.reason.description == "invalid descriptor: 'versioned-shaper' cynic.shaper/1 has ABI version 2")
    }

    @Test("a host that knows ABI 1 to 2 loads and serves a version-2 plugin, and refuses version 3")
    func widerHost() async throws {
        let folder = TemporaryFolder("cynic-abi1")
        let two = try FrozenABI.compile(ABI1Plugins.versioned("2", name: "version-two"), named: "two", into: folder)
        let plugin = try Plugin.load(file: two, supportedABI: 1...2)
        #expect(plugin.abiVersion == 2)
        let service = try await serve("version-two", [plugin])
        defer { Task { await service.stop() } }
        let answer = try await offThePool { try SocketClient(port: service.port).receiveAll() }
        #expect(answer == (Array("served\n".utf8), .endOfFile))

        let three = try FrozenABI.compile(ABI1Plugins.versioned("3"), named: "three", into: folder)
        let refusal = #expect(throws: PluginRefusal.self) { try Plugin.load(file: three, supportedABI: 1...2) }
        #expect(refusal?.reason.description == "ABI version 3 instead of 1 to 2")
        let shaper = try FrozenABI.compile(ABI1Plugins.versionedShaper("2"), named: "shaper-two", into: folder)
        #expect(try Plugin.load(file: shaper, supportedABI: 1...2).isShaper)
    }
}
