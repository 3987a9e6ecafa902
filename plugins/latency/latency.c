/*
 * latency — a shaper that delays the start of every connection's answer.
 *
 * A far-away or busy server: the first byte comes `ms` (plus up to `jitter_ms`) later than it
 * would. The wait is queued when the connection opens, ahead of anything the behaviour queues,
 * so it is measured from the accept; it delays the answer to a request sent at once, not every
 * later one on the same connection.
 *
 * The jitter is random per connection. With `seed` set, the nth connection this shaper delays
 * always draws the same value, so a failing run can be repeated.
 */
#include <cynic/plugin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct latency_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint32_t ms;
    uint32_t jitter_ms;
    uint64_t seed;
    /* The one field written after configure, from every connection thread: hence atomic. */
    atomic_uint_fast64_t connections;
} latency_instance;

static const cynic_param latency_params[] = {
    {"ms", CYNIC_TYPE_UINT32, "100", "Milliseconds to delay each connection's first byte."},
    {"jitter_ms", CYNIC_TYPE_UINT32, "0", "Up to this many milliseconds more, drawn uniformly."},
    {"seed", CYNIC_TYPE_UINT64, "0",
     "Makes the jitter reproducible: the same seed draws the same delays (0: random)."},
};

/* SplitMix64 at position `n` of the sequence `seed` starts: any connection's draw, directly. */
static uint64_t latency_draw(uint64_t seed, uint64_t n) {
    uint64_t z = seed + (n + 1) * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void *latency_create(const cynic_host *host) {
    latency_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) {
        instance->host = host;
        atomic_init(&instance->connections, 0);
    }
    return instance;
}

static void latency_destroy(void *instance) {
    free(instance);
}

static const char *latency_configure(void *instance, uint32_t ms, uint32_t jitter_ms,
                                     uint64_t seed) {
    latency_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->ms = ms;
    self->jitter_ms = jitter_ms;
    self->seed = seed;
    return NULL;
}

/* Everything happens here: the wait goes first in the queue, and every later action passes
 * through unchanged, so the connection needs no state. */
static void *latency_conn_open(void *instance, cynic_conn *downstream) {
    latency_instance *self = instance;
    uint64_t delay = self->ms;
    if (self->jitter_ms > 0) {
        uint64_t n = atomic_fetch_add_explicit(&self->connections, 1, memory_order_relaxed);
        uint64_t draw = latency_draw(self->seed, n);
        /* Unseeded, fresh bytes; should getrandom fail, the draw still differs per connection. */
        if (self->seed == 0) (void)getrandom(&draw, sizeof draw, 0);
        delay += draw % ((uint64_t)self->jitter_ms + 1);
    }
    if (delay > 0) self->host->wait(downstream, delay);
    return NULL;
}

static const cynic_shaper latency_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = latency_conn_open,
};

static const void *latency_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &latency_shaper : NULL;
}

static const cynic_plugin latency_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "latency",
    .description = "Shaper: delays each connection's first byte by ms (+ up to jitter_ms).",
    .params = latency_params,
    .param_count = sizeof latency_params / sizeof latency_params[0],
    .configure = CYNIC_CONFIGURE(latency_configure),
    .create = latency_create,
    .destroy = latency_destroy,
    .get_extension = latency_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &latency_plugin;
}
