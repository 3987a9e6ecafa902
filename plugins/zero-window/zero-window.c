/*
 * zero-window — accepts and never reads, with a small receive buffer.
 *
 * The server is alive but stuck: the kernel acknowledges what fits in the connection's small
 * receive buffer, then advertises a zero window; once the client's own send buffer is full too,
 * its writes block with the request half sent. Tests a client's write timeout, which many
 * clients lack even when they have a read timeout. The connection is closed after `hold_ms`,
 * so nothing is held forever.
 *
 * The buffer is made small on the listening socket, before any connection is accepted: the
 * window scale is agreed in the handshake. Its size is a parameter, so each service asks for its
 * own through the "cynic.listen-instance/1" capability, which the host calls with each
 * configured instance before its service listens.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct zero_window_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    uint64_t hold_ms;
    uint32_t receive_buffer;
} zero_window_instance;

/* Linux doubles the receive buffer asked for, for its bookkeeping, and keeps a floor of about
 * 2 KiB: with the default 4096 the window still closes after a few KiB. */
static const cynic_param zero_window_params[] = {
    {"hold_ms", CYNIC_TYPE_UINT64, "86400000",
     "How long to hold a connection without reading, in milliseconds, before closing it."},
    {"receive_buffer", CYNIC_TYPE_UINT32, "4096",
     "SO_RCVBUF of the listening socket, in bytes: what the client may send before its writes stall."},
};

/* Called by the host for each configured instance, before its service listens. */
static void zero_window_listen(const void *instance, cynic_listen *listen) {
    listen->receive_buffer = ((const zero_window_instance *)instance)->receive_buffer;
}

static const cynic_listen_instance zero_window_listen_instance = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_listen_instance),
    .listen = zero_window_listen,
};

static void *zero_window_create(const cynic_host *host) {
    zero_window_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void zero_window_destroy(void *instance) {
    free(instance);
}

static const char *zero_window_configure(void *instance, uint64_t hold_ms, uint32_t receive_buffer) {
    zero_window_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (receive_buffer == 0) return "receive_buffer must be at least 1 (the kernel rounds it up)";
    self->hold_ms = hold_ms;
    self->receive_buffer = receive_buffer;
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
    return strcmp(id, CYNIC_LISTEN_INSTANCE_ID) == 0 ? &zero_window_listen_instance : NULL;
}

static const cynic_plugin zero_window_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "zero-window",
    .description = "Accepts and never reads, with a small receive buffer (receive_buffer); closes after hold_ms.",
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
