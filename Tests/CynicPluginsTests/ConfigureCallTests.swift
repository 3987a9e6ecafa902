import CCynicPlugin
import CynicPlugins
import CynicTestSupport
import Testing

/// configure is called with the host table; these tests never open a connection, so an empty
/// one does.
nonisolated(unsafe) let dummyHost: UnsafePointer<cynic_host> = {
    let table = UnsafeMutablePointer<cynic_host>.allocate(capacity: 1)
    table.initialize(to: cynic_host())
    return UnsafePointer(table)
}()

/// A plugin whose configure takes one parameter of every type and writes what it received into
/// its instance as text, so the test reads exactly what the C function got.
let everyTypePlugin = """
    #include <cynic/plugin.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <inttypes.h>
    typedef struct { char seen[512]; } instance;
    static void *create(const cynic_host *h) { (void)h; return calloc(1, sizeof(instance)); }
    static void destroy(void *i) { free(i); }
    static const char *configure(void *raw, int32_t i32, int64_t i64, uint32_t u32, uint64_t u64,
                                 double d, bool b, const char *s, const char *unset) {
        instance *self = raw;
        if (i32 == 13) return "thirteen is unlucky";
        snprintf(self->seen, sizeof self->seen, "%" PRId32 " %" PRId64 " %" PRIu32 " %" PRIu64 " %.17g %s [%s] %s",
                 i32, i64, u32, u64, d, b ? "true" : "false", s, unset ? unset : "NULL");
        return NULL;
    }
    static void *conn_open(void *i, cynic_conn *c) { (void)i; (void)c; return NULL; }
    static const cynic_param params[] = {
        { "i32", CYNIC_TYPE_INT32, "-7", "a signed 32-bit value" },
        { "i64", CYNIC_TYPE_INT64, "-9000000000", NULL },
        { "u32", CYNIC_TYPE_UINT32, "4000000000", NULL },
        { "u64", CYNIC_TYPE_UINT64, "18446744073709551615", NULL },
        { "d", CYNIC_TYPE_DOUBLE, "0.25", NULL },
        { "b", CYNIC_TYPE_BOOL, "false", NULL },
        { "s", CYNIC_TYPE_STRING, "default text", NULL },
        { "unset", CYNIC_TYPE_STRING, NULL, "NULL unless given" },
    };
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "every-type",
        .params = params, .param_count = sizeof params / sizeof params[0], .configure = CYNIC_CONFIGURE(configure),
        .create = create, .destroy = destroy, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

@Suite("Typed parameters through libffi")
struct ConfigureCallTests {
    let folder = TemporaryFolder()
    let plugin: Plugin

    init() throws {
        let file = try compileCPlugin(everyTypePlugin, named: "every-type", into: folder.path)
        plugin = try Plugin.load(file: file)
    }

    private func configured(_ given: [String: String]) throws -> String {
        let values = try plugin.parameters.resolve(given.mapValues { ParameterInput($0, origin: "test") },
                                                   behaviour: plugin.name)
        let instance = try BehaviourInstance(plugin: plugin, values: values, host: dummyHost)
        return String(cString: instance.pointer!.assumingMemoryBound(to: CChar.self))
    }

    @Test("configure receives the exact typed values given")
    func exactValues() throws {
        let seen = try configured(["i32": "-2147483648", "i64": "9223372036854775807", "u32": "4294967295",
                                   "u64": "12345678901234567890", "d": "3.141592653589793", "b": "true",
                                   "s": "héllo wörld", "unset": "given"])
        #expect(seen == "-2147483648 9223372036854775807 4294967295 12345678901234567890 3.1415926535897931 true [héllo wörld] given")
    }

    @Test("defaults are converted from the descriptor's text; an optional string is NULL")
    func defaults() throws {
        #expect(try configured([:]) == "-7 -9000000000 4000000000 18446744073709551615 0.25 false [default text] NULL")
    }

    @Test("a wrong-typed value is refused before any call, naming the parameter and the type",
          arguments: [("u32", "-1", "an unsigned 32-bit integer"), ("i32", "2147483648", "a 32-bit integer"),
                      ("d", "fast", "a number"), ("b", "maybe", "a boolean"), ("u64", "1.5", "an unsigned 64-bit integer")])
    func wrongType(name: String, text: String, expected: String) throws {
        let error = #expect(throws: ParameterError.self) {
            try plugin.parameters.resolve([name: ParameterInput(text, origin: "cynic.yaml:3")], behaviour: plugin.name)
        }
        let line = try #require(error?.description)
        #expect(line.hasPrefix("cynic.yaml:3: parameter '\(name)' of 'every-type' expects \(expected)"))
        #expect(line.hasSuffix(", got '\(text)'"))
    }

    @Test("an unknown parameter is refused with the list of known ones")
    func unknownParameter() {
        let error = #expect(throws: ParameterError.self) {
            try plugin.parameters.resolve(["speed": ParameterInput("1", origin: "--param speed")], behaviour: plugin.name)
        }
        #expect(error?.description == "--param speed: unknown parameter 'speed' for behaviour 'every-type' (known: i32, i64, u32, u64, d, b, s, unset)")
    }

    @Test("configure's own refusal becomes the error")
    func pluginRefuses() {
        let error = #expect(throws: ParameterError.self) { try configured(["i32": "13"]) }
        #expect(error?.message == "behaviour 'every-type' refused its parameters: thirteen is unlucky")
    }
}
