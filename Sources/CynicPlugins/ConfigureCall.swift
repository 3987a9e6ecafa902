import CCynicPlugin
import CFFI
#if canImport(Glibc)
import Glibc
#endif

/// Calls a plugin's typed configure function — `const char *configure(void *instance, T1, ...)` —
/// with converted values as ordinary C arguments, through libffi.
///
/// The call interface is prepared once per plugin from its declared parameter types; the values
/// were checked against those types before, so a call never passes a value of the wrong type.
final class ConfigureCall: @unchecked Sendable {
    // @unchecked: the cif and its type array are written once in init and only read by ffi_call,
    // which does not modify them; calls happen on the control thread.

    private let function: cynic_any_fn
    private let parameterTypes: [ParameterType]
    private let cif: UnsafeMutablePointer<ffi_cif>
    private let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>

    init(function: @escaping cynic_any_fn, parameterTypes: [ParameterType]) {
        self.function = function
        self.parameterTypes = parameterTypes
        argumentTypes = .allocate(capacity: parameterTypes.count + 1)
        argumentTypes[0] = cynic_ffi_type_pointer()
        for (index, type) in parameterTypes.enumerated() {
            argumentTypes[index + 1] = Self.ffiType(type)
        }
        cif = .allocate(capacity: 1)
        let status = ffi_prep_cif(cif, FFI_DEFAULT_ABI, UInt32(parameterTypes.count + 1),
                                  cynic_ffi_type_pointer(), argumentTypes)
        // Only a bad ABI or type description fails, and both are fixed above.
        precondition(status == FFI_OK, "ffi_prep_cif failed with \(status)")
    }

    deinit {
        cif.deallocate()
        argumentTypes.deallocate()
    }

    /// Calls configure; returns the plugin's refusal message, or nil when it accepted.
    func callAsFunction(instance: UnsafeMutableRawPointer?, values: [ParameterValue]) -> String? {
        precondition(values.count == parameterTypes.count, "values must have been resolved against the parameters")
        // Every argument lives in its own 8-byte-aligned slot; libffi reads each through a pointer.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: 8 * (values.count + 1), alignment: 8)
        let argumentPointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: values.count + 1)
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer {
            strings.forEach { free($0) }
            argumentPointers.deallocate()
            slots.deallocate()
        }
        slots.storeBytes(of: instance, as: UnsafeMutableRawPointer?.self)
        argumentPointers[0] = slots
        for (index, value) in values.enumerated() {
            let slot = slots + 8 * (index + 1)
            switch value {
            case .bool(let v): slot.storeBytes(of: v ? 1 : 0, as: UInt8.self)
            case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
            case .int64(let v): slot.storeBytes(of: v, as: Int64.self)
            case .uint32(let v): slot.storeBytes(of: v, as: UInt32.self)
            case .uint64(let v): slot.storeBytes(of: v, as: UInt64.self)
            case .double(let v): slot.storeBytes(of: v, as: Double.self)
            case .string(let v):
                let copy = v.map { strdup($0)! }
                if let copy { strings.append(copy) }
                slot.storeBytes(of: copy.map { UnsafePointer($0) }, as: UnsafePointer<CChar>?.self)
            }
            argumentPointers[index + 1] = slot
        }
        var result: UnsafePointer<CChar>? = nil
        ffi_call(cif, function, &result, argumentPointers)
        return result.map { PluginText.printable($0, limit: PluginText.messageLimit) }
    }

    private static func ffiType(_ type: ParameterType) -> UnsafeMutablePointer<ffi_type> {
        switch type {
        case .bool: cynic_ffi_type_uint8()
        case .int32: cynic_ffi_type_sint32()
        case .int64: cynic_ffi_type_sint64()
        case .uint32: cynic_ffi_type_uint32()
        case .uint64: cynic_ffi_type_uint64()
        case .double: cynic_ffi_type_double()
        case .string: cynic_ffi_type_pointer()
        }
    }
}
