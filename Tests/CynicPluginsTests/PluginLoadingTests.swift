import CynicPlugins
import CynicTestSupport
import Testing

/// A minimal well-formed plugin; `name` and the ABI version are substituted per test.
func minimalPlugin(name: String = "good", abi: String = "CYNIC_ABI_VERSION", structSize: String = "sizeof(cynic_plugin)") -> String {
    """
    #include <cynic/plugin.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; host->close(conn); return NULL; }
    static const cynic_plugin plugin = {
        .abi_version = \(abi), .struct_size = \(structSize),
        .name = \(name == "NULL" ? "NULL" : "\"\(name)\""), .description = "a test plugin",
        .create = create, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

@Suite("Loading plugins")
struct PluginLoadingTests {
    @Test("a C plugin built with cc against include/ alone loads, with its descriptor")
    func loadsCPlugin() throws {
        let folder = TemporaryFolder()
        try compileCPlugin(minimalPlugin(name: "good"), named: "good", into: folder.path)
        let catalog = try PluginCatalog.load([PluginDirectory(path: folder.path)])
        #expect(catalog.refusals.isEmpty)
        let plugin = try #require(catalog.plugins["good"])
        #expect(plugin.summary == "a test plugin")
        #expect(plugin.abiVersion == 1)
        #expect(plugin.defaultPort == nil)
        #expect(plugin.parameters.isEmpty)
        #expect(plugin.file == folder.path + "/good.so")
    }

    @Test("each bad plugin is refused with its reason while the good one still loads")
    func refusesBadPlugins() throws {
        let folder = TemporaryFolder()
        try compileCPlugin(minimalPlugin(name: "good"), named: "a-good", into: folder.path)
        try folder.write("not-elf.so", "this is not a shared object\n")
        try compileCPlugin("int unrelated(void) { return 1; }", named: "no-entry", into: folder.path)
        try compileCPlugin(minimalPlugin(name: "future", abi: "99"), named: "future-abi", into: folder.path)
        try compileCPlugin(minimalPlugin(name: "NULL"), named: "nameless", into: folder.path)
        try compileCPlugin(minimalPlugin(name: "good"), named: "z-duplicate", into: folder.path)
        try compileCPlugin(minimalPlugin(name: "tiny", structSize: "8"), named: "tiny-struct", into: folder.path)
        try compileCPlugin(minimalPlugin(name: "Bad Name"), named: "bad-name", into: folder.path)
        try compileCPlugin("""
            #include <cynic/plugin.h>
            static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "null-descriptor" };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { (void)plugin; return NULL; }
            """, named: "null-descriptor", into: folder.path)

        let catalog = try PluginCatalog.load([PluginDirectory(path: folder.path)])
        #expect(catalog.plugins.keys.sorted() == ["good"])
        let reasons = Dictionary(uniqueKeysWithValues: catalog.refusals.map {
            (String($0.file.split(separator: "/").last!), $0.description)
        })
        #expect(reasons["not-elf.so"]?.contains("not a loadable shared object") == true)
        #expect(reasons["no-entry.so"]?.hasSuffix("no entry symbol cynic_plugin_entry") == true)
        #expect(reasons["future-abi.so"]?.hasSuffix("ABI version 99 instead of 1") == true)
        #expect(reasons["nameless.so"]?.hasSuffix("invalid descriptor: missing name") == true)
        #expect(reasons["z-duplicate.so"]?.hasSuffix("behaviour 'good' is already provided by \(folder.path)/a-good.so") == true)
        #expect(reasons["tiny-struct.so"]?.contains("struct_size 8 is smaller") == true)
        #expect(reasons["bad-name.so"]?.contains("name 'Bad Name' may only have") == true)
        #expect(reasons["null-descriptor.so"]?.hasSuffix("cynic_plugin_entry returned NULL") == true)
        // Every refusal line names its file.
        for refusal in catalog.refusals {
            #expect(refusal.description.hasPrefix("refused plugin \(refusal.file): "))
        }
        #expect(catalog.refusals.count == 8)
    }

    @Test("a plugin whose parameter default does not fit its type is refused at load")
    func refusesBadDefault() throws {
        let folder = TemporaryFolder()
        try compileCPlugin("""
            #include <cynic/plugin.h>
            static const char *configure(void *instance, uint32_t n) { (void)instance; (void)n; return NULL; }
            static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; (void)conn; return NULL; }
            static const cynic_param params[] = { { "count", CYNIC_TYPE_UINT32, "-5", "how many" } };
            static const cynic_plugin plugin = {
                .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "bad-default",
                .params = params, .param_count = 1, .configure = CYNIC_CONFIGURE(configure), .conn_open = conn_open,
            };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
            """, named: "bad-default", into: folder.path)
        let catalog = try PluginCatalog.load([PluginDirectory(path: folder.path)])
        #expect(catalog.plugins.isEmpty)
        #expect(catalog.refusals.first?.description.hasSuffix("parameter 'count': default '-5' is not an unsigned 32-bit integer (0...4294967295)") == true)
    }

    @Test("a folder that cannot be read is one clear error")
    func unreadableFolder() {
        #expect(throws: PluginDirectoryError.self) {
            try PluginCatalog.load([PluginDirectory(path: "/nonexistent/cynic-plugins")])
        }
    }
}
