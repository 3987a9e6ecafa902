//! hello-rust — a cynic behaviour in Rust, with no crates: sends `greeting`, then closes.
//!
//!     rustc --crate-type cdylib -O -o libhello_rust.so hello.rs
//!
//! A plugin is a shared object exporting `cynic_plugin_entry`, which returns a constant
//! descriptor (include/cynic/plugin.h). Rust sees the header's structs through the `#[repr(C)]`
//! mirrors below: same fields, same order, same C types, so the same layout.

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::ptr;

// ---- Mirrors of cynic/plugin.h, ABI 1 ------------------------------------------------------------

/// `cynic_conn`: opaque, only ever handled by pointer.
#[repr(C)]
pub struct CynicConn {
    _opaque: [u8; 0],
}

/// `cynic_host`: the host's function table. The host owns it and this plugin only reads it
/// through a pointer, so the mirror may stop after the last field used (`close`); the rest of the
/// table (reset, shutdown_write, ..., after) follows in memory.
#[repr(C)]
pub struct CynicHost {
    pub abi_version: u32,
    pub struct_size: u32,
    pub send: unsafe extern "C" fn(conn: *mut CynicConn, bytes: *const c_void, length: usize) -> i32,
    pub wait: unsafe extern "C" fn(conn: *mut CynicConn, milliseconds: u64) -> i32,
    pub close: unsafe extern "C" fn(conn: *mut CynicConn) -> i32,
}

/// `cynic_param`: one typed parameter. Frozen: the host reads an array of them.
#[repr(C)]
pub struct CynicParam {
    pub name: *const c_char,
    pub param_type: u32, // `type` in C: one of CYNIC_TYPE_*
    pub default_value: *const c_char,
    pub doc: *const c_char,
}

const CYNIC_ABI_VERSION: u32 = 1;
const CYNIC_TYPE_STRING: u32 = 7;

type Callback = Option<unsafe extern "C" fn()>; // a callback this plugin leaves NULL

/// `cynic_plugin`: the descriptor. The host copies `struct_size` bytes of it, so this mirror has
/// every field of ABI 1, in order; a field this plugin does not use is NULL.
#[repr(C)]
pub struct CynicPlugin {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub default_port: u16,
    pub flags: u32,
    pub params: *const CynicParam,
    pub param_count: u32,
    // `cynic_any_fn` in C; the host calls it through libffi with the parameters' C types.
    pub configure: Option<unsafe extern "C" fn(instance: *mut c_void, greeting: *const c_char) -> *const c_char>,
    pub create: Option<unsafe extern "C" fn(host: *const CynicHost) -> *mut c_void>,
    pub destroy: Option<unsafe extern "C" fn(instance: *mut c_void)>,
    pub conn_open: Option<unsafe extern "C" fn(instance: *mut c_void, conn: *mut CynicConn) -> *mut c_void>,
    pub conn_data: Callback,
    pub conn_request: Callback,
    pub conn_resume: Callback,
    pub conn_peer_closed: Callback,
    pub conn_end: Callback,
    pub get_extension: Callback,
    pub conn_timer: Callback,
}

// The descriptor and its parameters are constant and never written: safe to share between threads.
unsafe impl Sync for CynicPlugin {}
unsafe impl Sync for CynicParam {}

// ---- The behaviour ----------------------------------------------------------------------------

/// One service's state: made by `create`, set by `configure`, read-only while connections run
/// (on several threads at once), freed by `destroy`.
struct Hello {
    host: *const CynicHost,
    greeting: Vec<u8>,
}

unsafe extern "C" fn create(host: *const CynicHost) -> *mut c_void {
    Box::into_raw(Box::new(Hello { host, greeting: Vec::new() })) as *mut c_void
}

unsafe extern "C" fn destroy(instance: *mut c_void) {
    drop(Box::from_raw(instance as *mut Hello));
}

/// Called once per service, with the parameters as C arguments in declaration order. Returns
/// NULL to accept, or a message (which must outlive the instance: a static one here).
unsafe extern "C" fn configure(instance: *mut c_void, greeting: *const c_char) -> *const c_char {
    let hello = &mut *(instance as *mut Hello);
    // Borrowed until this returns: keep a copy.
    hello.greeting = CStr::from_ptr(greeting).to_bytes().to_vec();
    if hello.greeting.is_empty() {
        return b"greeting must not be empty\0".as_ptr() as *const c_char;
    }
    hello.greeting.push(b'\n');
    ptr::null()
}

/// A client connected: queue the greeting and a close; the host performs them in order.
unsafe extern "C" fn conn_open(instance: *mut c_void, conn: *mut CynicConn) -> *mut c_void {
    let hello = &*(instance as *const Hello);
    let host = &*hello.host;
    (host.send)(conn, hello.greeting.as_ptr() as *const c_void, hello.greeting.len());
    (host.close)(conn);
    ptr::null_mut() // no per-connection state
}

static PARAMS: [CynicParam; 1] = [CynicParam {
    name: b"greeting\0" as *const u8 as *const c_char,
    param_type: CYNIC_TYPE_STRING,
    default_value: b"Hello from Rust!\0" as *const u8 as *const c_char,
    doc: b"The line sent to every client before closing.\0" as *const u8 as *const c_char,
}];

static PLUGIN: CynicPlugin = CynicPlugin {
    abi_version: CYNIC_ABI_VERSION,
    struct_size: std::mem::size_of::<CynicPlugin>() as u32,
    name: b"hello-rust\0" as *const u8 as *const c_char,
    description: b"Sends a greeting, then closes (a plugin written in Rust).\0" as *const u8 as *const c_char,
    default_port: 2102,
    flags: 0,
    params: &PARAMS as *const [CynicParam; 1] as *const CynicParam,
    param_count: 1,
    configure: Some(configure),
    create: Some(create),
    destroy: Some(destroy),
    conn_open: Some(conn_open),
    conn_data: None,
    conn_request: None,
    conn_resume: None,
    conn_peer_closed: None,
    conn_end: None,
    get_extension: None,
    conn_timer: None,
};

/// The one exported symbol.
#[no_mangle]
pub extern "C" fn cynic_plugin_entry() -> *const CynicPlugin {
    &PLUGIN
}
