/*
 * reset-after — a shaper that resets the connection (TCP RST) after `bytes` bytes or `ms`
 * milliseconds, whichever comes first.
 *
 * A server that crashes, or a middlebox that drops the connection, part way through: the client
 * receives exactly `bytes` bytes and the send that would go further is replaced by the reset,
 * or the reset comes `ms` after the open whatever the behaviour is doing then. 0 turns a limit
 * off; one of the two must be set.
 *
 * The time limit is a timer, not a queued wait: a queued wait would only run after what is
 * queued before it. When it fires, what is still queued is dropped and the reset goes out at
 * once. The behaviour does not know it has been cut off; the shaper drops everything it asks
 * from then on.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct reset_after_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint64_t bytes;
    uint64_t ms;
} reset_after_instance;

typedef struct reset_after_conn {
    const reset_after_instance *instance;
    uint64_t remaining; /* bytes still allowed through, when bytes > 0 */
    bool finished;      /* reset: drop everything from here on */
} reset_after_conn;

static const cynic_param reset_after_params[] = {
    {"bytes", CYNIC_TYPE_UINT64, "0",
     "Bytes let through before the reset (0: no byte limit; with ms 0 too, reset at the open)."},
    {"ms", CYNIC_TYPE_UINT64, "0",
     "Milliseconds after the open before the reset (0: no time limit; with bytes 0 too, reset at the open)."},
};

static void *reset_after_create(const cynic_host *host) {
    reset_after_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void reset_after_destroy(void *instance) {
    free(instance);
}

static const char *reset_after_configure(void *instance, uint64_t bytes, uint64_t ms) {
    reset_after_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->bytes = bytes;
    self->ms = ms;
    return NULL;
}

static void *reset_after_conn_open(void *instance, cynic_conn *downstream) {
    reset_after_instance *self = instance;
    reset_after_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        self->host->log(downstream, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(downstream);
        return NULL;
    }
    state->instance = self;
    state->remaining = self->bytes;
    state->finished = false;
    if (self->bytes == 0 && self->ms == 0) {
        /* No limit at all: reset at once, as toxiproxy's reset_peer with timeout 0. */
        state->finished = true;
        self->host->reset(downstream);
    } else if (self->ms > 0) {
        self->host->after(downstream, self->ms, 0);
    }
    return state;
}

/* NULL: out of memory at the open, and the connection is being reset. */
static bool reset_after_finished(const reset_after_conn *state) {
    return state == NULL || state->finished;
}

static void reset_after_send(void *state, cynic_conn *downstream, const uint8_t *bytes,
                             size_t length) {
    reset_after_conn *self = state;
    if (reset_after_finished(self)) return;
    const cynic_host *host = self->instance->host;
    if (self->instance->bytes == 0 || length <= self->remaining) {
        host->send(downstream, bytes, length);
        if (self->instance->bytes > 0) self->remaining -= length;
        return;
    }
    if (self->remaining > 0) host->send(downstream, bytes, (size_t)self->remaining);
    self->remaining = 0;
    self->finished = true;
    host->reset(downstream);
}

static void reset_after_wait(void *state, cynic_conn *downstream, uint64_t milliseconds) {
    reset_after_conn *self = state;
    if (!reset_after_finished(self)) self->instance->host->wait(downstream, milliseconds);
}

static void reset_after_close(void *state, cynic_conn *downstream) {
    reset_after_conn *self = state;
    if (!reset_after_finished(self)) self->instance->host->close(downstream);
}

static void reset_after_reset(void *state, cynic_conn *downstream) {
    reset_after_conn *self = state;
    if (!reset_after_finished(self)) self->instance->host->reset(downstream);
}

static void reset_after_shutdown_write(void *state, cynic_conn *downstream) {
    reset_after_conn *self = state;
    if (!reset_after_finished(self)) self->instance->host->shutdown_write(downstream);
}

/* Time is up: whatever is queued, even a close, gives way to the reset. */
static void reset_after_timer(void *state, cynic_conn *downstream, uint64_t tag) {
    (void)tag;
    reset_after_conn *self = state;
    if (reset_after_finished(self)) return;
    self->finished = true;
    self->instance->host->cancel_pending(downstream);
    self->instance->host->reset(downstream);
}

static void reset_after_conn_end(void *state) {
    free(state);
}

static const cynic_shaper reset_after_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = reset_after_conn_open,
    .send = reset_after_send,
    .wait = reset_after_wait,
    .close = reset_after_close,
    .reset = reset_after_reset,
    .shutdown_write = reset_after_shutdown_write,
    .timer = reset_after_timer,
    .conn_end = reset_after_conn_end,
};

static const void *reset_after_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &reset_after_shaper : NULL;
}

static const cynic_plugin reset_after_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "reset-after",
    .description = "Shaper: resets (RST) after `bytes` bytes or `ms` milliseconds, if sooner.",
    .params = reset_after_params,
    .param_count = sizeof reset_after_params / sizeof reset_after_params[0],
    .configure = CYNIC_CONFIGURE(reset_after_configure),
    .create = reset_after_create,
    .destroy = reset_after_destroy,
    .get_extension = reset_after_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &reset_after_plugin;
}
