import CLibFuzzer

/// Runs libFuzzer with the command line, calling `test` with each input.
///
/// SwiftPM links an executable with `main` defined as `<Target>_main` (so that tests could import
/// it), which leaves no room for libFuzzer's own `main`: each harness defines `<Target>_main`
/// and hands over to libFuzzer here, as a program with its own main does.
public func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, test)
}
