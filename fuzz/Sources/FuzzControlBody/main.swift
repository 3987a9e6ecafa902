// The control API's request bodies: JSON read into a service, a shaper, a change of parameters,
// or toxiproxy's proxies and toxics, as the routes read them before anything reaches the server.
//
// Checked: a body is taken or refused with a 4xx and a message; a service taken, written back as
// the body a client would send for it, is taken as the same service; a toxic taken reads back as
// a body that makes the same toxic, and its own body, sent as an update, leaves it as it is.
@testable import CynicConfig
@testable import CynicControl
import Foundation
import FuzzSupport

/// A JSON value written out again: the API only reads them, so this harness writes them.
struct Written: Encodable {
    let value: JSONValue

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch value {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .integer(let number): try container.encode(number)
        case .unsigned(let number): try container.encode(number)
        case .double(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items.map(Written.init))
        case .object(let fields): try container.encode(fields.mapValues(Written.init))
        }
    }
}

/// The body of POST /services that asks for `spec`.
func body(for spec: ServiceSpec, enabled: Bool) -> JSONValue {
    var fields: [String: JSONValue] = [
        "name": .string(spec.name), "behaviour": .string(spec.behaviour), "listen": .string(spec.address.description),
        "parameters": .object(spec.parameters.mapValues { JSONValue.string($0.text) }), "enabled": .bool(enabled),
        "seed": spec.seed.map(JSONValue.unsigned) ?? .null,
        "shapers": .array(spec.shapers.map { shaper in
            .object(["shaper": .string(shaper.shaper), "name": .string(shaper.name),
                     "direction": .string(shaper.direction.rawValue), "probability": .double(shaper.probability),
                     "parameters": .object(shaper.parameters.mapValues { JSONValue.string($0.text) })])
        }),
    ]
    if let tls = spec.tls {
        var tlsFields: [String: JSONValue] = ["alpn": .array(tls.alpn.map { .string($0) })]
        if let certificate = tls.certificateFile, let key = tls.keyFile {
            tlsFields["certificate"] = .string(certificate)
            tlsFields["key"] = .string(key)
        } else {
            tlsFields["profile"] = .string(tls.profile)
        }
        if let names = tls.names { tlsFields["names"] = .array(names.map { .string($0) }) }
        if let version = tls.minimumVersion { tlsFields["min_version"] = .string(version.rawValue) }
        if let version = tls.maximumVersion { tlsFields["max_version"] = .string(version.rawValue) }
        fields["tls"] = .object(tlsFields)
    } else {
        fields["tls"] = .null
    }
    return .object(fields)
}

/// The shapers cynic ships, as the toxic routes get their names from the server.
let shaperNames = ["bandwidth", "latency", "limit", "reset-after", "slicer", "slow-close", "timeout"]

/// A toxic as toxiproxy's clients read it back, its keys in order so two can be compared.
func shown(_ shaper: ShaperSpec) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    do {
        return Array(try encoder.encode(ToxicJSON(shaper)))
    } catch {
        invariant(false, "a toxic could not be written: \(error)")
        return []
    }
}

func refused(_ error: APIError, by what: String) {
    invariant((400..<500).contains(Int(error.status.code)), "\(what): refused with \(error.status)")
    invariant(!error.message.isEmpty, "\(what): refused without a message")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlBody(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let request: JSONValue
    do {
        request = try JSONValue.parse(bytes(start, count))
    } catch {
        refused(error, by: "the JSON reader")
        return 0
    }

    // POST /services
    do {
        let (spec, enabled) = try ServiceInput.service(request)
        let written = try JSONEncoder().encode(Written(value: body(for: spec, enabled: enabled)))
        do {
            let again = try ServiceInput.service(try JSONValue.parse(Array(written)))
            invariant(again.spec == spec && again.enabled == enabled,
                      "a service taken, sent again, is another: \(spec) became \(again.spec)")
        } catch {
            invariant(false, "a service taken, sent again, is refused: \(error)\n\(String(decoding: written, as: UTF8.self))")
        }
    } catch let error as APIError {
        refused(error, by: "POST /services")
    } catch {
        invariant(false, "a service could not be written back: \(error)")
    }

    // POST /services/NAME/shapers, and a PATCH's parameters
    do {
        _ = try ServiceRoutes.newShaper(request)
    } catch {
        refused(error, by: "POST /services/NAME/shapers")
    }
    do {
        _ = try ServiceRoutes.parameterChanges(JSONFields(request))
    } catch {
        refused(error, by: "PATCH parameters")
    }

    // toxiproxy's POST /proxies/NAME/toxics; then the same body as an update of the toxic made
    do {
        let shaper = try ToxicInput(new: request).shaper(existing: nil, shaperNames: shaperNames)
        let first = shown(shaper)
        let text = String(decoding: first, as: UTF8.self)
        do {
            // A toxic read back and sent again is the toxic it was read back as.
            let again = try ToxicInput(new: try JSONValue.parse(first)).shaper(existing: nil, shaperNames: shaperNames)
            invariant(shown(again) == first, "a toxic sent as it reads back is another: \(text) became \(String(decoding: shown(again), as: UTF8.self))")
        } catch {
            invariant(false, "a toxic sent as it reads back is refused: \(error)\n\(text)")
        }
        do {
            // Updated with what made it, a toxic stays as it is.
            let updated = try ToxicInput(update: request, of: shaper).shaper(existing: shaper, shaperNames: shaperNames)
            invariant(shown(updated) == first, "a toxic updated with its own body changed: \(text) became \(String(decoding: shown(updated), as: UTF8.self))")
        } catch {
            invariant(false, "a toxic updated with its own body is refused: \(error)\n\(text)")
        }
    } catch {
        refused(error, by: "POST /proxies/NAME/toxics")
    }

    // toxiproxy's POST /proxies, and /populate's list
    var proxies: [(JSONValue, Int?)] = [(request, nil)]
    if case .array(let items) = request {
        proxies = items.enumerated().map { index, item in (item, index + 1) }
    }
    for (item, position) in proxies {
        do {
            let proxy = try ProxyInput(item, position: position)
            invariant(!proxy.name.isEmpty && !proxy.upstream.isEmpty, "a proxy taken without a name or an upstream")
        } catch {
            refused(error, by: "POST /proxies")
        }
    }
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzControlBody_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzControlBody(data, size) }
}
