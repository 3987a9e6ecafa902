import CynicConfig
import Logging

/// Under `--isolate`, what the control API changed survives a worker's crash: the worker tells
/// the supervisor its wanted services after each change, and the next worker, once started from
/// the configuration, applies that list as the API would have — one change, checked and bound
/// before anything moves, the listeners the supervisor kept taken over by name.
extension Server {
    /// The services wanted now: every one running and every one held back, in order, as a
    /// configuration (`Configuration.parse` reads it back), with those turned off.
    public func wantedServices() -> (yaml: String, disabled: [String]) {
        let specs = runningServices.map(\.spec) + heldBack
        return (Configuration(services: specs, logSink: .disabled).yaml(plugins: [:]), disabled.keys.sorted())
    }

    /// Applies what `wantedServices()` said in a worker that crashed. A list that no longer
    /// applies (a plugin gone since) is one line, and the services stay as configured.
    public func restoreServices(yaml: String, disabled names: [String]) async {
        let configuration: Configuration
        do {
            configuration = try Configuration.parse(yaml: yaml, file: "the services before the worker's crash")
        } catch {
            logger.error("cannot restore the services the control API changed: \(error)")
            return
        }
        let wanted = holdingBackQuarantined(configuration.services)
        let failures: [String]? = await serializedChange {
            do {
                return try await apply(wanted)
            } catch {
                logger.error("cannot restore the services the control API changed: \(error); the configuration's serve instead")
                return nil
            }
        }
        for failure in failures ?? [] { logger.error("\(failure)") }
        for name in names where services[name] != nil {
            _ = try? await changeService(name, enabled: false)
        }
    }
}
