import ArgumentParser
import CynicConfig
import CynicPlugins
import CynicRuntime
import Foundation
import Logging
import NIOPosix
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load one plugin file as the server would, and run it once against a client of cynic's own.",
        discussion: """
            Prints the plugin's descriptor, then serves it on 127.0.0.1 (a port the kernel picks) to one \
            client — raw, or for an HTTP behaviour one sending `GET / HTTP/1.1` — that reads until the \
            connection ends or --seconds pass; each action the plugin asked for is printed as cynic \
            performs it, with the time since the client connected, then how the connection ended. \
            Exit status 1 when the plugin or its parameters are refused. \
            Example: cynic check ./hello.so --param greeting=hi
            """)

    @Argument(help: ArgumentHelp("The plugin file.", valueName: "FILE.so"))
    var file: String

    @Option(name: .customLong("param"), help: ParameterAssignment.help("A parameter of the behaviour; repeatable."))
    var parameters: [ParameterAssignment] = []

    @Option(help: "How long the client waits for the connection to end.")
    var seconds: Double = 5

    @OptionGroup var trust: PluginTrustOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds \(seconds): expected more than 0 (and at most 86400)") }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "cynic")
        trust.warnIfUnsafe(logger)
        // A private copy, as the server loads every plugin.
        let copies: PluginCopies
        do {
            copies = try PluginCopies()
        } catch {
            throw failure("cannot keep private copies of plugins in \(error)")
        }
        defer { copies.removeAll() }
        let plugin: Plugin
        do {
            plugin = try Plugin.load(file: file, copies: copies, trust: trust.trust)
        } catch {
            throw failure("\(error)")
        }
        for line in plugin.descriptionLines() { print(line) }
        print("")
        guard !plugin.isShaper else {
            print("\(plugin.name) is a shaper: `cynic check` runs behaviours. A shaper applies to a service's connections: "
                  + "cynic serve BEHAVIOUR --port 0 --plugin-dir DIR --shape \(plugin.name)")
            return
        }

        let spec = ServiceSpec(name: plugin.name, behaviour: plugin.name, address: .tcp(host: "127.0.0.1", port: 0),
                               parameters: ParameterAssignment.inputs(parameters), origin: "cynic check")
        let setup: ServiceSetup
        do {
            setup = try Service.makeSetup(spec, plugins: [plugin.name: plugin])
        } catch {
            throw failure("\(error)")
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let timeline = Timeline()
        let service: Service
        do {
            service = try await Service.start(spec, setup: setup, group: group, logger: logger,
                                              observer: { timeline.record($0) })
        } catch {
            try? await group.shutdownGracefully()
            throw failure("\(error)")
        }
        guard case .tcp(_, let port) = service.boundAddress else { preconditionFailure("a TCP service") }
        let given = parameters.isEmpty ? "" : " with " + parameters.map(\.description).joined(separator: " ")
        let client = plugin.speaksHTTP1 ? "an HTTP client (GET /)" : "a raw client"
        print("running \(plugin.name) once on 127.0.0.1:\(port)\(given), \(client), for at most \(Timeline.seconds(seconds)) s:")

        let seconds = self.seconds
        let http = plugin.speaksHTTP1
        let outcome = await onOwnThread { CheckClient.run(port: port, http: http, seconds: seconds, timeline: timeline) }
        timeline.finish(outcome.summary(serverEnd: timeline.end))

        await service.stop()
        try? await group.shutdownGracefully()
    }
}


/// Runs blocking work on a thread of its own, off Swift's cooperative pool.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}

/// The check's one connection, as both ends saw it: lines printed as they happen, each with the
/// time since the client started connecting, from the event loop (cynic's side) and the
/// client's thread.
final class Timeline: Sendable {
    private struct State {
        var start = ContinuousClock.now
        var end: ConnectionEnd?
        var printed = 0
        var hidden = 0
        var finished = false
    }

    private let state = Mutex(State())
    /// Past this many lines, actions are counted, not printed (a huge stream).
    private static let maximumLines = 400

    /// The clock starts now.
    func start() { state.withLock { $0.start = .now } }

    /// How cynic's side ended, when it has.
    var end: ConnectionEnd? { state.withLock { $0.end } }

    /// The time since `start()`.
    var elapsed: Duration { state.withLock { ContinuousClock.now - $0.start } }

    func record(_ event: ConnectionEvent) {
        state.withLock { state in
            let text: String
            var always = false
            switch event.kind {
            case .opened(let peer): text = "accepted the connection" + (peer.map { " from \($0)" } ?? "")
            case .received(let bytes): text = "received \(bytes) byte\(bytes == 1 ? "" : "s")"
            case .request(let request): text = "received the request \(request)"
            case .peerClosed: text = "read EOF: the client closed its sending side"
            case .performed(let action): text = action.description
            case .ended(let end):
                state.end = end
                text = "connection ended: \(end)"
                always = true
            }
            Self.print(&state, "cynic ", text, always: always)
        }
    }

    /// A line from the client's side.
    func client(_ text: String) {
        state.withLock { Self.print(&$0, "client", text, always: true) }
    }

