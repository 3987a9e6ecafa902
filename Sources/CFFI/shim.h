// libffi for Swift. Swift 6 refuses libffi's mutable type globals (`ffi_type_sint32`...) as not
// concurrency-safe, so they are reached through these accessors.
#include <ffi.h>

static inline ffi_type *cynic_ffi_type_void(void) { return &ffi_type_void; }
static inline ffi_type *cynic_ffi_type_pointer(void) { return &ffi_type_pointer; }
static inline ffi_type *cynic_ffi_type_uint8(void) { return &ffi_type_uint8; }
static inline ffi_type *cynic_ffi_type_sint32(void) { return &ffi_type_sint32; }
static inline ffi_type *cynic_ffi_type_sint64(void) { return &ffi_type_sint64; }
static inline ffi_type *cynic_ffi_type_uint32(void) { return &ffi_type_uint32; }
static inline ffi_type *cynic_ffi_type_uint64(void) { return &ffi_type_uint64; }
static inline ffi_type *cynic_ffi_type_double(void) { return &ffi_type_double; }

/* The size ffi_closure_alloc needs for one closure; the struct's trampoline is a union of
 * platform-defined size, which is not Swift's to lay out. */
static inline size_t cynic_ffi_closure_size(void) { return sizeof(ffi_closure); }
