@testable import CynicControl
import CynicTestSupport
import Testing

/// Every committed input of the control API's fuzz target (fuzz/corpus/control-body), read as
/// the routes read a request body: a service, a shaper, a change of parameters, toxiproxy's
/// proxies and toxics. What the routes then do with the server is ControlAPITests' concern.
@Suite("The control API's fuzz corpus")
struct FuzzCorpusTests {
    static func refusal(_ error: APIError, _ name: String) {
        #expect((400..<500).contains(Int(error.status.code)), "\(name): \(error.status)")
        #expect(!error.message.isEmpty, "\(name)")
    }

    @Test("each control-body input is taken or refused with a 4xx and a message")
    func bodies() throws {
        let names = FuzzCorpus.names("control-body")
        #expect(names.count >= 10)
        var services = 0, proxies = 0, toxics = 0
        for name in names {
            let bytes = try FuzzCorpus.bytes("control-body", name)
            let body: JSONValue
            do {
                body = try JSONValue.parse(bytes)
            } catch {
                Self.refusal(error, name)
                continue
            }
            do {
                _ = try ServiceInput.service(body)
                services += 1
            } catch { Self.refusal(error, name) }
            do { _ = try ServiceRoutes.newShaper(body) } catch { Self.refusal(error, name) }
            do { _ = try ServiceRoutes.parameterChanges(JSONFields(body)) } catch { Self.refusal(error, name) }
            do {
                let shaper = try ToxicInput(new: body).shaper(existing: nil, shaperNames: ["bandwidth", "latency", "slicer"])
                _ = try ToxicInput(update: body, of: shaper).shaper(existing: shaper, shaperNames: ["bandwidth", "latency", "slicer"])
                toxics += 1
            } catch { Self.refusal(error, name) }
            var items: [(JSONValue, Int?)] = [(body, nil)]
            if case .array(let list) = body { items = list.enumerated().map { index, item in (item, index + 1) } }
            for (item, position) in items {
                do {
                    _ = try ProxyInput(item, position: position)
                    proxies += 1
                } catch { Self.refusal(error, name) }
            }
        }
        // The docs' and toxiproxy clients' bodies are taken.
        #expect(services >= 3 && proxies >= 3 && toxics >= 8)
    }
}
