/*
 * limit — a shaper that lets `bytes` bytes through, then ends the connection.
 *
 * A transfer cut off part way: the peer receives exactly `bytes` bytes of whatever the
 * behaviour sends, and the send that would go further is replaced by a close (FIN), by a reset
 * (RST) with `reset`, or with `half_close` by a shutdown of writing only: the peer reads EOF and
 * the connection stays open the other way — in front of an upstream (direction=upstream), the
 * server sees its request end after `bytes` and its answer still reaches the client. A behaviour
 * that sends no more than `bytes` is not affected.
 *
 * The behaviour does not know it has been cut off and carries on; once the connection is
 * finished, the shaper drops everything it asks (after a half-close, only what it sends).
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct limit_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint64_t bytes;
    bool reset;
    bool half_close;
} limit_instance;

typedef struct limit_conn {
    const limit_instance *instance;
    uint64_t remaining; /* bytes still allowed through */
    bool finished;      /* cut off: drop everything from here on */
    bool write_shut;    /* half-closed: drop every send from here on */
} limit_conn;

static const cynic_param limit_params[] = {
    {"bytes", CYNIC_TYPE_UINT64, "0", "Bytes let through before the connection ends."},
    {"reset", CYNIC_TYPE_BOOL, "false", "End with a reset (RST) instead of a close (FIN)."},
    {"half_close", CYNIC_TYPE_BOOL, "false",
     "Shut down writing only (the peer reads EOF; what it sends back still arrives) instead of a close."},
};

static void *limit_create(const cynic_host *host) {
    limit_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void limit_destroy(void *instance) {
    free(instance);
}

static const char *limit_configure(void *instance, uint64_t bytes, bool reset, bool half_close) {
    limit_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (reset && half_close) return "reset and half_close: choose one way to end";
    self->bytes = bytes;
    self->reset = reset;
    self->half_close = half_close;
    return NULL;
}

static void *limit_conn_open(void *instance, cynic_conn *downstream) {
    limit_instance *self = instance;
    limit_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        self->host->log(downstream, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(downstream);
        return NULL;
    }
    state->instance = self;
    state->remaining = self->bytes;
    state->finished = false;
    state->write_shut = false;
    return state;
}

/* NULL: out of memory at the open, and the connection is being reset. */
static bool limit_finished(const limit_conn *state) {
    return state == NULL || state->finished;
}

static void limit_send(void *state, cynic_conn *downstream, const uint8_t *bytes,
                       size_t length) {
    limit_conn *self = state;
    if (limit_finished(self) || self->write_shut) return;
    const cynic_host *host = self->instance->host;
    if (length <= self->remaining) {
        host->send(downstream, bytes, length);
        self->remaining -= length;
        return;
    }
    if (self->remaining > 0) host->send(downstream, bytes, (size_t)self->remaining);
    self->remaining = 0;
    if (self->instance->half_close) {
        self->write_shut = true;
        host->shutdown_write(downstream);
        return;
    }
    self->finished = true;
    if (self->instance->reset) {
        host->reset(downstream);
    } else {
        host->close(downstream);
    }
}

static void limit_wait(void *state, cynic_conn *downstream, uint64_t milliseconds) {
    limit_conn *self = state;
    if (!limit_finished(self)) self->instance->host->wait(downstream, milliseconds);
}

static void limit_close(void *state, cynic_conn *downstream) {
    limit_conn *self = state;
    if (!limit_finished(self)) self->instance->host->close(downstream);
}

static void limit_reset(void *state, cynic_conn *downstream) {
    limit_conn *self = state;
    if (!limit_finished(self)) self->instance->host->reset(downstream);
}

static void limit_shutdown_write(void *state, cynic_conn *downstream) {
    limit_conn *self = state;
    if (!limit_finished(self)) self->instance->host->shutdown_write(downstream);
}

static void limit_conn_end(void *state) {
    free(state);
}

static const cynic_shaper limit_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = limit_conn_open,
    .send = limit_send,
    .wait = limit_wait,
    .close = limit_close,
    .reset = limit_reset,
    .shutdown_write = limit_shutdown_write,
    .conn_end = limit_conn_end,
};

static const void *limit_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &limit_shaper : NULL;
}

static const cynic_plugin limit_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "limit",
    .description = "Shaper: lets `bytes` bytes through, then closes (or resets).",
    .params = limit_params,
    .param_count = sizeof limit_params / sizeof limit_params[0],
    .configure = CYNIC_CONFIGURE(limit_configure),
    .create = limit_create,
    .destroy = limit_destroy,
    .get_extension = limit_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &limit_plugin;
}
