// swift-tools-version:6.0
// cynic's plugin kit, as scripts/install.sh installs it in PREFIX/share/cynic/plugin-kit: the
// package a Swift plugin depends on instead of cynic's whole source tree. It holds CynicPluginKit
// (Sources/CynicPluginKit, copied from cynic's) and the ABI header it wraps (include/cynic/plugin.h),
// and depends on nothing, so a plugin builds offline on a machine without cynic's sources.
import PackageDescription

let package = Package(
    name: "cynic",
    platforms: [.macOS(.v13)],
    products: [.library(name: "CynicPluginKit", targets: ["CynicPluginKit"])],
    targets: [
        .target(name: "CCynicPlugin", path: "include", publicHeadersPath: "."),
        .target(name: "CynicPluginKit", dependencies: ["CCynicPlugin"],
                swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
    ]
)
