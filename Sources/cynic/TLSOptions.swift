import ArgumentParser
import CynicConfig

extension TLSVersion: ExpressibleByArgument {}

/// Where the local CA lives: shared by `cynic` (run), `cynic serve` and `cynic tls`.
struct CAOptions: ParsableArguments {
    @Option(name: .customLong("ca-dir"), help: ArgumentHelp(
        "The folder of the local CA (ca.pem, ca-key.pem; made at first use, or your own). "
            + "Default: $CYNIC_CA_DIR, else `ca` in cynic's private folder.",
        valueName: "DIR"))
    var folder: String?

    /// The folder given, or the environment's; nil: the default.
    var resolvedFolder: String? {
        folder ?? environmentValue("CYNIC_CA_DIR")
    }
}

/// How `cynic serve` makes its service speak TLS (docs/failures.md, "TLS").
struct TLSServiceOptions: ParsableArguments {
    @Option(name: .customLong("tls"), help: ArgumentHelp(
        "Serve over TLS with this certificate profile (see `cynic tls profiles`): valid, expired, wrong-host, ...",
        valueName: "PROFILE"))
    var profile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp(
        "Serve over TLS with your own certificate chain (PEM, leaf first) instead of a profile; needs --tls-key.",
        valueName: "FILE"))
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "FILE"))
    var key: String?

    @Option(name: .customLong("tls-alpn"), help: ArgumentHelp(
        "The protocols offered in ALPN, in order of preference.", valueName: "PROTOCOL,..."))
    var alpn: String?

    @Option(name: .customLong("tls-min-version"), help: ArgumentHelp("The lowest TLS version spoken.", valueName: "1.0|1.1|1.2|1.3"))
    var minimumVersion: TLSVersion?

    @Option(name: .customLong("tls-max-version"), help: ArgumentHelp("The highest TLS version spoken.", valueName: "1.0|1.1|1.2|1.3"))
    var maximumVersion: TLSVersion?

    @Option(name: .customLong("tls-name"), help: ArgumentHelp(
        "A name (DNS or IP) the minted certificate is for, instead of the profile's; repeatable.", valueName: "NAME"))
    var names: [String] = []

    func validate() throws {
        if (certificate == nil) != (key == nil) {
            throw ValidationError(certificate == nil ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key")
        }
        if profile != nil, certificate != nil { throw ValidationError("give either --tls PROFILE or --tls-cert and --tls-key, not both") }
        if let alpn, alpn.split(separator: ",", omittingEmptySubsequences: false).contains(where: { $0.isEmpty }) {
            throw ValidationError("--tls-alpn \(alpn): expected protocol names separated by commas, as h2,http/1.1")
        }
        if let low = minimumVersion, let high = maximumVersion, low > high {
            throw ValidationError("--tls-min-version \(low.rawValue) is above --tls-max-version \(high.rawValue)")
        }
        if let problem = spec?.problem {
            let flag = ["alpn": "--tls-alpn", "names": "--tls-name", "min_version": "--tls-min-version"]
                .first { problem.field.hasPrefix($0.key) }?.value ?? "--tls"
            throw ValidationError("\(flag): \(problem.reason)")
        }
    }

    /// The service's TLS, when any of the options asks for it; nil for plain TCP.
    var spec: TLSSpec? {
        guard profile != nil || certificate != nil || alpn != nil || minimumVersion != nil || maximumVersion != nil
                || !names.isEmpty else { return nil }
        return TLSSpec(profile: profile ?? TLSSpec.defaultProfile, certificateFile: certificate, keyFile: key,
                       alpn: alpn.map { $0.split(separator: ",").map(String.init) } ?? [],
                       minimumVersion: minimumVersion, maximumVersion: maximumVersion, names: names.isEmpty ? nil : names)
    }
}
