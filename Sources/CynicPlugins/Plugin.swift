import CCynicPlugin
#if canImport(Glibc)
import Glibc
#endif

/// A loaded, validated plugin: a behaviour cynic can serve.
///
/// Everything the host needs from the descriptor is read and checked once, at load time, so an
/// incompatible plugin is refused then and never at its first call.
public final class Plugin: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the descriptor copy holds C
    // function pointers and strings that live as long as the mapped image, which is never unmapped.

    public static let entrySymbol = CYNIC_ENTRY_SYMBOL
    /// The ABI versions this host loads.
    public static let supportedABI: ClosedRange<UInt32> = 1...CYNIC_ABI_VERSION

    public let name: String
    public let summary: String
    public let defaultPort: UInt16?
    public let speaksHTTP1: Bool
    public let parameters: [ParameterSpec]
    public let abiVersion: UInt32
    /// The file it was loaded from.
    public let file: String
    /// Identifies this version of the file: a hash of its content, when it was loaded from a
    /// private copy (see `PluginCopies`).
    public let version: String?
    /// Images that link the Swift runtime stay mapped until the process exits: they register
    /// with it when loaded (any library swiftc links does, C code or not), and unmapping them
    /// crashes the runtime later. Any other image is closed once nothing uses it.
    public let staysMapped: Bool
    private let handle: UnsafeMutableRawPointer
    /// Identifies the mapped image. Loading the same content again while it is mapped gives the
    /// image already there (dlopen matches the copy's content-addressed path), so two `Plugin`s
    /// can share one image — and its static variables.
    public var imageID: UInt { UInt(bitPattern: handle) }
    /// The descriptor, copied into a host-sized struct whose fields the plugin's older, smaller
    /// struct does not have are zero.
    public let descriptor: cynic_plugin
    /// What a shaper plugin does to the actions passing through it (capability
    /// "cynic.shaper/1"); nil for a behaviour.
    public let shaper: cynic_shaper?
    /// How services of this behaviour listen (capability "cynic.listen/1"), when it says.
    public let listen: cynic_listen?
    /// How one configured instance's service listens (capability "cynic.listen-instance/1"),
    /// when the plugin says; see `BehaviourInstance.listen`.
    public let listenForInstance: cynic_listen_instance?
    public var isShaper: Bool { shaper != nil }
    let configureCall: ConfigureCall?
    /// Connections this generation of the plugin drives now, over all its services.
    public let connections = ConnectionCounter()

    /// Loads `file` with dlopen and validates its descriptor. With `copies`, the image loaded is
    /// a private copy of the file, so that a new version written over it later is a new load
    /// and overwriting the file can never touch mapped code. `supportedABI` is the versions this
    /// host loads; tests narrow it to play an older host.
    public static func load(file: String, copies: PluginCopies? = nil, trust: PluginTrust = .ownerOnly,
                            supportedABI: ClosedRange<UInt32> = Plugin.supportedABI) throws(PluginRefusal) -> Plugin {
        func refuse(_ reason: PluginError) -> PluginRefusal { PluginRefusal(file: file, reason: reason) }
        // Everything below works on these bytes, read from the one descriptor whose type and
        // permissions were checked: the copy dlopen maps holds exactly what was checked.
        let content: PluginFile
        do {
            content = try PluginFile.read(file, trust: trust)
        } catch {
            throw refuse(error)
        }
        let image: ELFImage
        do {
            image = try ELFImage(bytes: content.bytes, file: file)
            try image.checkLoadable()
        } catch {
            throw refuse(.notLoadable(error.reason))
        }
        let folder: PluginCopies
        do {
            folder = try copies ?? PluginCopies.forThisProcess()
        } catch {
            throw refuse(.notLoadable("cannot make a private copy: \(error)"))
        }
        return try folder.exclusively { () throws(PluginRefusal) -> Plugin in
            let copy: (path: String, version: String)
            do throws(PluginCopyError) {
                copy = try folder.copy(of: content)
            } catch {
                throw refuse(.notLoadable("cannot make a private copy: \(error.reason)"))
            }
            // Once mapped, the copy's name is no longer needed: nothing is left to clean up.
            defer { folder.remove(path: copy.path) }
            do throws(PluginError) {
                return try Plugin(file: file, image: copy.path, version: copy.version,
                                  staysMapped: image.linksSwiftRuntime, supportedABI: supportedABI)
            } catch {
                throw refuse(error)
            }
        }
    }

    private init(file: String, image: String, version: String, staysMapped: Bool,
                 supportedABI: ClosedRange<UInt32>) throws(PluginError) {
        // RTLD_NOW reports an undefined symbol here rather than at a first call.
        let flags = RTLD_NOW | RTLD_LOCAL | (staysMapped ? RTLD_NODELETE : 0)
        guard let handle = dlopen(image, flags) else {
            throw .notLoadable(Self.lastDLError(stripping: image))
        }
        // A refused C image is closed at once; one with Swift code stays (RTLD_NODELETE).
        var accepted = false
        defer { if !accepted { dlclose(handle) } }
        guard let symbol = dlsym(handle, Self.entrySymbol) else { throw .noEntrySymbol }
        let entry = unsafeBitCast(symbol, to: cynic_plugin_entry_fn.self)
        guard let raw = entry() else { throw .nullDescriptor }

        // abi_version and struct_size are the first two fields of every version: safe to read.
        let abiVersion = raw.pointee.abi_version
        guard supportedABI.contains(abiVersion) else {
            throw .unsupportedABI(found: abiVersion, supported: supportedABI)
        }
        let declaredSize = Int(raw.pointee.struct_size)
        let requiredSize = MemoryLayout<cynic_plugin>.offset(of: \cynic_plugin.conn_open)!
            + MemoryLayout<UnsafeRawPointer>.size
        guard declaredSize >= requiredSize else {
            throw .invalidDescriptor("struct_size \(declaredSize) is smaller than the \(requiredSize) bytes ABI \(abiVersion) requires")
        }
        var descriptor = cynic_plugin()
        withUnsafeMutableBytes(of: &descriptor) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(declaredSize, target.count)))
        }

        guard let namePointer = descriptor.name, case let (name, tooLong) = PluginText.read(namePointer, limit: PluginText.nameLimit),
              !name.isEmpty else {
            throw .invalidDescriptor("missing name")
        }
        guard !tooLong else {
            throw .invalidDescriptor("name '\(PluginText.printable(name))…' is longer than \(PluginText.nameLimit) bytes")
        }
        guard name.utf8.allSatisfy({ $0.isLowercaseLetterOrDigit || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
            throw .invalidDescriptor("name '\(PluginText.printable(name))' may only have lowercase letters, digits, '-' and '_'")
        }
        let shaper: cynic_shaper? = try Self.capability(CYNIC_SHAPER_ID, of: descriptor, name: name, supportedABI: supportedABI)
        let listen: cynic_listen? = try Self.capability(CYNIC_LISTEN_ID, of: descriptor, name: name, supportedABI: supportedABI)
        let listenForInstance: cynic_listen_instance? = try Self.capability(
            CYNIC_LISTEN_INSTANCE_ID, of: descriptor, name: name, supportedABI: supportedABI)
        guard shaper != nil || descriptor.conn_open != nil else {
            throw .invalidDescriptor("'\(name)' has no conn_open (and is not a shaper)")
        }
        let speaksHTTP1 = descriptor.flags & CYNIC_PLUGIN_HTTP1 != 0
        if speaksHTTP1, descriptor.conn_request == nil {
            throw .invalidDescriptor("'\(name)' speaks HTTP/1 but has no conn_request")
        }
        let parameters = try Self.readParameters(of: descriptor, behaviour: name)
        if !parameters.isEmpty, descriptor.configure == nil {
            throw .invalidDescriptor("'\(name)' declares \(parameters.count) parameter(s) but no configure function")
        }

        self.name = name
        self.shaper = shaper
        self.listen = listen
        self.listenForInstance = listenForInstance
        self.summary = descriptor.description.map { PluginText.printable($0, limit: PluginText.messageLimit) } ?? ""
        self.defaultPort = descriptor.default_port == 0 ? nil : descriptor.default_port
        self.speaksHTTP1 = speaksHTTP1
        self.parameters = parameters
        self.abiVersion = abiVersion
        self.file = file
        self.version = version
        self.staysMapped = staysMapped
        self.handle = handle
        accepted = true
        self.descriptor = descriptor
        self.configureCall = descriptor.configure.map { ConfigureCall(function: $0, parameterTypes: parameters.map(\.type)) }
    }

    /// Copies an optional capability struct the plugin returns for `id`: zero-filled past the
    /// plugin's `struct_size`, so an older plugin's smaller struct reads as "not set".
    private static func capability<Capability>(_ id: String, of descriptor: cynic_plugin, name: String,
                                               supportedABI: ClosedRange<UInt32>) throws(PluginError) -> Capability? {
        guard let lookup = descriptor.get_extension, let raw = lookup(id) else { return nil }
        let header = raw.assumingMemoryBound(to: UInt32.self)
        guard supportedABI.contains(header[0]) else {
            throw .invalidDescriptor("'\(name)' \(id) has ABI version \(header[0])")
        }
        let declared = Int(header[1])
        guard declared >= 8 else { throw .invalidDescriptor("'\(name)' \(id) has struct_size \(declared)") }
        let result = UnsafeMutablePointer<Capability>.allocate(capacity: 1)
        defer { result.deallocate() }
        let bytes = UnsafeMutableRawPointer(result)
        bytes.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Capability>.size)
        bytes.copyMemory(from: raw, byteCount: min(declared, MemoryLayout<Capability>.size))
        return result.pointee
    }

    deinit {
        // No instance and no connection holds this generation any more; its code can go (a
        // no-op under RTLD_NODELETE).
        dlclose(handle)
    }

    private static func readParameters(of descriptor: cynic_plugin, behaviour: String) throws(PluginError) -> [ParameterSpec] {
        let count = Int(descriptor.param_count)
        guard count > 0 else { return [] }
        guard count <= 64 else { throw .invalidDescriptor("'\(behaviour)' declares \(count) parameters; at most 64 are allowed") }
        guard let params = descriptor.params else {
            throw .invalidDescriptor("'\(behaviour)' has param_count \(count) but params is NULL")
        }
        var specs: [ParameterSpec] = []
        for index in 0..<count {
            let param = params[index]
            guard let namePointer = param.name, case let (name, tooLong) = PluginText.read(namePointer, limit: PluginText.nameLimit),
                  !name.isEmpty, !tooLong, name.utf8.allSatisfy({ $0.isLowercaseLetterOrDigit || $0 == UInt8(ascii: "_") }) else {
                throw .invalidDescriptor("'\(behaviour)' parameter \(index) needs a name of lowercase letters, digits and '_', at most \(PluginText.nameLimit) bytes")
            }
            guard !specs.contains(where: { $0.name == name }) else {
                throw .invalidDescriptor("'\(behaviour)' declares parameter '\(name)' twice")
            }
            guard let type = ParameterType(param.type) else {
                throw .invalidDescriptor("'\(behaviour)' parameter '\(name)' has unknown type \(param.type)")
            }
            specs.append(try ParameterSpec(name: name, type: type,
                                           defaultText: try param.default_value.map { (value) throws(PluginError) -> String in
                                               let (text, tooLong) = PluginText.read(value, limit: PluginText.defaultValueLimit)
                                               guard !tooLong else {
                                                   throw .invalidDescriptor("'\(behaviour)' parameter '\(name)' has a default longer than \(PluginText.defaultValueLimit) bytes")
                                               }
                                               return text
                                           },
                                           doc: param.doc.map { PluginText.printable($0, limit: PluginText.messageLimit) } ?? ""))
        }
        return specs
    }

    private static func lastDLError(stripping file: String) -> String {
        guard let message = dlerror() else { return "unknown dlopen error" }
        let text = String(cString: message)
        // dlerror repeats the path; the refusal names the file already.
        let prefix = file + ": "
        return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
    }
}

extension UInt8 {
    var isLowercaseLetterOrDigit: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
