import CCynicPlugin

/// One service's instance of a plugin: created, configured with its parameters, destroyed once
/// no connection of it remains.
public final class BehaviourInstance: @unchecked Sendable {
    // @unchecked: `pointer` is the plugin's, written once in init; the plugin promises an
    // instance is read-only once configured (see the header), so connections on any thread may
    // use it concurrently.

    public let plugin: Plugin
    public let values: [ParameterValue]
    /// What `create` returned: passed to conn_open.
    public let pointer: UnsafeMutableRawPointer?

    /// Creates and configures an instance. `values` come from `plugin.parameters.resolve(...)`.
    /// Throws the plugin's own refusal message when configure rejects the values.
    public init(plugin: Plugin, values: [ParameterValue], host: UnsafePointer<cynic_host>) throws(ParameterError) {
        self.plugin = plugin
        self.values = values
        pointer = plugin.descriptor.create?(host)
        if pointer == nil, plugin.descriptor.destroy != nil {
            throw ParameterError(origin: nil, message: "behaviour '\(plugin.name)' could not create an instance (create returned NULL)")
        }
        if let configure = plugin.configureCall,
           let refusal = configure(instance: pointer, values: values) {
            // deinit destroys the instance: a class whose init throws after setting every
            // property is deinitialised.
            throw ParameterError(origin: nil, message: "behaviour '\(plugin.name)' refused its parameters: \(refusal)")
        }
    }

    deinit {
        // A NULL instance was never made (or needs no destroy): nothing to free.
        if let pointer { plugin.descriptor.destroy?(pointer) }
    }
}
