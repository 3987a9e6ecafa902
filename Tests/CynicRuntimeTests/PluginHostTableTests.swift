import CCynicPlugin
import CynicPlugins
@testable import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A C plugin that logs without a connection from `create`, and later from a thread of its own
/// that runs on after `create` has returned (and after other plugins' `create`); `destroy` joins it.
/// `image` goes into its bytes: the same source built twice is one image, statics included, so
/// tests running at once each build their own.
func threadLoggingPlugin(name: String, image: String) -> String {
    """
    #include <cynic/plugin.h>
    #include <pthread.h>
    #include <stdlib.h>
    #include <unistd.h>
    static const cynic_host *host;
    typedef struct { pthread_t thread; } state;
    static void *later(void *unused) {
        (void)unused;
        usleep(200 * 1000);
        host->log(NULL, CYNIC_LOG_WARNING, "from a thread of \(name)");
        return NULL;
    }
    static void *create(const cynic_host *h) {
        host = h;
        h->log(NULL, CYNIC_LOG_INFO, "from create of \(name)");
        state *s = malloc(sizeof *s);
        if (s == NULL) return NULL;
        if (pthread_create(&s->thread, NULL, later, NULL) != 0) { free(s); return NULL; }
        return s;
    }
    static void destroy(void *instance) {
        state *s = instance;
        pthread_join(s->thread, NULL);
        free(s);
    }
    static void *conn_open(void *instance, cynic_conn *conn) { (void)instance; host->close(conn); return NULL; }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "\(name)",
        .description = "\(image)", .create = create, .destroy = destroy, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

@Suite("Each plugin its own host table")
struct PluginHostTableTests {
    let folder = TemporaryFolder("cynic-host-tables")

    func load(_ name: String) throws -> Plugin {
        try Plugin.load(file: compileCPlugin(threadLoggingPlugin(name: name, image: folder.path), named: name, into: folder.path,
                                             extraFlags: ["-pthread"]))
    }

    @Test("log(NULL, ...) from create and from a plugin's own thread names that plugin; two plugins each their own")
    func logWithoutConnectionNamesThePlugin() throws {
        let log = CapturedLog(showsMetadata: true)
        let tables = PluginHostTables(logger: log.logger)
        let alpha = try load("alpha")
        let beta = try load("beta")
        // Both are created before either thread logs: a line is named by the function the
        // plugin called, not by whichever plugin the host was creating last.
        var instances = [try BehaviourInstance(plugin: alpha, values: [], host: tables.table(for: alpha)),
                         try BehaviourInstance(plugin: beta, values: [], host: tables.table(for: beta))]
        #expect(log.waitFor("from a thread of alpha"))
        #expect(log.waitFor("from a thread of beta"))
        instances.removeAll()  // joins the threads
        let lines = log.text.split(separator: "\n")
        #expect(lines.contains("info [plugin=alpha] from create of alpha"), "\(log.text)")
        #expect(lines.contains("info [plugin=beta] from create of beta"), "\(log.text)")
        #expect(lines.contains("warning [plugin=alpha] from a thread of alpha"), "\(log.text)")
        #expect(lines.contains("warning [plugin=beta] from a thread of beta"), "\(log.text)")
        #expect(lines.count == 4, "\(log.text)")
    }

    @Test("one table per image: the same for every instance and for the same content loaded again, another for another plugin")
    func oneTablePerImage() throws {
        let tables = PluginHostTables(logger: CapturedLog().logger)
        let alpha = try load("alpha")
        let again = try Plugin.load(file: alpha.file)
        let beta = try load("beta")
        #expect(again.imageID == alpha.imageID)
        #expect(tables.table(for: alpha) == tables.table(for: alpha))
        #expect(tables.table(for: again) == tables.table(for: alpha))
        #expect(tables.table(for: beta) != tables.table(for: alpha))
        // Every other function is the host's own.
        let table = tables.table(for: alpha).pointee
        #expect(table.struct_size == UInt32(MemoryLayout<cynic_host>.size))
        #expect(unsafeBitCast(table.send, to: UnsafeRawPointer.self) == unsafeBitCast(HostTable.pointer.pointee.send, to: UnsafeRawPointer.self))
        #expect(unsafeBitCast(table.log, to: UnsafeRawPointer.self) != unsafeBitCast(HostTable.pointer.pointee.log, to: UnsafeRawPointer.self))
    }

    @Test("an unloaded C image's table is freed; its plugin loaded again gets a new one that names it")
    func unloadedImageFreesItsTable() throws {
        let log = CapturedLog(showsMetadata: true)
        let tables = PluginHostTables(logger: log.logger)
        var alpha: Plugin? = try load("alpha")
        let file = alpha!.file
        #expect(!alpha!.staysMapped)
        do {
            _ = try BehaviourInstance(plugin: alpha!, values: [], host: tables.table(for: alpha!))
        }
        #expect(tables.count == 1)
        alpha = nil
        let beta = try load("beta")
        _ = tables.table(for: beta)
        #expect(tables.count == 1)
        let back = try Plugin.load(file: file)
        _ = try BehaviourInstance(plugin: back, values: [], host: tables.table(for: back))
        #expect(tables.count == 2)
        #expect(log.text.split(separator: "\n").filter { $0 == "info [plugin=alpha] from create of alpha" }.count == 2, "\(log.text)")
    }
}
