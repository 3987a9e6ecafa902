/*
 * noresponse — accepts, reads and never answers.
 *
 * Tests a client's read timeout: the connection is up and the request is taken, but no byte ever
 * comes back. After `hold_ms` the connection is closed, so a client without a timeout is not held
 * forever.
 */
#include <cynic/plugin.h>
#include <stdlib.h>

typedef struct noresponse_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    uint64_t hold_ms;
} noresponse_instance;

static const cynic_param noresponse_params[] = {
    {"hold_ms", CYNIC_TYPE_UINT64, "86400000",
     "How long to hold a connection open without answering, in milliseconds."},
};

static void *noresponse_create(const cynic_host *host) {
    noresponse_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void noresponse_destroy(void *instance) {
    free(instance);
}

static const char *noresponse_configure(void *instance, uint64_t hold_ms) {
    noresponse_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->hold_ms = hold_ms;
    return NULL;
}

/* A connection needs nothing of its own: its state is the instance, which is read-only now and
 * outlives every connection. */
static void *noresponse_conn_open(void *instance, cynic_conn *conn) {
    noresponse_instance *self = instance;
    self->host->wait(conn, self->hold_ms);
    self->host->close(conn);
    return self;
}

/* The client gave up: without this, the host would close only after the whole hold. */
static void noresponse_conn_peer_closed(void *state, cynic_conn *conn) {
    noresponse_instance *self = state;
    self->host->cancel_pending(conn);
    self->host->close(conn);
}

static const cynic_plugin noresponse_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "noresponse",
    .description = "Accepts and reads, never answers; closes after hold_ms.",
    .default_port = 2022,
    .params = noresponse_params,
    .param_count = sizeof noresponse_params / sizeof noresponse_params[0],
    .configure = CYNIC_CONFIGURE(noresponse_configure),
    .create = noresponse_create,
    .destroy = noresponse_destroy,
    .conn_open = noresponse_conn_open,
    .conn_data = NULL, /* read and discarded by the host */
    .conn_peer_closed = noresponse_conn_peer_closed,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &noresponse_plugin;
}
