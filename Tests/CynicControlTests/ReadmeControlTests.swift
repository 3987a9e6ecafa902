import CynicTestSupport
import Foundation
import Testing

@Suite("README: the control API")
struct ReadmeControlTests {
    @Test("the README's curl lines create, shape, disable and delete a proxy")
    func curlLines() throws {
        let api = try CynicWithAPI()
        let port = try #require(api.url.split(separator: ":").last.map(String.init))
        let lines = Readme.text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("curl -X") && $0.contains("localhost:41877") }
        #expect(lines.count == 4)
        for line in lines {
            let command = line.replacingOccurrences(of: "localhost:41877", with: "127.0.0.1:\(port)")
            let result = try runProgram("sh", ["-c", command + " -sS -o /dev/null -w '%{http_code}'"])
            #expect(result.status == 0 && result.standardOutput.hasPrefix("2"), "\(command): \(result.output)")
        }
        #expect(try api.call("GET", "/services").array.isEmpty)
    }

    @Test("the README's pytest example is the client's own, which its tests run as written")
    func pytestExample() throws {
        let client = try String(contentsOfFile: Paths.repository + "/clients/python/README.md", encoding: .utf8)
        let example = try #require(client.components(separatedBy: "```python\n").dropFirst().first?.components(separatedBy: "```").first)
        #expect(Readme.blocks("python").contains(example))
    }

    @Test("the README's toxiproxy-python example runs as written, in front of a real Redis",
          .enabled(if: RedisServer.isInstalled || ProcessInfo.processInfo.environment["CI"] == "true"))
    func toxiproxyExample() throws {
        let code = try #require(Readme.blocks("python").first { $0.contains("from toxiproxy import Toxiproxy") })
        let redis = try RedisServer.start()
        let api = try CynicWithAPI()
        let apiPort = try #require(api.url.split(separator: ":").last.map(String.init))
        let proxyPort = freePort()
        // The example's ports, for ports of this test's own: 8474 may be taken while tests run.
        let script = code.replacingOccurrences(of: "8474", with: apiPort)
            .replacingOccurrences(of: "26379", with: "\(proxyPort)")
            .replacingOccurrences(of: "6379", with: "\(redis.port)")
        let result = try runPython(script)
        #expect(result.status == 0, "\(result.output)\n\(api.cynic.standardError)")
    }
}
