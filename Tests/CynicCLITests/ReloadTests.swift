import CynicTestSupport
import Foundation
import Testing

@Suite("Reloading while serving")
struct ReloadTests {
    @Test("SIGHUP: a changed service rebinds, an unchanged one keeps its open connection, a bad file changes nothing")
    func sighup() throws {
        let folder = TemporaryFolder()
        let (steadyPort, first, second) = (freePort(), freePort(), freePort())
        let file = try folder.write("cynic.yaml", """
            services:
              steady:
                behaviour: noresponse
                port: \(steadyPort)
              moving:
                behaviour: random
                port: \(first)
                params: { length: 3 }
            log_sink: { enabled: false }
            """)
        let cynic = try CynicProcess(["-c", file])
        let ports = try cynic.waitForServices(2)
        #expect(ports["steady"] == steadyPort)
        let held = try SocketClient(port: steadyPort)
        #expect(try SocketClient(port: first).receiveAll().bytes.count == 3)

        // A mistake: refused whole, the running set stays.
        try folder.write("cynic.yaml", "services:\n  moving:\n    port: nope\n")
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reload refused, the running services stay", inError: true)
        #expect(try SocketClient(port: first).receiveAll().bytes.count == 3)

        try folder.write("cynic.yaml", """
            services:
              steady:
                behaviour: noresponse
                port: \(steadyPort)
              moving:
                behaviour: random
                port: \(second)
                params: { length: 5 }
            log_sink: { enabled: false }
            """)
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded", inError: true)
        #expect(try SocketClient(port: second).receiveAll().bytes.count == 5)
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: first) }
        // The unchanged service kept its listener and the connection it held.
        #expect(held.tcpState == 1 /* TCP_ESTABLISHED */)
        #expect(held.receive(timeout: 0.3) == .timedOut)
        #expect(held.send("still there") == 0)
        #expect(!cynic.standardError.contains("service steady"), "steady was never touched")
    }
}
