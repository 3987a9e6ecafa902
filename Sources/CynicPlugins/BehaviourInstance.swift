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
    /// How this instance's service listens: the plugin's "cynic.listen/1" answer, as its
    /// "cynic.listen-instance/1" function changes it for these parameters; nil when it says
    /// neither (the host's defaults).
    public let listen: cynic_listen?

    /// Creates and configures an instance. `values` come from `plugin.parameters.resolve(...)`.
    /// Throws the plugin's own refusal message when configure rejects the values.
    public init(plugin: Plugin, values: [ParameterValue], host: UnsafePointer<cynic_host>) throws(ParameterError) {
        self.plugin = plugin
        self.values = values
        pointer = plugin.descriptor.create?(host)
        if pointer == nil, plugin.descriptor.destroy != nil {
            throw ParameterError(origin: nil, message: "behaviour '\(plugin.name)' could not create an instance (create returned NULL)")
        }
        let created = pointer
        let refusal = plugin.configureCall.flatMap { configure in configure(instance: created, values: values) }
        listen = refusal == nil ? Self.listen(of: plugin, instance: created) : nil
        if let refusal {
            // deinit destroys the instance: a class whose init throws after setting every
            // property is deinitialised.
            throw ParameterError(origin: nil, message: "behaviour '\(plugin.name)' refused its parameters: \(refusal)")
        }
    }

    private static func listen(of plugin: Plugin, instance: UnsafeMutableRawPointer?) -> cynic_listen? {
        guard let forInstance = plugin.listenForInstance?.listen else { return plugin.listen }
        var listen = plugin.listen ?? cynic_listen()
        listen.abi_version = CYNIC_ABI_VERSION
        listen.struct_size = UInt32(MemoryLayout<cynic_listen>.size)
        forInstance(instance.map { UnsafeRawPointer($0) }, &listen)
        return listen
    }

    deinit {
        // A NULL instance was never made (or needs no destroy): nothing to free.
        if let pointer { plugin.descriptor.destroy?(pointer) }
    }
}
