import CynicTestSupport
import Foundation
import Testing

/// Sends 1 MiB blocks without `then` until one is refused, logs how many were queued and the
/// refusal's code, then reports them to the client and closes once they are sent.
private let floodPlugin = """
    #include <cynic/plugin.h>
    #include <stdio.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *i, cynic_conn *conn) {
        (void)i;
        static uint8_t block[1 << 20];
        unsigned blocks = 0;
        int result;
        while (blocks < 1000 && (result = host->send(conn, block, sizeof block)) == CYNIC_OK) blocks++;
        char line[64];
        snprintf(line, sizeof line, "flood: %u blocks, then %d", blocks, result);
        host->log(conn, CYNIC_LOG_INFO, line);
        host->then(conn, ((uint64_t)blocks << 8) | (uint8_t)-result);
        return NULL;
    }
    static void conn_resume(void *s, cynic_conn *conn, uint64_t tag) {
        (void)s;
        char line[64];
        int n = snprintf(line, sizeof line, "blocks=%u full=-%u\\n", (unsigned)(tag >> 8), (unsigned)(tag & 0xff));
        host->send(conn, line, (size_t)n);
        host->close(conn);
    }
    static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
        .name = "flood", .create = create, .conn_open = conn_open, .conn_resume = conn_resume };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM").
private func memoryKiB(_ field: String, of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
    return line?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}

@Suite("The bound on the bytes all connections queue")
struct SendBudgetTests {
    @Test("20 clients that do not read: cynic's memory stays near --max-queued-bytes, the plugin sees CYNIC_ERR_FULL, one warning, and the budget comes back")
    func nonReadingClients() async throws {
        let folder = TemporaryFolder("cynic-budget")
        try compileCPlugin(floodPlugin, named: "flood", into: folder.path)
        let cynic = try CynicProcess(["serve", "flood", "--port", "0", "--plugin-dir", folder.path,
                                      "--max-queued-bytes", "32M"])
        let port = try #require(try cynic.waitForServices(1)["flood"])
        let pid = cynic.process.processIdentifier
        let before = try #require(memoryKiB("VmRSS", of: pid))

        var hogs: [SocketClient] = []
        for _ in 0..<20 {
            hogs.append(try SocketClient(port: port))
        }
        let deadline = Date().addingTimeInterval(30)
        while cynic.standardError.components(separatedBy: "flood: ").count - 1 < 20, Date() < deadline {
            usleep(50_000)
        }
        let log = cynic.standardError
        let floods = log.components(separatedBy: "\n").filter { $0.contains("flood: ") }
        #expect(floods.count == 20, "\(log)")
        // Without the bound every connection would hold its 64 MiB: 1.28 GB in all.
        let queued = floods.compactMap { line in
            line.components(separatedBy: "flood: ").last?.split(separator: " ").first.flatMap { Int($0) }
        }.reduce(0, +)
        // Blocks the kernel took (a few MiB per loopback socket) no longer count: more than 32 in
        // all, but far from 20 x 64.
        #expect(queued >= 32 && queued < 32 + 20 * 8, "blocks queued by all connections: \(queued)")
        #expect(floods.allSatisfy { $0.contains("then -4") }, "every connection ended its loop with CYNIC_ERR_FULL")
        let peak = try #require(memoryKiB("VmHWM", of: pid))
        print("cynic VmRSS before: \(before) KiB, VmHWM with 20 non-reading clients: \(peak) KiB, blocks queued: \(queued)")
        #expect(peak - before < (32 + 48) << 10, "VmRSS \(before) KiB before, peak \(peak) KiB with 20 clients")
        let warnings = log.components(separatedBy: "\n").filter { $0.contains("connections together have") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains("--max-queued-bytes") == true)

        // A new client is still served while the hogs hold the budget: what room the kernel made
        // by taking bytes from them (often none), then CYNIC_ERR_FULL, then an orderly close.
        let (early, earlyEnd) = try SocketClient(port: port).receiveAll(timeout: 30)
        let earlyText = String(decoding: early.suffix(24), as: UTF8.self)
        #expect(early.isEmpty || earlyText.hasSuffix(" full=-4\n"), "\(early.count) bytes, ending '\(earlyText)'")
        #expect(earlyEnd == .endOfFile)
        #expect(cynic.standardError.components(separatedBy: "flood: ").count - 1 == 21)

        // Once the hogs are gone every byte they held is back: a reader can queue the whole bound.
        hogs.removeAll()
        var received: [UInt8] = []
        let backDeadline = Date().addingTimeInterval(30)
        repeat {
            received = try SocketClient(port: port).receiveAll(timeout: 30).bytes
            if received.count > 32 << 20 { break }
            usleep(100_000)
        } while Date() < backDeadline
        #expect(received.count == (32 << 20) + "blocks=32 full=-4\n".utf8.count, "got \(received.count) bytes")
        // The budget is whole again, not short by a leak: exactly 32 blocks of 1 MiB fit.
        #expect(String(decoding: received.suffix(18), as: UTF8.self) == "blocks=32 full=-4\n")
        #expect(cynic.standardError.contains("sends accepted again"))
    }

    @Test("--max-queued-bytes refuses what is not a size, naming the flag")
    func badValue() throws {
        let result = try runProgram(Paths.cynic, ["serve", "random", "--port", "0", "--max-queued-bytes", "lots"])
        #expect(result.status != 0)
        #expect(result.output.contains("--max-queued-bytes"), "\(result.output)")
    }
}
