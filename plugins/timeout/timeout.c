/*
 * timeout — a shaper that stops passing data and, `ms` milliseconds later, closes the connection
 * (toxiproxy's timeout toxic).
 *
 * A link that goes dead: a server that hangs mid-answer, a NAT entry that expired, a proxy that
 * lost its upstream. From the open on, whatever the behaviour sends is dropped — the client sees
 * nothing more, and no error either — and after `ms` the connection is closed (a FIN). With
 * `ms` 0 it is never closed by this shaper: the link just stays silent, and only a client with a
 * read timeout finds out.
 *
 * The behaviour does not know: its sends are accepted and vanish, its waits and thens still
 * pass (so its own pacing and its conn_resume go on), its close and reset are dropped too, since
 * a dead link carries no FIN. The close is a timer, not a queued wait, so it comes `ms` after
 * the open whatever the behaviour has queued.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct timeout_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint64_t ms;
} timeout_instance;

static const cynic_param timeout_params[] = {
    {"ms", CYNIC_TYPE_UINT64, "0",
     "Milliseconds after the open before the connection is closed (0: never; it stays silent)."},
};

static void *timeout_create(const cynic_host *host) {
    timeout_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void timeout_destroy(void *instance) {
    free(instance);
}

static const char *timeout_configure(void *instance, uint64_t ms) {
    timeout_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->ms = ms;
    return NULL;
}

/* The instance is read-only once configured, so it doubles as every connection's state; the
 * timer needs no tag, as the shaper sets one per connection. */
static void *timeout_conn_open(void *instance, cynic_conn *downstream) {
    timeout_instance *self = instance;
    if (self->ms > 0) self->host->after(downstream, self->ms, 0);
    return instance;
}

/* Every action that would reach the client is dropped: the link is dead from the start. */
static void timeout_send(void *state, cynic_conn *downstream, const uint8_t *bytes, size_t length) {
    (void)state, (void)downstream, (void)bytes, (void)length;
}

static void timeout_drop(void *state, cynic_conn *downstream) {
    (void)state, (void)downstream;
}

/* Time is up: the close goes out at once, ahead of whatever the behaviour still has queued. */
static void timeout_timer(void *state, cynic_conn *downstream, uint64_t tag) {
    (void)tag;
    const timeout_instance *self = state;
    self->host->cancel_pending(downstream);
    self->host->close(downstream);
}

static const cynic_shaper timeout_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = timeout_conn_open,
    .send = timeout_send,
    /* wait passes on unchanged: the behaviour's pacing, and the thens queued after it, hold. */
    .close = timeout_drop,
    .reset = timeout_drop,
    .shutdown_write = timeout_drop,
    .timer = timeout_timer,
};

static const void *timeout_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &timeout_shaper : NULL;
}

static const cynic_plugin timeout_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "timeout",
    .description = "Shaper: drops everything sent, then closes after ms (0: never, the link stays silent).",
    .params = timeout_params,
    .param_count = sizeof timeout_params / sizeof timeout_params[0],
    .configure = CYNIC_CONFIGURE(timeout_configure),
    .create = timeout_create,
    .destroy = timeout_destroy,
    .get_extension = timeout_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &timeout_plugin;
}
