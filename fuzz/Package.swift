// swift-tools-version:6.0
import PackageDescription

/// The fuzz harnesses: a package of their own beside cynic's, so the fuzzer's build (sanitizers,
/// `-parse-as-library`, libFuzzer's `main`) never touches cynic's build or `swift test`.
/// Each harness is an executable exporting `LLVMFuzzerTestOneInput` that drives the decoder the
/// host uses, from cynic's own modules (`@testable import`: the decoders are internal).
/// Build and run them with `scripts/fuzz.sh`; see fuzz/README.md.
let harnesses: [(name: String, module: String)] = [
    ("FuzzLogFrames", "CynicLogSink"),
    ("FuzzLogJSON", "CynicLogSink"),
    ("FuzzLogPickle", "CynicLogSink"),
    ("FuzzConfig", "CynicConfig"),
    ("FuzzControlBody", "CynicControl"),
    ("FuzzHTTPRequest", "CynicRuntime"),
]

let package = Package(
    name: "cynic-fuzz",
    products: harnesses.map { .executable(name: $0.name, targets: [$0.name]) },
    dependencies: [
        .package(name: "cynic", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // What every harness shares: how a broken invariant is reported, and libFuzzer's driver.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
    ] + harnesses.map { harness in
        .executableTarget(name: harness.name,
                          dependencies: ["FuzzSupport", .product(name: harness.module, package: "cynic"),
                                         .product(name: "NIOCore", package: "swift-nio"),
                                         .product(name: "NIOEmbedded", package: "swift-nio"),
                                         .product(name: "NIOHTTP1", package: "swift-nio")])
    }
)
