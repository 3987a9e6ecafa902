/*
 * reset — answers every connection with a TCP RST.
 *
 * The client's first receive fails with ECONNRESET and its next send with EPIPE: the way a
 * crashed server or a stateful firewall losing track of a connection looks from outside.
 *
 * The RST answers the client's first bytes. A reset sent the instant the connection is accepted
 * races the client's own connect: curl, for one, may then report "Couldn't connect" (exit 7)
 * instead of the "Connection reset by peer" (exit 56) a real dying server gives a request. A
 * client that only listens gets the RST after `wait_ms`.
 */
#include <cynic/plugin.h>
#include <stdlib.h>

typedef struct {
    const cynic_host *host;
    uint32_t wait_ms;
} reset_instance;

static void *reset_create(const cynic_host *host) {
    reset_instance *self = calloc(1, sizeof *self);
    if (self) self->host = host;
    return self;
}

static void reset_destroy(void *instance) {
    free(instance);
}

static const char *reset_configure(void *instance, uint32_t wait_ms) {
    ((reset_instance *)instance)->wait_ms = wait_ms;
    return NULL;
}

/* The instance is read-only once configured, so it doubles as every connection's state. */
static void *reset_conn_open(void *instance, cynic_conn *conn) {
    reset_instance *self = instance;
    if (self->wait_ms > 0) self->host->wait(conn, self->wait_ms);
    self->host->reset(conn);
    return self;
}

/* The client spoke: reset now rather than at the end of the wait. */
static void reset_conn_data(void *state, cynic_conn *conn, const uint8_t *bytes, size_t length) {
    (void)bytes;
    (void)length;
    reset_instance *self = state;
    self->host->cancel_pending(conn);
    self->host->reset(conn);
}

static const cynic_param reset_params[] = {
    {"wait_ms", CYNIC_TYPE_UINT32, "200",
     "Milliseconds to wait for the client's first bytes before resetting (0: reset on accept)."},
};

static const cynic_plugin reset_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "reset",
    .description = "Resets every connection (TCP RST) as soon as the client sends anything.",
    .default_port = 2020,
    .params = reset_params,
    .param_count = sizeof reset_params / sizeof reset_params[0],
    .configure = CYNIC_CONFIGURE(reset_configure),
    .create = reset_create,
    .destroy = reset_destroy,
    .conn_open = reset_conn_open,
    .conn_data = reset_conn_data,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &reset_plugin;
}
