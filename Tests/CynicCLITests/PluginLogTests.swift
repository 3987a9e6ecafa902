import CynicTestSupport
import Foundation
import Testing

/// A plugin that logs without a connection from `create`, as `NAME says hello`.
private func greetingPlugin(_ name: String) -> String {
    """
    #include <cynic/plugin.h>
    static void *create(const cynic_host *host) {
        host->log(NULL, CYNIC_LOG_INFO, "\(name) says hello");
        return NULL;
    }
    static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; (void)conn; return NULL; }
    static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
        .name = "\(name)", .create = create, .conn_open = conn_open };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

@Suite("A plugin's own log lines")
struct PluginLogTests {
    @Test("cynic prints a line logged without a connection on cynic.plugin, with plugin=NAME of the plugin that logged it")
    func namedOnTheConsole() throws {
        let folder = TemporaryFolder("cynic-plugin-log")
        try compileCPlugin(greetingPlugin("first"), named: "first", into: folder.path)
        try compileCPlugin(greetingPlugin("second"), named: "second", into: folder.path)
        try """
        services:
          one:
            behaviour: first
            port: 0
          two:
            behaviour: second
            port: 0
        """.write(toFile: folder.file("cynic.yaml"), atomically: false, encoding: .utf8)
        let cynic = try CynicProcess(["-c", folder.file("cynic.yaml"), "--plugin-dir", folder.path])
        _ = try cynic.waitForServices(2)
        let lines = cynic.standardError.split(separator: "\n")
        #expect(lines.contains { $0.contains("cynic.plugin: plugin=first [") && $0.hasSuffix("] first says hello") }, "\(lines)")
        #expect(lines.contains { $0.contains("cynic.plugin: plugin=second [") && $0.hasSuffix("] second says hello") }, "\(lines)")
    }
}
