/*
 * zero-window — accepts and never reads, with a small receive buffer.
 *
 * The server is alive but stuck: the kernel acknowledges what fits in the connection's small
 * receive buffer, then advertises a zero window; once the client's own send buffer is full too,
 * its writes block with the request half sent. Tests a client's write timeout, which many
 * clients lack even when they have a read timeout. The connection is closed after `hold_ms`,
 * so nothing is held forever.
 *
 * The buffer is made small with the "cynic.listen/1" capability: the window scale is agreed in the
 * handshake, so the size must be set on the listening socket, before any connection is accepted.
 * That capability belongs to the plugin, not to a service, so the size is fixed here rather than
 * a parameter every service could set differently.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

/* Linux doubles it for its bookkeeping: the window still closes after a few KiB. */
#define ZERO_WINDOW_RECEIVE_BUFFER 4096

typedef struct zero_window_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    uint64_t hold_ms;
} zero_window_instance;

static const cynic_param zero_window_params[] = {
    {"hold_ms", CYNIC_TYPE_UINT64, "86400000",
     "How long to hold a connection without reading, in milliseconds, before closing it."},
};

static const cynic_listen zero_window_listen = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_listen),
    .receive_buffer = ZERO_WINDOW_RECEIVE_BUFFER,
};

static void *zero_window_create(const cynic_host *host) {
    zero_window_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void zero_window_destroy(void *instance) {
    free(instance);
}

static const char *zero_window_configure(void *instance, uint64_t hold_ms) {
    zero_window_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->hold_ms = hold_ms;
    return NULL;
}

/* The instance is read-only once configured, so it doubles as every connection's state. */
static void *zero_window_conn_open(void *instance, cynic_conn *conn) {
    zero_window_instance *self = instance;
    self->host->stop_reading(conn);
    self->host->wait(conn, self->hold_ms);
    self->host->close(conn);
    return self;
}

/* The client gave up: without this, the host would close only after the whole hold. */
static void zero_window_conn_peer_closed(void *state, cynic_conn *conn) {
    zero_window_instance *self = state;
    self->host->cancel_pending(conn);
    self->host->close(conn);
}

static const void *zero_window_get_extension(const char *id) {
    return strcmp(id, CYNIC_LISTEN_ID) == 0 ? &zero_window_listen : NULL;
}

static const cynic_plugin zero_window_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "zero-window",
    .description = "Accepts and never reads, with a 4 KiB receive buffer; closes after hold_ms.",
    .default_port = 2026,
    .params = zero_window_params,
    .param_count = sizeof zero_window_params / sizeof zero_window_params[0],
    .configure = CYNIC_CONFIGURE(zero_window_configure),
    .create = zero_window_create,
    .destroy = zero_window_destroy,
    .conn_open = zero_window_conn_open,
    .conn_peer_closed = zero_window_conn_peer_closed,
    .get_extension = zero_window_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &zero_window_plugin;
}
