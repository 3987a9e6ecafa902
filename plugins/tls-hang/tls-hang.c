/*
 * tls-hang — reads the client's TLS ClientHello and never answers it.
 *
 * A TLS server whose handshake stalls: a terminating proxy whose backend for certificates is
 * stuck, a load balancer that accepted the connection and lost the way to its pool, a server
 * out of threads after accept. The TCP connection is up and the ClientHello is taken, so only a
 * timeout on the handshake itself saves the client: curl exits 28 ("Connection timed out after
 * ..." or "Operation timed out" with --max-time), requests raises ReadTimeout, Python's ssl module
 * "The handshake operation timed out", and openssl s_client waits. After `hold_ms` the
 * connection is closed, so a client without a timeout is not held forever.
 *
 * First bytes that are not a ClientHello (a plain HTTP request) are held just the same; the
 * reader stops looking at them at once, so nothing more is buffered.
 */
#include <cynic/plugin.h>

#include "tls-fault.h"

static const cynic_param tls_hang_params[] = {
    {"hold_ms", CYNIC_TYPE_UINT64, "86400000",
     "How long to hold a connection without answering its ClientHello, in milliseconds."},
};

/* No answer: the hold queued at open is the fault. */
static void *tls_hang_create(const cynic_host *host) {
    return tls_fault_create(host, sizeof(tls_fault), NULL);
}

static const char *tls_hang_configure(void *instance, uint64_t hold_ms) {
    tls_fault *fault = instance;
    if (fault == NULL) return "out of memory"; /* create has no other way to fail */
    fault->hold_ms = hold_ms;
    return NULL;
}

static const cynic_plugin tls_hang_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "tls-hang",
    .description = "Reads the TLS ClientHello and never answers; closes after hold_ms.",
    .default_port = 2030,
    .params = tls_hang_params,
    .param_count = sizeof tls_hang_params / sizeof tls_hang_params[0],
    .configure = CYNIC_CONFIGURE(tls_hang_configure),
    .create = tls_hang_create,
    TLS_FAULT_CALLBACKS,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &tls_hang_plugin;
}
