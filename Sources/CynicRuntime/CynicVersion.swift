import CynicPlugins

/// cynic's own version: the one place it is written (`cynic --version`, `cynic plugins`, the
/// control API), with the plugin ABI beside it.
public enum CynicVersion {
    public static let current = "0.10.0"

    /// The plugin ABI this cynic is built with (`CYNIC_ABI_VERSION` of its header).
    public static var pluginABI: UInt32 { Plugin.supportedABI.upperBound }

    /// "cynic 0.10.0 (plugin ABI 1)", and which older ABIs it still loads once there are any.
    public static var line: String {
        let supported = Plugin.supportedABI
        let older = supported.count > 1 ? "; loads ABI \(supported.lowerBound) to \(supported.upperBound)" : ""
        return "cynic \(current) (plugin ABI \(pluginABI)\(older))"
    }
}
