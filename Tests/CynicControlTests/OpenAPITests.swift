import CynicTestSupport
import Foundation
import Testing

// The control API's OpenAPI document (Sources/CynicControl/openapi.yaml) against the server it
// describes: the built `cynic serve --api 127.0.0.1:0` serves the document it was built with,
// and schemathesis, generating requests from the document (valid ones and invalid ones), finds
// no 5xx and no answer off the document.

/// The schemathesis this test is written against; .ci/run installs it.
private let pinnedSchemathesis = "4.32.5"

private let document = Paths.repository + "/Sources/CynicControl/openapi.yaml"

private let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

/// The installed schemathesis' version, or nil when it is not installed.
private let installedSchemathesis: String? = {
    guard let result = try? runPython("import schemathesis; print(schemathesis.__version__)"), result.status == 0 else { return nil }
    return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
}()

/// `cynic serve --api 127.0.0.1:0`, and the API's base URL.
private struct ControlAPIProcess {
    let cynic: CynicProcess
    let url: String

    init(_ arguments: [String] = []) throws {
        cynic = try CynicProcess(["serve", "--api", "127.0.0.1:0"] + arguments)
        let prefix = "control API listening on "
        try cynic.waitFor(prefix)
        // The whole line: the port may still be on its way.
        let deadline = Date().addingTimeInterval(10)
        while Self.line(prefix, in: cynic.standardOutput) == nil, Date() < deadline { usleep(10_000) }
        let line = try #require(Self.line(prefix, in: cynic.standardOutput), "no whole line: \(cynic.standardOutput)")
        url = String(line.dropFirst(prefix.count))
    }

    private static func line(_ prefix: String, in output: String) -> Substring? {
        output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().first { $0.hasPrefix(prefix) }
    }
}

private struct RequestFailed: Error, CustomStringConvertible {
    let description: String
}

/// A request with Python's urllib: the status and the body's bytes (an error status included).
private func request(_ method: String, _ url: String, body: String? = nil) throws -> (status: Int, body: [UInt8]) {
    let code = """
        import base64, sys, urllib.request, urllib.error
        method, url, body = sys.argv[1], sys.argv[2], sys.stdin.buffer.read() if sys.argv[3] == "1" else None
        request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
        try:
            response = urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            response = error
        print(response.status, base64.b64encode(response.read()).decode())
        """
    let result = try runProgram("python3", ["-c", code, method, url, body == nil ? "0" : "1"], input: body)
    let fields = result.standardOutput.split(separator: " ")
    guard result.status == 0, fields.count == 2, let status = Int(fields[0]),
          let bytes = Data(base64Encoded: fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw RequestFailed(description: "\(method) \(url): \(result.output)")
    }
    return (status, Array(bytes))
}

