// swift-tools-version:6.0
import PackageDescription

/// The behaviours cynic ships. Each is a plugin built like anyone else's: a dynamic library
/// exporting `cynic_plugin_entry`, found by the host beside its own executable.
let shippedPlugins: [(folder: String, target: String, swift: Bool)] = [
    ("reset", "PluginReset", false),
    ("random", "PluginRandom", false),
    ("noresponse", "PluginNoResponse", false),
    ("http-html", "PluginHTTPHTML", true),
    ("http-json", "PluginHTTPJSON", true),
    ("http-nobody", "PluginHTTPNoBody", true),
    ("http-slow", "PluginHTTPSlow", true),
    // The failure catalogue (docs/failures.md).
    ("empty", "PluginEmpty", false),
    ("accept-close", "PluginAcceptClose", false),
    ("truncated", "PluginTruncated", false),
    ("chunked-malformed", "PluginChunkedMalformed", false),
    ("garbage-http", "PluginGarbageHTTP", false),
    ("zero-window", "PluginZeroWindow", false),
    ("never-accept", "PluginNeverAccept", false),
    ("huge", "PluginHuge", true),
    ("mislabelled", "PluginMislabelled", true),
    ("status", "PluginStatus", true),
    ("redirect-loop", "PluginRedirectLoop", true),
    ("keepalive-race", "PluginKeepaliveRace", true),
    ("drip", "PluginDrip", true),
    // TLS handshake faults: raw behaviours that read the ClientHello themselves (no TLS library).
    ("tls-hang", "PluginTLSHang", false),
    ("tls-alert", "PluginTLSAlert", false),
    ("tls-plaintext", "PluginTLSPlaintext", false),
    ("tls-reset", "PluginTLSReset", false),
    ("tls-truncated", "PluginTLSTruncated", false),
    // In front of a real server (cynic.connect/1): no default port, they need an upstream.
    ("proxy", "PluginProxy", false),
    ("http-proxy", "PluginHTTPProxy", true),
    // Shapers: they apply to any service.
    ("latency", "PluginLatency", false),
    ("bandwidth", "PluginBandwidth", false),
    ("slicer", "PluginSlicer", false),
    ("limit", "PluginLimit", false),
    ("reset-after", "PluginResetAfter", false),
    ("slow-close", "PluginSlowClose", false),
    ("timeout", "PluginTimeout", false),
]

/// C targets a shipped C plugin links in besides the ABI header: static, so each plugin's library
/// holds its own copy and depends on nothing but libc.
let pluginLinks: [String: [Target.Dependency]] = [
    "PluginTLSHang": ["TLSClientHello"], "PluginTLSAlert": ["TLSClientHello"],
    "PluginTLSPlaintext": ["TLSClientHello"], "PluginTLSReset": ["TLSClientHello"],
    "PluginTLSTruncated": ["TLSClientHello"],
]

