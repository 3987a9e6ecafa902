import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a new C plugin's build finds `<cynic/plugin.h>`.
enum PluginHeader: Equatable {
    /// `pkg-config --cflags cynic-plugin`: the cynic-plugin.pc an install writes. The build then
    /// names no path of this machine: it builds wherever cynic is installed.
    case pkgConfig(includeFolder: String)
    /// `-I FOLDER`, and why that folder: beside the running cynic, or its checkout.
    case folder(String, origin: String)
}

/// Where a new Swift plugin's package finds CynicPluginKit: a package folder with the kit and the
/// header it wraps, and why that one.
struct PluginKit: Equatable {
    let folder: String
    let origin: String
}

/// What a new plugin builds against, for the cynic that is running: an installed one
/// (`PREFIX/bin/cynic`, laid out by scripts/install.sh) has the header and the kit under its
/// prefix; one run from a build folder has the checkout it was built from.
struct PluginBuildInputs {
    /// PREFIX, when this cynic runs as `PREFIX/bin/cynic` (links resolved).
    let prefix: String?
    /// The checkout this cynic was built from, from this file's path at build time: on another
    /// machine, or once moved, it is not there.
    let checkout: String

    static func forThisCynic() -> PluginBuildInputs {
        var prefix: String?
        if let executable = realpath("/proc/self/exe", nil) {
            let folder = (String(cString: executable) as NSString).deletingLastPathComponent
            free(executable)
            if folder.hasSuffix("/bin") { prefix = String(folder.dropLast(4)) }
        }
        // #filePath is <checkout>/Sources/cynic/PluginBuildInputs.swift.
        var checkout = #filePath
        for _ in 0..<3 { checkout = (checkout as NSString).deletingLastPathComponent }
        return PluginBuildInputs(prefix: prefix, checkout: checkout)
    }

    /// pkg-config's cynic-plugin first (a build.sh that names no path of this machine), then the
    /// header beside this cynic (PREFIX/include), then the checkout's.
    func header() throws(CynicError) -> PluginHeader {
        if let folder = Self.pkgConfigIncludeFolder(), Self.hasHeader(folder) {
            return .pkgConfig(includeFolder: folder)
        }
        var looked = ["pkg-config knows no cynic-plugin"]
        if let prefix {
            if Self.hasHeader(prefix + "/include") { return .folder(prefix + "/include", origin: "beside this cynic") }
            looked.append("\(prefix)/include has no cynic/plugin.h")
        }
        if Self.hasHeader(checkout + "/include") {
            return .folder(checkout + "/include", origin: "in the checkout this cynic was built from")
        }
        looked.append("\(checkout)/include has no cynic/plugin.h")
        throw CynicError("cannot find cynic's plugin header <cynic/plugin.h>: \(looked.joined(separator: "; ")) "
                         + "(install cynic with scripts/install.sh, or set PKG_CONFIG_PATH to the folder of its cynic-plugin.pc)")
    }

    /// The kit installed beside this cynic (PREFIX/share/cynic/plugin-kit), else the checkout.
    func kit() throws(CynicError) -> PluginKit {
        var looked: [String] = []
        if let prefix {
            let installed = prefix + "/share/cynic/plugin-kit"
            if Self.isPackage(installed) { return PluginKit(folder: installed, origin: "installed with cynic") }
            looked.append(installed)
        }
        if Self.isPackage(checkout) { return PluginKit(folder: checkout, origin: "the checkout this cynic was built from") }
        looked.append(checkout)
        throw CynicError("cannot find CynicPluginKit: no package in \(looked.joined(separator: " or ")) "
                         + "(scripts/install.sh installs it in PREFIX/share/cynic/plugin-kit)")
    }

    private static func hasHeader(_ includeFolder: String) -> Bool {
        FileManager.default.isReadableFile(atPath: includeFolder + "/cynic/plugin.h")
    }

    private static func isPackage(_ folder: String) -> Bool {
        FileManager.default.isReadableFile(atPath: folder + "/Package.swift")
            && FileManager.default.fileExists(atPath: folder + "/Sources/CynicPluginKit")
    }

    /// `pkg-config --variable=includedir cynic-plugin`, or nil when pkg-config is missing or
    /// knows no cynic-plugin (PKG_CONFIG_PATH as the user has it).
    private static func pkgConfigIncludeFolder() -> String? {
        guard let pipe = popen("pkg-config --variable=includedir cynic-plugin 2>/dev/null", "r") else { return nil }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while output.count < 1 << 16 {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count == 0 { break }
            output += buffer[..<count]
        }
        guard pclose(pipe) == 0 else { return nil }
        let folder = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return folder.isEmpty ? nil : folder
    }
}
