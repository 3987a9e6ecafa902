/// cynic's own version: the one place it is written (`cynic --version`, the control API).
public enum CynicVersion {
    public static let current = "0.10.0"
}
