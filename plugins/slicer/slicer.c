/*
 * slicer — a shaper that cuts what is sent into small pieces with pauses between them.
 *
 * TCP delivers a stream, not messages: a response may arrive one byte per read. Clients that
 * assume a whole status line, header or frame arrives in one read break here. Each piece is
 * `size` bytes, give or take up to `variation` (the last of a send is what is left), and
 * `delay_ms` separates it from the piece before — also across sends, so that pieces are not
 * merged again on the way.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct slicer_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint32_t size;
    uint32_t variation;
    uint32_t delay_ms;
} slicer_instance;

/* Per connection: connections run on several threads at once, so each has its own generator. */
typedef struct slicer_conn {
    const slicer_instance *instance;
    uint64_t generator;
    bool sent_before; /* the next piece needs a pause before it */
} slicer_conn;

static const cynic_param slicer_params[] = {
    {"size", CYNIC_TYPE_UINT32, "1", "Bytes in each piece."},
    {"variation", CYNIC_TYPE_UINT32, "0",
     "Each piece is up to this many bytes smaller or larger, at random (never below 1)."},
    {"delay_ms", CYNIC_TYPE_UINT32, "10", "Milliseconds between pieces."},
    {"delay_us", CYNIC_TYPE_UINT32, "0",
     "Microseconds between pieces, toxiproxy's unit; when set it replaces delay_ms, rounded to "
     "the nearest millisecond (waits are whole milliseconds: under 500 us, no pause)."},
};

/* SplitMix64: fast, and random enough for piece sizes. */
static uint64_t slicer_next(uint64_t *generator) {
    uint64_t z = (*generator += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void *slicer_create(const cynic_host *host) {
    slicer_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void slicer_destroy(void *instance) {
    free(instance);
}

static const char *slicer_configure(void *instance, uint32_t size, uint32_t variation,
                                    uint32_t delay_ms, uint32_t delay_us) {
    slicer_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (size == 0) return "size must be at least 1";
    self->size = size;
    self->variation = variation;
    self->delay_ms = delay_us > 0 ? (uint32_t)((delay_us + 500u) / 1000u) : delay_ms;
    return NULL;
}

static void *slicer_conn_open(void *instance, cynic_conn *downstream) {
    slicer_instance *self = instance;
    slicer_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        self->host->log(downstream, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(downstream);
        return NULL;
    }
    state->instance = self;
    state->sent_before = false;
    /* Should getrandom fail, the address still gives each connection different sizes. */
    state->generator = (uint64_t)(uintptr_t)state;
    (void)getrandom(&state->generator, sizeof state->generator, 0);
    return state;
}

/* A size in [size - variation, size + variation], at least 1. */
static uint64_t slicer_piece_size(slicer_conn *state) {
    const slicer_instance *instance = state->instance;
    if (instance->variation == 0) return instance->size;
    uint64_t low = instance->size > instance->variation ? instance->size - instance->variation : 1;
    uint64_t high = (uint64_t)instance->size + instance->variation;
    return low + slicer_next(&state->generator) % (high - low + 1);
}

static void slicer_send(void *state, cynic_conn *downstream, const uint8_t *bytes,
                        size_t length) {
    slicer_conn *self = state;
    if (self == NULL) return; /* out of memory at the open: the connection is being reset */
    const cynic_host *host = self->instance->host;
    while (length > 0) {
        uint64_t size = slicer_piece_size(self);
        size_t piece = size < length ? (size_t)size : length;
        if (self->sent_before && self->instance->delay_ms > 0) {
            host->wait(downstream, self->instance->delay_ms);
        }
        host->send(downstream, bytes, piece);
        self->sent_before = true;
        bytes += piece;
        length -= piece;
    }
}

static void slicer_conn_end(void *state) {
    free(state);
}

static const cynic_shaper slicer_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = slicer_conn_open,
    .send = slicer_send,
    .conn_end = slicer_conn_end,
};

static const void *slicer_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &slicer_shaper : NULL;
}

static const cynic_plugin slicer_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "slicer",
    .description = "Shaper: cuts sends into pieces of size (± variation) bytes, delay_ms apart.",
    .params = slicer_params,
    .param_count = sizeof slicer_params / sizeof slicer_params[0],
    .configure = CYNIC_CONFIGURE(slicer_configure),
    .create = slicer_create,
    .destroy = slicer_destroy,
    .get_extension = slicer_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &slicer_plugin;
}
