/*
 * never-accept — listens, never accepts: connecting times out.
 *
 * A host that is up but whose server is wedged, or a firewall that drops packets: the client's
 * SYN is never answered, so it is its connect timeout, not its read timeout, that is tested
 * (curl: exit 28 with --connect-timeout, else whatever the kernel's SYN retries last).
 *
 * With the "cynic.listen/1" capability the host listens with a backlog of 1 and fills the accept
 * queue with connections of its own; once that queue is full, Linux drops further SYNs without
 * a word. A larger backlog would only take the host more connections to fill.
 */
#include <cynic/plugin.h>
#include <string.h>

static const cynic_listen never_accept_listen = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_listen),
    .backlog = 1,
    .never_accept = true,
};

/* The instance is the host table itself: it is all a connection needs, it outlives every
 * connection, and there is nothing to free. */
static void *never_accept_create(const cynic_host *host) {
    return (void *)host;
}

/* Never called while the host honours never_accept; closing is the safe answer if it is. */
static void *never_accept_conn_open(void *instance, cynic_conn *conn) {
    const cynic_host *host = instance;
    host->close(conn);
    return NULL;
}

static const void *never_accept_get_extension(const char *id) {
    return strcmp(id, CYNIC_LISTEN_ID) == 0 ? &never_accept_listen : NULL;
}

static const cynic_plugin never_accept_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "never-accept",
    .description = "Listens but never accepts: the client's connect times out.",
    .default_port = 2025,
    .create = never_accept_create,
    .conn_open = never_accept_conn_open,
    .get_extension = never_accept_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &never_accept_plugin;
}
