// The configuration loader: YAML text (Yams) read into services, as `cynic -c FILE` and SIGHUP do.
//
// Checked: a file is read or refused in one line naming the file and what is wrong; a file read,
// written back as `cynic -d` writes a configuration, reads back as the same configuration.
@testable import CynicConfig
import FuzzSupport

/// What a configuration says, without where it said it (a dump has other line numbers).
struct Meaning: Equatable {
    struct Shaper: Equatable {
        let name, shaper: String
        let probability: Double
        let direction: ShaperDirection
        let parameters: [String: String]
    }

    struct Service: Equatable {
        let name, behaviour: String
        let address: ServiceAddress
        let parameters: [String: String]
        let shapers: [Shaper]
        let seed: UInt64?
        let tls: TLSSpec?
    }

    let services: [Service]
    let logSink: Configuration.LogSinkSetting

    init(_ configuration: Configuration) {
        services = configuration.services.map { service in
            Service(name: service.name, behaviour: service.behaviour, address: service.address,
                    parameters: service.parameters.mapValues(\.text),
                    shapers: service.shapers.map {
                        Shaper(name: $0.name, shaper: $0.shaper, probability: $0.probability, direction: $0.direction,
                               parameters: $0.parameters.mapValues(\.text))
                    },
                    seed: service.seed, tls: service.tls)
        }
        logSink = configuration.logSink
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    // ConfigurationFile refuses a file that is not UTF-8 before the parser sees it.
    guard let text = String(validating: bytes(start, count), as: UTF8.self) else { return 0 }
    let configuration: Configuration
    do {
        configuration = try Configuration.parse(yaml: text, file: "fuzz.yaml")
    } catch {
        invariant(error.file == "fuzz.yaml" && error.description.hasPrefix("fuzz.yaml"), "an error that does not name the file: \(error)")
        invariant(!error.message.isEmpty, "an error without a message: \(error)")
        invariant(!error.description.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "an error of more than one line: \(error)")
        return 0
    }
    let dump = configuration.yaml(plugins: [:])
    do {
        let again = try Configuration.parse(yaml: dump, file: "dump.yaml")
        invariant(Meaning(again) == Meaning(configuration), "a configuration read back from its dump differs:\n\(dump)")
    } catch {
        invariant(false, "a configuration's dump is refused: \(error)\n\(dump)")
    }
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzConfig_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzConfig(data, size) }
}
