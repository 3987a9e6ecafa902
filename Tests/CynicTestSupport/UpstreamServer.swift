import Foundation

/// A real server for a proxy to stand in front of: a Python program on 127.0.0.1, on a port the
/// kernel picks, stopped when the value is released. Its standard error is its log.
public final class UpstreamServer: @unchecked Sendable {
    // @unchecked: the output is guarded by its lock; the rest is immutable.
    public let port: Int
    private let process = Process()
    private let output = Output()
    /// What the server needs as long as it runs (the folder it serves), released with it.
    private let resources: [AnyObject]

    /// What the program printed, collected as it comes.
    private final class Output: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var streams = ["", ""]

        func append(_ data: Data, to stream: Int) {
            lock.lock()
            streams[stream] += String(decoding: data, as: UTF8.self)
            lock.unlock()
        }

        func text(_ stream: Int) -> String {
            lock.lock()
            defer { lock.unlock() }
            return streams[stream]
        }
    }

    public struct StartFailed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `script` with `python3 -u -c`; the script prints its port on its first line.
    public init(script: String, arguments: [String] = [], keeping resources: [AnyObject] = []) throws {
        self.resources = resources
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-c", script] + arguments
        let standardOutput = Pipe(), standardError = Pipe()
        process.standardOutput = standardOutput
        process.standardError = standardError
        process.standardInput = FileHandle.nullDevice
        let output = self.output
        standardOutput.fileHandleForReading.readabilityHandler = { output.append($0.availableData, to: 0) }
        standardError.fileHandleForReading.readabilityHandler = { output.append($0.availableData, to: 1) }
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            // The first line, once it is whole.
            port = output.text(0).split(separator: "\n", omittingEmptySubsequences: false).dropLast().first.flatMap { Int($0) }
            if port == nil { usleep(10_000) }
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            throw StartFailed(description: "the upstream server printed no port:\n\(output.text(0))\(output.text(1))")
        }
        self.port = port
    }

    deinit {
        // SIGKILL, not terminate(): a child started from a thread that blocks SIGTERM (as
        // dispatch's workers do) inherits the mask, and would never see it.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Everything it wrote to standard error so far.
    public var log: String { output.text(1) }

    /// Its log's lines that start with `prefix`.
    public func logLines(startingWith prefix: String) -> [String] {
        log.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    /// "127.0.0.1:PORT", as a proxy's `upstream` parameter.
    public var address: String { "127.0.0.1:\(port)" }

    /// An HTTP/1.1 server with keep-alive serving the files of `folder` (Python's
    /// `http.server`); a POST gets its body back. Each request is logged as `request METHOD TARGET`.
    public static func http(serving folder: TemporaryFolder) throws -> UpstreamServer {
        try UpstreamServer(script: """
            import http.server, os, sys
            class Handler(http.server.SimpleHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def log_message(self, format, *args):
                    sys.stderr.write("request %s %s\\n" % (self.command, self.path))
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    self.log_message("")
                    self.send_response_only(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            os.chdir(sys.argv[1])
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            print(server.server_address[1])
            server.serve_forever()
            """, arguments: [folder.path], keeping: [folder])
    }

    /// A raw TCP server, one thread per connection, doing one of:
    /// - `echo`: sends back what it receives; at EOF, closes.
    /// - `count`: reads to EOF, then answers "received N bytes\\n" and closes (a half-close test).
    /// - `reset`: reads once, then resets the connection (SO_LINGER 0, close).
    /// - `watch`: reads until EOF or an error, logging `data` for each read, then `ended eof` or
    ///   `ended reset`.
    public static func tcp(_ mode: String) throws -> UpstreamServer {
        try UpstreamServer(script: """
            import socket, socketserver, struct, sys
            mode = sys.argv[1]
            class Handler(socketserver.BaseRequestHandler):
                def handle(self):
                    s = self.request
                    if mode == "echo":
                        while True:
                            data = s.recv(65536)
                            if not data: break
                            s.sendall(data)
                    elif mode == "count":
                        total = 0
                        while True:
                            data = s.recv(65536)
                            if not data: break
                            total += len(data)
                        s.sendall(b"received %d bytes\\n" % total)
                    elif mode == "reset":
                        s.recv(65536)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        s.close()  # here: socketserver would shut down writing first, a FIN before the RST
                    elif mode == "watch":
                        try:
                            while s.recv(65536): sys.stderr.write("data\\n")
                            sys.stderr.write("ended eof\\n")
                        except ConnectionResetError:
                            sys.stderr.write("ended reset\\n")
            class Server(socketserver.ThreadingTCPServer):
                daemon_threads = True
            server = Server(("127.0.0.1", 0), Handler)
            print(server.server_address[1])
            server.serve_forever()
            """, arguments: [mode])
    }
}

/// A port on 127.0.0.1 where a connect is refused for as long as the value lives: bound, never
/// listening. A port that is merely free (`freePort()`) may be taken by another test meanwhile.
public final class RefusingPort: @unchecked Sendable {
    // @unchecked: immutable.
    public let port: Int
    private let fd: Int32

    public init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = getsockname(fd, $0, &length)
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// "127.0.0.1:PORT", as a proxy's `upstream` parameter.
    public var address: String { "127.0.0.1:\(port)" }
}
