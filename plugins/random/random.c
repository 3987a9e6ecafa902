/*
 * random — sends `length` random bytes, then closes.
 *
 * Tests a client against data that is not what it expects: garbage instead of a protocol
 * greeting, or more of it than it can hold. The bytes are streamed one chunk at a time, so any
 * length costs the host and the plugin one chunk of memory.
 */
#include <cynic/plugin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Small enough for any thread's stack: the host copies the bytes before `send` returns. */
#define RANDOM_CHUNK 16384

typedef struct random_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    uint64_t length;
} random_instance;

/* Per connection: connections run on several threads at once, so each has its own generator. */
typedef struct random_conn {
    const cynic_host *host;
    uint64_t remaining;
    uint64_t generator;
} random_conn;

static const cynic_param random_params[] = {
    {"length", CYNIC_TYPE_UINT64, "7", "How many random bytes to send before closing."},
};

/* SplitMix64: fast, and random enough for test data; the bytes need not be secret. */
static uint64_t random_next(uint64_t *generator) {
    uint64_t z = (*generator += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void *random_create(const cynic_host *host) {
    random_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void random_destroy(void *instance) {
    free(instance);
}

static const char *random_configure(void *instance, uint64_t length) {
    random_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    self->length = length;
    return NULL;
}

/* Sends the next chunk and asks to be called back once it is out, or closes when all is sent. */
static void random_send_next(random_conn *state, cynic_conn *conn) {
    if (state->remaining == 0) {
        state->host->close(conn);
        return;
    }
    uint8_t chunk[RANDOM_CHUNK];
    size_t length = state->remaining < RANDOM_CHUNK ? (size_t)state->remaining : RANDOM_CHUNK;
    for (size_t i = 0; i < length; i += sizeof(uint64_t)) {
        uint64_t word = random_next(&state->generator);
        memcpy(chunk + i, &word, length - i < sizeof word ? length - i : sizeof word);
    }
    state->remaining -= length;
    state->host->send(conn, chunk, length);
    state->host->then(conn, 0);
}

static void *random_conn_open(void *instance, cynic_conn *conn) {
    random_instance *self = instance;
    random_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        self->host->log(conn, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(conn);
        return NULL;
    }
    state->host = self->host;
    state->remaining = self->length;
    /* Should getrandom fail, the address still gives each connection different bytes. */
    state->generator = (uint64_t)(uintptr_t)state;
    (void)getrandom(&state->generator, sizeof state->generator, 0);
    random_send_next(state, conn);
    return state;
}

static void random_conn_resume(void *state, cynic_conn *conn, uint64_t tag) {
    (void)tag;
    random_send_next(state, conn);
}

/* A peer that shut down its writing side may still read: send all `length` bytes anyway. (Left
 * NULL, the host would close after the chunk in flight.) */
static void random_conn_peer_closed(void *state, cynic_conn *conn) {
    (void)state;
    (void)conn;
}

static void random_conn_end(void *state, cynic_conn *conn) {
    (void)conn;
    free(state);
}

static const cynic_plugin random_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "random",
    .description = "Sends `length` random bytes, then closes.",
    .default_port = 2021,
    .params = random_params,
    .param_count = sizeof random_params / sizeof random_params[0],
    .configure = CYNIC_CONFIGURE(random_configure),
    .create = random_create,
    .destroy = random_destroy,
    .conn_open = random_conn_open,
    .conn_data = NULL, /* whatever the client sends is read and discarded */
    .conn_resume = random_conn_resume,
    .conn_peer_closed = random_conn_peer_closed,
    .conn_end = random_conn_end,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &random_plugin;
}
