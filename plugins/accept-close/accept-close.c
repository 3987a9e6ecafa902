/*
 * accept-close — closes every connection (FIN) the moment it is accepted.
 *
 * A server that accepts and immediately gives up: an overloaded one shedding load, or one whose
 * worker crashed. The client connects fine, then reads end of stream before sending or receiving
 * anything.
 *
 * What the client reports depends on timing. If it reads the FIN before writing, it sees a clean
 * end of stream (curl: exit 52, "Empty reply from server"). Bytes it writes after our close
 * reach a socket that no longer exists, and the kernel answers them with a RST, so a client that
 * has already sent its request may see "Connection reset by peer" instead (curl: exit 56).
 * Both are real-world outcomes of this failure.
 */
#include <cynic/plugin.h>

/* The instance is the host table itself: it is all a connection needs, it outlives every
 * connection, and there is nothing to free. */
static void *accept_close_create(const cynic_host *host) {
    return (void *)host;
}

static void *accept_close_conn_open(void *instance, cynic_conn *conn) {
    const cynic_host *host = instance;
    host->close(conn);
    return NULL;
}

static const cynic_plugin accept_close_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "accept-close",
    .description = "Closes every connection (FIN) as soon as it is accepted.",
    .default_port = 2023,
    .create = accept_close_create,
    .conn_open = accept_close_conn_open,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &accept_close_plugin;
}
