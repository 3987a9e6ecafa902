@testable import CynicPluginKit
import Testing

// A host of the test's own, standing in for cynic's: what a plugin's calls reach, recorded. Only
// the one test below uses it, and the kit calls it on the test's thread.
nonisolated(unsafe) private var offersConnect = true
nonisolated(unsafe) private var openStatus = CYNIC_OK
nonisolated(unsafe) private var opened: (address: String, events: UnsafePointer<cynic_upstream_events>, state: UnsafeMutableRawPointer?)?
nonisolated(unsafe) private var sent: [(conn: OpaquePointer?, bytes: [UInt8])] = []

nonisolated(unsafe) private let client = OpaquePointer(bitPattern: 0x1000)!
nonisolated(unsafe) private let upstreamHandle = OpaquePointer(bitPattern: 0x2000)!

private struct FakeHost: @unchecked Sendable { // written once, read-only after
    let host: UnsafePointer<cynic_host>
    let connect: UnsafePointer<cynic_connect>

    init() {
        var connect = cynic_connect()
        connect.abi_version = CYNIC_ABI_VERSION
        connect.struct_size = UInt32(MemoryLayout<cynic_connect>.size)
        connect.open = { _, address, events, state, upstream in
            guard openStatus == CYNIC_OK else { return openStatus }
            opened = (String(cString: address!), events!, state)
            upstream!.pointee = upstreamHandle
            return CYNIC_OK
        }
        let connectStorage = UnsafeMutablePointer<cynic_connect>.allocate(capacity: 1)
        connectStorage.initialize(to: connect)
        self.connect = UnsafePointer(connectStorage)

        var host = cynic_host()
        host.abi_version = CYNIC_ABI_VERSION
        host.struct_size = UInt32(MemoryLayout<cynic_host>.size)
        host.send = { conn, bytes, length in
            sent.append((conn, Array(UnsafeRawBufferPointer(start: bytes, count: length))))
            return CYNIC_OK
        }
        host.get_extension = { id in
            guard offersConnect, String(cString: id!) == CYNIC_CONNECT_ID else { return nil }
            return UnsafeRawPointer(fakeHost.connect)
        }
        let hostStorage = UnsafeMutablePointer<cynic_host>.allocate(capacity: 1)
        hostStorage.initialize(to: host)
        self.host = UnsafePointer(hostStorage)
    }
}

private let fakeHost = FakeHost()

/// Echoes what the server sends to the client, and records the events.
private final class Recorder: UpstreamHandler {
    let client: Connection
    var events: [String] = []

    init(client: Connection) { self.client = client }

    func connected(_ upstream: Upstream) { events.append("connected") }
    func connectFailed(errno: Int32, on upstream: Upstream) { events.append("connect failed \(errno)") }
    func data(_ bytes: UnsafeRawBufferPointer, from upstream: Upstream) {
        events.append("data \(bytes.count)")
        client.send(bytes)
        upstream.send(Array("ack".utf8))
    }
    func ended(_ how: UpstreamEnd, on upstream: Upstream) { events.append("ended \(how)") }
}

@Suite("Upstream: the kit's side of cynic.connect/1, against a host of the test's own", .serialized)
struct UpstreamTests {
    @Test("open, events to the handler, actions on either handle, the handler let go after ended")
    func eventsReachTheHandler() throws {
        let connection = Connection(client, host: fakeHost.host, state: ConnectionState(host: fakeHost.host))
        weak var released: Recorder?
        do {
            let recorder = Recorder(client: connection)
            released = recorder
            let upstream = try connection.openUpstream("127.0.0.1:5432", handler: recorder)
            #expect(upstream.pointer == upstreamHandle)
        }
        let (address, events, state) = try #require(opened)
        #expect(address == "127.0.0.1:5432")
        #expect(events.pointee.struct_size == UInt32(MemoryLayout<cynic_upstream_events>.size))
        #expect(released != nil, "kept alive by the kit until ended")

        events.pointee.connected!(state, upstreamHandle)
        let hello = Array("hello".utf8)
        hello.withUnsafeBufferPointer { events.pointee.data!(state, upstreamHandle, $0.baseAddress, $0.count) }
        #expect(sent.map(\.conn) == [client, upstreamHandle])
        #expect(sent.map(\.bytes) == [hello, Array("ack".utf8)])
        events.pointee.ended!(state, upstreamHandle, CYNIC_END_RESET_BY_PEER)
        #expect(released == nil, "released once ended returned")
    }

    @Test("no capability, or the host refuses: an error, and no handler kept")
    func openFails() throws {
        let connection = Connection(client, host: fakeHost.host, state: ConnectionState(host: fakeHost.host))
        weak var released: Recorder?
        offersConnect = false
        defer { offersConnect = true; openStatus = CYNIC_OK }
        #expect(throws: OpenUpstreamError.unsupported) { try connection.openUpstream("x:1", handler: Recorder(client: connection)) }
        offersConnect = true
        openStatus = CYNIC_ERR_INVALID
        do {
            let recorder = Recorder(client: connection)
            released = recorder
            #expect(throws: OpenUpstreamError.refused(status: CYNIC_ERR_INVALID)) {
                try connection.openUpstream("nonsense", handler: recorder)
            }
        }
        #expect(released == nil)
    }

    @Test("how an upstream ended, from the C values", arguments: [
        (CYNIC_END_CLOSED, UpstreamEnd.closed), (CYNIC_END_RESET_BY_PEER, .resetByPeer), (CYNIC_END_RESET, .reset),
        (CYNIC_END_CONNECT_FAILED, .connectFailed), (CYNIC_END_CLIENT_ENDED, .clientEnded), (99, .other(99)),
    ])
    func ends(value: UInt32, expected: UpstreamEnd) {
        #expect(UpstreamEnd(value) == expected)
    }
}