let strictSwift: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "cynic",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cynic", targets: ["cynic"]),
        .library(name: "CynicPluginKit", targets: ["CynicPluginKit"]),
        // For fuzz/ only: its harnesses are another package, and drive these modules' own
        // decoders (with @testable import); nothing is built for them here.
        .library(name: "CynicLogSink", targets: ["CynicLogSink"]),
        .library(name: "CynicConfig", targets: ["CynicConfig"]),
        .library(name: "CynicControl", targets: ["CynicControl"]),
        .library(name: "CynicRuntime", targets: ["CynicRuntime"]),
    ] + shippedPlugins.map {
        .library(name: "cynic-plugin-\($0.folder)", type: .dynamic, targets: [$0.target])
    },
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),  // 2.101.3: the decoder's header limits
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // The control API (CynicControl) and its metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // TLS: the host terminates it for any service (CynicTLS), with a local CA it mints.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // The public ABI header, as a C module for the Swift side.
        .target(name: "CCynicPlugin", path: "include", publicHeadersPath: "."),
        // libffi, Debian's libffi-dev: the host calls a plugin's typed configure function with it.
        .systemLibrary(name: "CFFI", path: "Sources/CFFI", pkgConfig: "libffi",
                       providers: [.apt(["libffi-dev"])]),

        // The folder private to the current user: the log socket and plugin copies live there.
        .target(name: "CynicPrivateFolder", swiftSettings: strictSwift),
        .target(name: "CynicPlugins",
                dependencies: ["CCynicPlugin", "CFFI", "CynicPrivateFolder", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strictSwift),
        // TLS for services: the local CA, the certificate profiles, the chains minted from them
        // and the NIOSSL contexts that present them.
        .target(name: "CynicTLS",
                dependencies: ["CynicConfig", "CynicPrivateFolder",
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "X509", package: "swift-certificates"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "_CryptoExtras", package: "swift-crypto"),
                               .product(name: "SwiftASN1", package: "swift-asn1")],
                swiftSettings: strictSwift),
        // Linux calls `--isolate` needs that Swift cannot make itself: SCM_RIGHTS, memfd, gettid,
        // PR_SET_PDEATHSIG, a crash-signal handler, atomics on shared memory.
        .target(name: "CIsolation", path: "Sources/CIsolation", publicHeadersPath: "include"),
        .target(name: "CynicRuntime",
                dependencies: ["CynicPlugins", "CynicConfig", "CynicTLS", "CCynicPlugin", "CFFI", "CIsolation",
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "NIOTLS", package: "swift-nio"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "DequeModule", package: "swift-collections"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strictSwift),
        // The control API: cynic's own resources and toxiproxy's, over HTTP/JSON (Hummingbird).
        .target(name: "CynicControl",
                dependencies: ["CynicRuntime", "CynicConfig", "CynicPlugins", "CynicTLS",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                resources: [.embedInCode("openapi.yaml")],
                swiftSettings: strictSwift),
        // `--isolate`: the supervisor that keeps the listeners and restarts a crashed worker, and
        // the worker's side of their link.
        .target(name: "CynicIsolation",
                dependencies: ["CynicRuntime", "CynicConfig", "CIsolation",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strictSwift),
        // The control API's client, for `cynic ctl`: HTTP/1.1 with NIO's codec, the API's JSON as types.
        .target(name: "CynicControlClient",
                dependencies: ["CynicConfig",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
                swiftSettings: strictSwift),
        .target(name: "CynicConfig",
                dependencies: ["CynicPlugins", .product(name: "Yams", package: "Yams")],
                swiftSettings: strictSwift),
        .target(name: "CynicLogSink",
                dependencies: ["CynicPrivateFolder", .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strictSwift),
        .executableTarget(name: "cynic",
                          dependencies: ["CynicPlugins", "CynicRuntime", "CynicConfig", "CynicLogSink", "CynicControl", "CynicControlClient",
                                         "CynicIsolation",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "NIOCore", package: "swift-nio"),
                                         .product(name: "NIOPosix", package: "swift-nio")],
                          swiftSettings: strictSwift),

        // The TLS fault plugins' ClientHello reader and the connection side they share.
        .target(name: "TLSClientHello", dependencies: ["CCynicPlugin"], path: "plugins/tls-client-hello",
                publicHeadersPath: "."),
        // The kit Swift plugins build on: it fills the same C descriptor; no Swift type crosses.
        .target(name: "CynicPluginKit", dependencies: ["CCynicPlugin"], swiftSettings: strictSwift),

        .target(name: "CynicTestSupport",
                dependencies: ["CynicPlugins", "CynicRuntime"],
                path: "Tests/CynicTestSupport"),
        .testTarget(name: "CynicPluginsTests",
                    dependencies: ["CynicPlugins", "CynicConfig", "CynicRuntime", "CynicTestSupport"]),
        .testTarget(name: "CynicIsolationTests",
                    dependencies: ["CynicIsolation", "CynicRuntime", "CynicTestSupport"]),
        .testTarget(name: "CynicRuntimeTests",
                    dependencies: ["CynicRuntime", "CynicPlugins", "CynicTLS", "CynicTestSupport", "TLSClientHello",
                                   .product(name: "NIOEmbedded", package: "swift-nio"),
                                   .product(name: "NIOHTTP1", package: "swift-nio")]),
        .testTarget(name: "CynicPrivateFolderTests", dependencies: ["CynicPrivateFolder", "CynicTestSupport"]),
        .testTarget(name: "CynicConfigTests", dependencies: ["CynicConfig", "CynicTestSupport"]),
        .testTarget(name: "CynicTLSTests",
                    dependencies: ["CynicTLS", "CynicConfig", "CynicTestSupport",
                                   .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                   .product(name: "X509", package: "swift-certificates"),
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "NIOTLS", package: "swift-nio")]),
        .testTarget(name: "CynicLogSinkTests",
                    dependencies: ["CynicLogSink", "CynicTestSupport",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                   .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CynicPluginKitTests", dependencies: ["CynicPluginKit"]),
        .testTarget(name: "CynicControlTests",
                    dependencies: ["CynicControl", "CynicRuntime", "CynicConfig", "CynicPlugins", "CynicTestSupport"]),
        .testTarget(name: "CynicCLITests",
                    dependencies: ["CynicPlugins", "CynicRuntime", "CynicControlClient", "CynicTestSupport"]),
        // The test support itself: the real servers tests start (Redis, PostgreSQL, http.server).
        .testTarget(name: "CynicTestSupportTests", dependencies: ["CynicTestSupport"]),
    ] + shippedPlugins.map { plugin in
        plugin.swift
            ? .target(name: plugin.target, dependencies: ["CynicPluginKit", "CCynicPlugin"],
                      path: "plugins/\(plugin.folder)", swiftSettings: strictSwift)
            : .target(name: plugin.target,
                      dependencies: ["CCynicPlugin"] + pluginLinks[plugin.target, default: []],
                      path: "plugins/\(plugin.folder)",
                      publicHeadersPath: ".")
    }
)
