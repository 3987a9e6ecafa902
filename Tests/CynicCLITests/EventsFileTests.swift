import CynicTestSupport
import Foundation
import Testing

/// `--events FILE`: every connection's record, one JSON line each, as `cynic` writes it.
@Suite("Command line: --events FILE")
struct EventsFileTests {
    @Test("cynic serve --events: one JSON line per connection; one left open at SIGTERM ends server_stopping")
    func jsonLinePerConnection() throws {
        let folder = TemporaryFolder("cynic-events")
        let file = folder.file("events.jsonl")
        let cynic = try CynicProcess(["serve", "noresponse", "--port", "0", "--events", file, "--drain-seconds", "0",
                                      "--log-level", "debug"])
        let port = try #require(try cynic.waitForServices(1)["noresponse"])

        let first = try SocketClient(port: port)
        first.send("abc")
        first.shutdownWrite()
        #expect(first.receiveAll().end == .endOfFile)
        try cynic.waitFor("connection 1 from 127.0.0.1:", inError: true)

        let second = try SocketClient(port: port)
        second.send("xy")
        // Its plugin has it: accepted, not only queued by the kernel.
        let deadline = Date().addingTimeInterval(20)
        while cynic.standardError.components(separatedBy: "connection opened").count < 3, Date() < deadline { usleep(10_000) }
        cynic.stop()
        #expect(cynic.process.terminationStatus == 0, "\(cynic.standardError)")

        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 2, "\(lines)\n\(cynic.standardError)")
        let records = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(records.map { $0["id"] as? Int } == [1, 2])
        #expect(records.map { $0["service"] as? String } == ["noresponse", "noresponse"])
        #expect(records.map { $0["end"] as? String } == ["peer_closed", "server_stopping"])
        #expect(records.map { $0["ended_by"] as? String } == ["peer", "cynic"])
        #expect(records.map { ($0["client"] as? [String: Int])?["bytes_in"] } == [3, 2])
        #expect(records.allSatisfy { $0["upstream"] is NSNull && ($0["peer"] as? String)?.hasPrefix("127.0.0.1:") == true })
        // The console has the same, one line each.
        #expect(cynic.standardError.contains("service=noresponse"), "\(cynic.standardError)")
        #expect(cynic.standardError.contains(": peer_closed after "))
        #expect(cynic.standardError.contains(": server_stopping by cynic after "))
        _ = second
    }

    @Test("an events file that cannot be opened: one line, exit 1, before anything listens")
    func unopenableFile() throws {
        let result = try runProgram(Paths.cynic, ["serve", "noresponse", "--port", "0", "--events", "/nonexistent/folder/events.jsonl"])
        #expect(result.status == 1)
        #expect(result.standardError == "cynic: cannot open the events file /nonexistent/folder/events.jsonl: No such file or directory\n",
                "\(result.output)")
        #expect(!result.standardOutput.contains("listening"))
    }
}
