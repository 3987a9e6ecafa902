/*
 * tls-reset — resets the connection (TCP RST) once the whole TLS ClientHello is in.
 *
 * The handshake is cut by something that drops connections it does not like the look of: a
 * firewall or middlebox inspecting the ClientHello's SNI, a TLS terminator that crashed on it, a
 * server whose TLS stack aborts. The client's next read fails with ECONNRESET: curl exits 35
 * "Recv failure: Connection reset by peer", requests raises ConnectionError with "Connection reset
 * by peer", Python's ssl module ConnectionResetError, openssl s_client reports errno 104.
 *
 * Waiting for the whole ClientHello, not its first byte, keeps the RST from racing the client's
 * own sending (which would turn its read error into a write error). First bytes that are not a
 * ClientHello (a plain HTTP request) get the RST at once.
 */
#include <cynic/plugin.h>

#include "tls-fault.h"

static void tls_reset_answer(const tls_fault *fault, cynic_conn *conn, const tls_client_hello *hello) {
    (void)hello;
    fault->host->reset(conn);
}

static void *tls_reset_create(const cynic_host *host) {
    return tls_fault_create(host, sizeof(tls_fault), tls_reset_answer);
}

static const cynic_plugin tls_reset_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "tls-reset",
    .description = "Resets the connection (TCP RST) once the whole TLS ClientHello is in.",
    .default_port = 2033,
    .create = tls_reset_create,
    TLS_FAULT_CALLBACKS,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &tls_reset_plugin;
}
