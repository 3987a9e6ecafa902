/*
 * slow-close — a shaper that holds the connection open for `ms` before each close.
 *
 * The answer is complete but the FIN comes late: a server that lingers, or a proxy that keeps
 * the connection after the response. A client that reads until end of stream instead of by
 * Content-Length or chunk framing waits the whole time. Resets are not delayed.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct slow_close_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint32_t ms;
} slow_close_instance;

static const cynic_param slow_close_params[] = {
    {"ms", CYNIC_TYPE_UINT32, "1000", "Milliseconds to wait before each close (FIN)."},
};

static void *slow_close_create(const cynic_host *host) {
    slow_close_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void slow_close_destroy(void *instance) {
    free(instance);
}

static const char *slow_close_configure(void *instance, uint32_t ms) {
    slow_close_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->ms = ms;
    return NULL;
}

/* The instance is read-only once configured, so it doubles as every connection's state. */
static void *slow_close_conn_open(void *instance, cynic_conn *downstream) {
    (void)downstream;
    return instance;
}

static void slow_close_close(void *state, cynic_conn *downstream) {
    slow_close_instance *self = state;
    self->host->wait(downstream, self->ms);
    self->host->close(downstream);
}

static const cynic_shaper slow_close_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = slow_close_conn_open,
    .close = slow_close_close,
};

static const void *slow_close_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &slow_close_shaper : NULL;
}

static const cynic_plugin slow_close_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "slow-close",
    .description = "Shaper: waits ms before each close (FIN).",
    .params = slow_close_params,
    .param_count = sizeof slow_close_params / sizeof slow_close_params[0],
    .configure = CYNIC_CONFIGURE(slow_close_configure),
    .create = slow_close_create,
    .destroy = slow_close_destroy,
    .get_extension = slow_close_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &slow_close_plugin;
}
