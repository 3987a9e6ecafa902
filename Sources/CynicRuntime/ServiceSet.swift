import CynicConfig
import CynicPlugins
import Logging
import NIOCore

/// The services of one configuration, started together: if one cannot start, those already
/// started are stopped and the error says which and why.
public final class ServiceSet: Sendable {
    public let services: [Service]

    public static func start(_ specs: [ServiceSpec], plugins: PluginCatalog, group: any EventLoopGroup,
                             logger: Logger) async throws(ServiceError) -> ServiceSet {
        var started: [Service] = []
        for spec in specs {
            do {
                started.append(try await Service.start(spec, plugins: plugins, group: group, logger: logger))
            } catch {
                for service in started { await service.stop() }
                throw error
            }
        }
        return ServiceSet(services: started)
    }

    private init(services: [Service]) {
        self.services = services
    }

    public func stop() async {
        for service in services { await service.stop() }
    }
}
