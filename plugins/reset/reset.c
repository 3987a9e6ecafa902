/*
 * reset — answers every connection with a TCP RST.
 *
 * The client's first receive fails with ECONNRESET and its next send with EPIPE: the way a
 * crashed server or a stateful firewall losing track of a connection looks from outside.
 */
#include <cynic/plugin.h>

/* conn_open is not given the host table, so the instance carries it. The table is all this
 * behaviour needs, so it is the instance itself: nothing to allocate, nothing to free. */
static void *reset_create(const cynic_host *host) {
    return (void *)host;
}

static void *reset_conn_open(void *instance, cynic_conn *conn) {
    const cynic_host *host = instance;
    host->reset(conn);
    return NULL;
}

static const cynic_plugin reset_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "reset",
    .description = "Resets every connection at once (TCP RST).",
    .default_port = 2020,
    .create = reset_create,
    .conn_open = reset_conn_open,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &reset_plugin;
}
