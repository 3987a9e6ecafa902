/*
 * empty — reads the request, closes without answering a byte.
 *
 * The server took the request and died before writing anything, or a proxy dropped it: the
 * client sees the connection end where a status line should be (curl: exit 52, "Empty reply from
 * server"). It cannot tell whether the request was acted on, so this is where a client's retry
 * policy for non-idempotent requests shows.
 */
#include <cynic/plugin.h>

/* The instance is the host table itself: it is all a connection needs, it outlives every
 * connection, and there is nothing to free. */
static void *empty_create(const cynic_host *host) {
    return (void *)host;
}

/* Nothing to do before the request: closing now would be accept-close. */
static void *empty_conn_open(void *instance, cynic_conn *conn) {
    (void)conn;
    return instance;
}

static void empty_conn_request(void *state, cynic_conn *conn, const cynic_http_request *request) {
    (void)request;
    const cynic_host *host = state;
    host->close(conn);
}

static const cynic_plugin empty_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "empty",
    .description = "Reads the HTTP request, then closes without sending a byte.",
    .default_port = 2013,
    .flags = CYNIC_PLUGIN_HTTP1,
    .create = empty_create,
    .conn_open = empty_conn_open,
    .conn_request = empty_conn_request,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &empty_plugin;
}
