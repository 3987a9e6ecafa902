// swift-tools-version:5.9
import PackageDescription
let package = Package(
    name: "nio-idle",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0")],
    targets: [.executableTarget(name: "nio-idle", dependencies: [.product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio")])]
)