    /// Waits up to `timeout` seconds for cynic's side to end; returns how it did.
    func waitForEnd(timeout: Double) -> ConnectionEnd? {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            if let end { return end }
            usleep(5_000)
        }
        return end
    }

    /// The last line; events after it are not printed.
    func finish(_ summary: String) {
        state.withLock { state in
            if state.hidden > 0 { Swift.print("  (\(state.hidden) more events not shown)") }
            state.finished = true
            Swift.print(summary)
        }
    }

    private static func print(_ state: inout State, _ side: String, _ text: String, always: Bool) {
        guard !state.finished else { return }
        guard always || state.printed < maximumLines else {
            state.hidden += 1
            return
        }
        state.printed += 1
        Swift.print("  \(time(ContinuousClock.now - state.start))  \(side)  \(text)")
    }

    /// "  0.052": seconds with milliseconds, right-aligned.
    static func time(_ duration: Duration) -> String {
        let milliseconds = max(0, Int(duration / .milliseconds(1)))
        let fraction = String(milliseconds % 1000)
        let text = "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
        return String(repeating: " ", count: max(0, 7 - text.count)) + text
    }

    /// "5", "0.5".
    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// The client of `cynic check`: connects, sends a request to an HTTP behaviour, reads until the
/// connection ends or time is up. Blocking, on a thread of its own.
enum CheckClient {
    struct Outcome {
        enum End {
            /// EOF: cynic's FIN.
            case endOfFile
            /// ECONNRESET: cynic's RST.
            case reset
            case failed(String)
            /// Neither within the time: the client closed it.
            case stillOpen
            case connectTimedOut
            case connectFailed(String)
        }

        var end: End
        var received = 0
        var after: Duration = .zero
        var seconds: Double

        /// The last line of the check: how the connection ended.
        func summary(serverEnd: ConnectionEnd?) -> String {
            let at = Timeline.time(after).trimmingLeadingSpaces
            let bytes = "the client received \(received) byte\(received == 1 ? "" : "s")"
            switch end {
            case .endOfFile:
                switch serverEnd?.kind {
                case .closed?: return "ended: closed by cynic with FIN after \(at) s; \(bytes)"
                case .dropped?: return "ended: closed by cynic itself (\(serverEnd!.reason ?? "?")) after \(at) s; \(bytes)"
                case _?: return "ended: \(serverEnd!) after \(at) s; \(bytes)"
                case nil:
                    return "ended: cynic shut down its sending side (FIN) after \(at) s and kept the connection open; the client closed it; \(bytes)"
                }
            case .reset: return "ended: reset by cynic (RST) after \(at) s; \(bytes) before it"
            case .failed(let reason): return "ended: the client's receive failed after \(at) s: \(reason); \(bytes)"
            case .stillOpen: return "ended: still open after \(Timeline.seconds(seconds)) s; closed by the client; \(bytes)"
            case .connectTimedOut: return "ended: never accepted: the client's connect was still pending after \(Timeline.seconds(seconds)) s"
            case .connectFailed(let reason): return "ended: the client could not connect: \(reason)"
            }
        }
    }

    static func run(port: Int, http: Bool, seconds: Double, timeline: Timeline) -> Outcome {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var outcome = Outcome(end: .stillOpen, seconds: seconds)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return Outcome(end: .connectFailed(errnoText()), seconds: seconds) }
        var closed = false
        defer { if !closed { close(fd) } }
        timeline.start()
        timeline.client("connecting to 127.0.0.1:\(port)")

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let started = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if started != 0 {
            guard errno == EINPROGRESS else { return Outcome(end: .connectFailed(errnoText()), seconds: seconds) }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
                return Outcome(end: .connectTimedOut, seconds: seconds)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { return Outcome(end: .connectFailed(String(cString: strerror(error))), seconds: seconds) }
        }
        timeline.client("connected")

        if http {
            let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
            var offset = 0
            while offset < request.count, wait(fd, for: Int16(POLLOUT), until: deadline) {
                let sent = request.withUnsafeBytes { send(fd, $0.baseAddress! + offset, request.count - offset, Int32(MSG_NOSIGNAL)) }
                if sent < 0, errno != EAGAIN, errno != EINTR { break }
                offset += max(sent, 0)
            }
            timeline.client("sent \(offset) bytes  \"\(ConnectionAction.printable(request))\"")
        }

        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        reading: while true {
            guard wait(fd, for: Int16(POLLIN), until: deadline) else {
                outcome.end = .stillOpen
                break
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            switch count {
            case 0:
                outcome.end = .endOfFile
                break reading
            case ..<0:
                if errno == EAGAIN || errno == EINTR { continue }
                outcome.end = errno == ECONNRESET ? .reset : .failed(errnoText())
                break reading
            default:
                outcome.received += count
            }
        }
        outcome.after = timeline.elapsed
        switch outcome.end {
        case .endOfFile:
            timeline.client("read EOF after \(outcome.received) bytes")
            // A close ends cynic's side at once; a shutdown_write leaves it open.
            _ = timeline.waitForEnd(timeout: 2)
        case .reset:
            timeline.client("receive failed: connection reset (ECONNRESET) after \(outcome.received) bytes")
            // The client can see the RST before cynic's side has finished ending.
            _ = timeline.waitForEnd(timeout: 2)
        case .stillOpen:
            timeline.client("still open after \(Timeline.seconds(seconds)) s: the client closes it")
            close(fd)
            closed = true
            _ = timeline.waitForEnd(timeout: 0.3)
        default:
            break
        }
        return outcome
    }

    /// Polls until `events` or the deadline; true when ready.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            var poller = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left / .milliseconds(1))))
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return true }  // let the call itself report the error
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

private extension String {
    var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}