/// Run by schemathesis on each case before it sends it (`SCHEMATHESIS_HOOKS`); neither change
/// turns a valid body into an invalid one or back:
///
/// - every `listen` cynic would bind — one that matches the document's `ListenAddress` pattern,
///   which is exactly what the server reads — becomes 127.0.0.1:0, so cynic only ever listens on
///   loopback, on ports the kernel picks, and never on a Unix socket somewhere in the file system
///   (this test may run as root). A value off the pattern is left as generated: cynic must
///   refuse it, which is checked.
/// - a `%` in a generated `name` becomes `_`: schemathesis percent-decodes a path parameter before
///   it encodes it (transport/serialization.py, "to keep quoting idempotent"), so it sends the
///   name `a%41` as `a%41`, which is `aA`, and would report the resource it created as missing.
///   cynic itself takes `%` in names (its clients send `%25`).
private let hooks = #"""
    import os, re
    import yaml
    import schemathesis

    with open(os.environ["CYNIC_OPENAPI"]) as document:
        LISTEN = re.compile(yaml.safe_load(document)["components"]["schemas"]["ListenAddress"]["pattern"])

    def adjust(body):
        if isinstance(body, list):
            for item in body:
                adjust(item)
        elif isinstance(body, dict):
            listen = body.get("listen")
            if isinstance(listen, str) and listen != "" and LISTEN.search(listen):
                body["listen"] = "127.0.0.1:0"
            if isinstance(body.get("name"), str):
                body["name"] = body["name"].replace("%", "_")
            for value in body.values():
                adjust(value)

    @schemathesis.hook
    def map_case(context, case):
        adjust(case.body)
        # A long poll holds its request for up to 60 s: a generated wait is cut to a second, so
        # the run stays within its request timeout (the bound itself is still checked: 61 is
        # off the document, left as generated, and must be refused).
        if isinstance(case.query, dict) and "wait" in case.query:
            try:
                wait = float(case.query["wait"])
            except (TypeError, ValueError):
                wait = None
            if wait is not None and 0 <= wait <= 60:
                case.query["wait"] = min(wait, 1)
        return case
    """#

/// schemathesis' configuration. Every check runs, but one check on a few operations:
///
/// positive_data_acceptance is off for the operations whose bodies name plugins and their
/// parameters (a service's `behaviour` and `parameters`, a shaper's `shaper` and `parameters`, a
/// toxic's `type` and `attributes`): which names and values are valid is up to the plugins
/// loaded (`GET /plugins`), which a JSON schema cannot say, so a body valid by the document is
/// rightly refused with 400 ("unknown behaviour 'x'"). Those operations still get every other
/// check — no 5xx, answers as documented, invalid bodies refused — and the proxies' operations,
/// whose bodies the document describes completely, keep this check too.
///
/// Nothing is written beside the test: no example database, no cache (and Hypothesis' storage
/// goes to the temporary folder).
private let configuration = """
    [cache]
    enabled = false

    [generation]
    database = "none"

    [[operations]]
    include-operation-id = ["createService", "changeService", "addShaper", "changeShaper", "addToxic", "changeToxic", "patchToxic"]
    checks.positive_data_acceptance.enabled = false
    """

@Suite("The control API agrees with its OpenAPI document")
struct OpenAPITests {
    @Test("GET /openapi.yaml serves the committed file byte for byte", .enabled(if: programExists("python3")))
    func servesDocument() throws {
        let api = try ControlAPIProcess()
        defer { api.cynic.stop() }
        let served = try request("GET", api.url + "/openapi.yaml")
        #expect(served.status == 200)
        let committed = try #require(FileManager.default.contents(atPath: document))
        #expect(served.body == Array(committed), "rebuild cynic: the document it serves is not the one in \(document)")
    }

    @Test("schemathesis finds no 5xx and no answer off the document",
          .enabled(if: installedSchemathesis != nil || isCI), .timeLimit(.minutes(5)))
    func schemathesis() throws {
        // Bounded: about 15 s on two idle cores, about a minute beside the other tests.
        try runSchemathesis(["--max-examples", "15"])
    }

    @Test("with a token: requests that send it agree with the document, those that do not get a documented 401",
          .enabled(if: installedSchemathesis != nil || isCI), .timeLimit(.minutes(5)))
    func schemathesisWithToken() throws {
        try runSchemathesis(["--max-examples", "5", "--phases", "examples,fuzzing", "--header", "Authorization: Bearer sekrit"],
                            cynic: ["--api-token", "sekrit"])
        try runSchemathesis(["--max-examples", "3", "--phases", "examples,fuzzing"], cynic: ["--api-token", "sekrit"])
    }

    /// Runs schemathesis against a fresh `cynic serve --api 127.0.0.1:0 CYNIC...` and expects it to
    /// find nothing; on failure, its report and cynic's log.
    private func runSchemathesis(_ arguments: [String], cynic: [String] = []) throws {
        let version = try #require(installedSchemathesis,
                                   "schemathesis is not installed: python3 -m pip install schemathesis==\(pinnedSchemathesis) (.ci/run does)")
        if isCI {
            #expect(version == pinnedSchemathesis, "schemathesis \(version) installed; this test is written against \(pinnedSchemathesis)")
        }
        let folder = TemporaryFolder("cynic-openapi")
        try folder.write("cynic_hooks.py", hooks)
        let configurationFile = try folder.write("schemathesis.toml", configuration)
        let api = try ControlAPIProcess(cynic)
        defer { api.cynic.stop() }

        let started = Date()
        // The request timeout stops a hung answer; the seed makes a failure reproducible.
        let result = try runProgram("python3", [
            "-m", "schemathesis.cli", "--config-file", configurationFile,
            "run", document, "--url", api.url, "--seed", "1", "--request-timeout", "5", "--no-color",
            // A stream answers until its client goes away: schemathesis would wait for an end
            // that never comes. ControlAPIEventTests reads it.
            "--exclude-operation-id", "streamEvents",
        ] + arguments, environment: ["SCHEMATHESIS_HOOKS": "cynic_hooks", "PYTHONPATH": folder.path, "CYNIC_OPENAPI": document,
                      // Hypothesis' own cache, else .hypothesis/ in the current folder.
                      "HYPOTHESIS_STORAGE_DIRECTORY": folder.file("hypothesis")],
           timeout: 240)
        let seconds = Int(Date().timeIntervalSince(started))
        #expect(result.status == 0, "schemathesis \(version) \(arguments.joined(separator: " ")) (\(seconds) s) found a disagreement:\n\(result.output)\ncynic said:\n\(api.cynic.standardError)")
        #expect(api.cynic.process.isRunning, "cynic ended under schemathesis:\n\(api.cynic.standardError)")
    }

    // Where server and document disagreed, kept as plain requests.

    @Test("a Unix socket path with a NUL in it is refused, not bound at the path cut short", .enabled(if: programExists("python3")))
    func unixPathWithNUL() throws {
        let folder = TemporaryFolder("cynic-openapi")
        let api = try ControlAPIProcess()
        defer { api.cynic.stop() }
        let answer = try request("POST", api.url + "/services",
                                 body: #"{"name": "u", "behaviour": "empty", "listen": "unix:\#(folder.path)/s\u0000t"}"#)
        #expect(answer.status == 400, "\(String(decoding: answer.body, as: UTF8.self))")
        #expect(!FileManager.default.fileExists(atPath: folder.file("s")))
    }

    @Test("a name's 128 characters are counted as the document's maxLength counts them: Unicode scalars",
          .enabled(if: programExists("python3")))
    func nameLength() throws {
        let api = try ControlAPIProcess()
        defer { api.cynic.stop() }
        // 129 scalars, 128 characters: "e" and a combining acute accent are one.
        let long = try request("POST", api.url + "/services",
                               body: #"{"name": "é\#(String(repeating: "a", count: 127))", "behaviour": "empty"}"#)
        #expect(long.status == 400, "\(String(decoding: long.body, as: UTF8.self))")
        let most = try request("POST", api.url + "/services",
                               body: #"{"name": "\#(String(repeating: "a", count: 128))", "behaviour": "empty"}"#)
        #expect(most.status == 201, "\(String(decoding: most.body, as: UTF8.self))")
    }
}
