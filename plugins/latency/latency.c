/*
 * latency — a shaper that delays a connection's answer: its first byte, or every chunk.
 *
 * A far-away or busy server. In mode `first-byte` (the default) the first byte comes `ms` (plus
 * jitter) later than it would: the wait is queued when the connection opens, ahead of anything
 * the behaviour queues, so it is measured from the accept; it delays the answer to a request
 * sent at once, not every later one on the same connection.
 *
 * In mode `per-chunk` every send is delayed by the latency, as toxiproxy's latency toxic does: a
 * chunk leaves `ms` (plus its own jitter) after it was sent, in order, so chunks sent 1 ms
 * apart arrive about 1 ms apart, the latency later — the link is long, not slow. The chunks wait
 * in a FIFO and timers release them; a queued `wait` would delay everything behind it, adding
 * the delays up. Closes, resets and shutdowns travel the same FIFO, so none overtakes the bytes
 * before it.
 *
 * The jitter is random: `uniform` adds up to `jitter_ms`, `normal` adds a normal draw of
 * standard deviation `jitter_ms` (never below 0 ms in all), `lognormal` is WireMock's: the delay
 * is `ms` times e^(sigma·Z), so `ms` is its median and `sigma` its spread. With `seed` set, the
 * nth connection this shaper delays always draws the same values, chunk after chunk, so a
 * failing run can be repeated.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <cynic/plugin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Past these, a behaviour is sending faster than the chunks leave: the shaper queues a wait
 * until the oldest is due, so a behaviour streaming with `then` is held back instead of filling
 * the FIFO. The entry bound matters for a behaviour whose thens come at once because its waits
 * are counted here, not queued (see latency_wait). */
#define LATENCY_HELD_BYTES_HIGH CYNIC_PAIR_QUEUE_HIGH
#define LATENCY_HELD_ENTRIES_HIGH 4096u

typedef enum { LATENCY_FIRST_BYTE, LATENCY_PER_CHUNK } latency_mode;
typedef enum { LATENCY_UNIFORM, LATENCY_NORMAL, LATENCY_LOGNORMAL } latency_distribution;

typedef struct latency_instance {
    uint32_t ms;
    uint32_t jitter_ms;
    uint64_t seed;
    latency_mode mode;
    latency_distribution distribution;
    double sigma;
    /* The one field written after configure, from every connection thread: hence atomic. */
    atomic_uint_fast64_t connections;
} latency_instance;

/* The same table for every instance (plugin.h), and the pass-through of a connection without
 * state (first-byte mode) has no instance to read it from. */
static const cynic_host *latency_host;

/* A connection's own sequence: its first value is the one the connection drew before modes
 * and distributions existed, so a seed picks the same first-byte delays as it always did. */
typedef struct latency_random {
    uint64_t first;
    uint64_t drawn;
} latency_random;

typedef enum { LATENCY_SEND, LATENCY_CLOSE, LATENCY_RESET, LATENCY_SHUTDOWN_WRITE } latency_kind;

/* One delayed action; a send carries its bytes. */
typedef struct latency_entry {
    struct latency_entry *next;
    uint64_t due_us; /* CLOCK_MONOTONIC */
    latency_kind kind;
    size_t length;
    uint8_t bytes[];
} latency_entry;

/* A connection in per-chunk mode. */
typedef struct latency_conn {
    const latency_instance *instance;
    latency_random random; /* this connection's draws */
    uint64_t clock_us; /* when the behaviour's next action would run without the shaper */
    uint64_t last_due_us;
    uint64_t held_back_until_us; /* end of the wait queued to hold the behaviour back */
    latency_entry *head, *tail;
    /* Where held actions go: valid until conn_end returns, which passes on what is held. */
    cynic_conn *downstream;
    size_t held_bytes;
    size_t held_entries;
    bool dropped; /* over the hard bound: reset, everything after is dropped */
} latency_conn;

static const cynic_param latency_params[] = {
    {"ms", CYNIC_TYPE_UINT32, "100",
     "Milliseconds of delay: of each connection's first byte, or of every chunk (mode); the median for lognormal."},
    {"jitter_ms", CYNIC_TYPE_UINT32, "0",
     "Random extra milliseconds: up to this many (uniform), or the standard deviation (normal)."},
    {"seed", CYNIC_TYPE_UINT64, "0",
     "Makes the jitter reproducible: the same seed draws the same delays (0: random)."},
    {"mode", CYNIC_TYPE_STRING, "first-byte",
     "first-byte: delay the start of the answer; per-chunk: delay every send, in order."},
    {"distribution", CYNIC_TYPE_STRING, "uniform",
     "The jitter's: uniform (0 to jitter_ms), normal (sd jitter_ms), lognormal (ms * e^(sigma*Z))."},
    {"sigma", CYNIC_TYPE_DOUBLE, "0", "lognormal's spread, as in WireMock (0.1: tight, 1: wide)."},
};

/* SplitMix64 at position `n` of the sequence `seed` starts: any connection's draw, directly. */
static uint64_t latency_draw(uint64_t seed, uint64_t n) {
    uint64_t z = seed + (n + 1) * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t latency_next(latency_random *state) {
    uint64_t n = state->drawn++;
    return n == 0 ? state->first : latency_draw(state->first, n);
}

/* Uniform in (0, 1]: never 0, so its logarithm is finite. */
static double latency_unit(latency_random *state) {
    return ((double)(latency_next(state) >> 11) + 1.0) / 9007199254740992.0;
}

/* A standard normal draw, by Box-Muller (one of its pair is enough). */
static double latency_gaussian(latency_random *state) {
    double radius = sqrt(-2.0 * log(latency_unit(state)));
    return radius * cos(2.0 * 3.14159265358979323846 * latency_unit(state));
}

/* One delay, in microseconds, drawn from the connection's sequence. */
static uint64_t latency_delay_us(const latency_instance *self, latency_random *random) {
    double ms = self->ms;
    switch (self->distribution) {
    case LATENCY_UNIFORM:
        if (self->jitter_ms > 0) ms += (double)(latency_next(random) % ((uint64_t)self->jitter_ms + 1));
        break;
    case LATENCY_NORMAL:
        if (self->jitter_ms > 0) ms += self->jitter_ms * latency_gaussian(random);
        break;
    case LATENCY_LOGNORMAL:
        if (self->sigma > 0) ms *= exp(self->sigma * latency_gaussian(random));
        break;
    }
    if (!(ms > 0)) return 0;            /* a normal draw below -ms, or NaN: no delay */
    if (ms > 86400000.0 * 365) ms = 86400000.0 * 365; /* a lognormal tail: a year is plenty */
    return (uint64_t)(ms * 1000.0);
}

/* Whether a connection draws at all: with no jitter every delay is `ms`, and no counter moves. */
static bool latency_jittered(const latency_instance *self) {
    return self->distribution == LATENCY_LOGNORMAL ? self->sigma > 0 : self->jitter_ms > 0;
}

/* The start of a connection's sequence: the nth of the seed's, or fresh bytes unseeded. */
static latency_random latency_connection_random(latency_instance *self) {
    latency_random random = {0, 0};
    if (!latency_jittered(self)) return random;
    uint64_t n = atomic_fetch_add_explicit(&self->connections, 1, memory_order_relaxed);
    random.first = latency_draw(self->seed, n);
    /* Should getrandom fail, the draw still differs per connection. */
    if (self->seed == 0) (void)getrandom(&random.first, sizeof random.first, 0);
    return random;
}

static void *latency_create(const cynic_host *host) {
    /* Written by the first instance, before any connection of this plugin can read it; a later
     * instance (made for an API change while other connections run on other threads) finds the
     * same table there and only reads it. Writing it again would race with those readers
     * (ThreadSanitizer saw it), though the value never changes. */
    if (latency_host != host) latency_host = host;
    latency_instance *instance = calloc(1, sizeof *instance);
    if (instance != NULL) atomic_init(&instance->connections, 0);
    return instance;
}

static void latency_destroy(void *instance) {
    free(instance);
}

static const char *latency_configure(void *instance, uint32_t ms, uint32_t jitter_ms, uint64_t seed,
                                     const char *mode, const char *distribution, double sigma) {
    latency_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (strcmp(mode, "first-byte") == 0) self->mode = LATENCY_FIRST_BYTE;
    else if (strcmp(mode, "per-chunk") == 0) self->mode = LATENCY_PER_CHUNK;
    else return "mode: expected first-byte or per-chunk";
    if (strcmp(distribution, "uniform") == 0) self->distribution = LATENCY_UNIFORM;
    else if (strcmp(distribution, "normal") == 0) self->distribution = LATENCY_NORMAL;
    else if (strcmp(distribution, "lognormal") == 0) self->distribution = LATENCY_LOGNORMAL;
    else return "distribution: expected uniform, normal or lognormal";
    if (!(sigma >= 0) || sigma > 10) return "sigma: expected a number from 0 to 10";
    if (self->distribution == LATENCY_LOGNORMAL && jitter_ms > 0)
        return "jitter_ms does not apply to lognormal: its spread is sigma, its median ms";
    if (self->distribution != LATENCY_LOGNORMAL && sigma > 0)
        return "sigma applies to lognormal only: set distribution=lognormal, or use jitter_ms";
    self->ms = ms;
    self->jitter_ms = jitter_ms;
    self->seed = seed;
    self->sigma = sigma;
    return NULL;
}

static uint64_t latency_now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* Milliseconds until `due_us`, rounded up: a timer or wait never ends early. */
static uint64_t latency_ms_until(uint64_t due_us, uint64_t now_us) {
    return due_us > now_us ? (due_us - now_us + 999) / 1000 : 0;
}

static void *latency_conn_open(void *instance, cynic_conn *downstream) {
    latency_instance *self = instance;
    if (self->mode == LATENCY_FIRST_BYTE) {
        /* Everything happens here: the wait goes first in the queue, and every later action
         * passes through unchanged, so the connection needs no state. */
        latency_random random = latency_connection_random(self);
        uint64_t delay_ms = latency_ms_until(latency_delay_us(self, &random), 0);
        if (delay_ms > 0) latency_host->wait(downstream, delay_ms);
        return NULL;
    }
    latency_conn *state = calloc(1, sizeof *state);
    if (state == NULL) {
        latency_host->log(downstream, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        latency_host->reset(downstream);
        return NULL;
    }
    state->instance = self;
    state->downstream = downstream;
    state->random = latency_connection_random(self);
    state->clock_us = latency_now_us();
    return state;
}

/* The behaviour's clock never lags the real one: an action asked for now runs now at the
 * earliest, however long ago its last wait ended. */
static void latency_catch_up(latency_conn *self, uint64_t now_us) {
    if (self->clock_us < now_us) self->clock_us = now_us;
}

static void latency_free_entries(latency_conn *self) {
    while (self->head != NULL) {
        latency_entry *next = self->head->next;
        free(self->head);
        self->head = next;
    }
    self->tail = NULL;
    self->held_bytes = 0;
    self->held_entries = 0;
}

/* Over the hard bound (as much as the host itself would queue for one connection) there is no
 * good answer left: the connection is reset rather than sent with a hole in it. */
static void latency_drop_connection(latency_conn *self, cynic_conn *downstream) {
    char message[160];
    snprintf(message, sizeof message,
             "latency per-chunk: over %u bytes held back, the behaviour sends faster than the link lets "
             "through; resetting the connection",
             (unsigned)CYNIC_MAX_QUEUED_BYTES);
    latency_host->log(downstream, CYNIC_LOG_ERROR, message);
    latency_free_entries(self);
    self->dropped = true;
    latency_host->cancel_pending(downstream);
    latency_host->reset(downstream);
}

/* Holds the action back in the FIFO until its due time, and sets the timer that releases it. */
static void latency_hold(latency_conn *self, cynic_conn *downstream, latency_kind kind,
                         const uint8_t *bytes, size_t length) {
    if (self->dropped) return;
    if (self->held_bytes + length > CYNIC_MAX_QUEUED_BYTES) {
        latency_drop_connection(self, downstream);
        return;
    }
    latency_entry *entry = malloc(sizeof *entry + length);
    if (entry == NULL) {
        latency_drop_connection(self, downstream);
        return;
    }
    uint64_t now_us = latency_now_us();
    latency_catch_up(self, now_us);
    uint64_t due_us = self->clock_us + latency_delay_us(self->instance, &self->random);
    /* Order is kept: a chunk that drew less jitter leaves right after the one before it. */
    if (due_us < self->last_due_us) due_us = self->last_due_us;
    self->last_due_us = due_us;
    entry->next = NULL;
    entry->due_us = due_us;
    entry->kind = kind;
    entry->length = length;
    if (length > 0) memcpy(entry->bytes, bytes, length);
    if (self->tail != NULL) self->tail->next = entry;
    else self->head = entry;
    self->tail = entry;
    self->held_bytes += length;
    self->held_entries += 1;
    latency_host->after(downstream, latency_ms_until(due_us, now_us), 0);

    bool over = self->held_bytes > LATENCY_HELD_BYTES_HIGH || self->held_entries > LATENCY_HELD_ENTRIES_HIGH;
    if (over && self->held_back_until_us <= now_us) {
        /* Until the oldest is due: what the behaviour queues behind this wait (its `then`)
         * comes no sooner, and no release is held up, since none is due before it ends. */
        self->held_back_until_us = self->head->due_us;
        latency_host->wait(downstream, latency_ms_until(self->head->due_us, now_us));
    }
}

static void latency_send(void *state, cynic_conn *downstream, const uint8_t *bytes, size_t length) {
    if (state == NULL) {
        latency_host->send(downstream, bytes, length);
        return;
    }
    if (length > 0) latency_hold(state, downstream, LATENCY_SEND, bytes, length);
}

/* The behaviour's pause moves its clock, so what it sends after comes that much later. It is
 * queued too when nothing is held, so a `then` behind it still comes after it; while chunks are
 * held it is not, since a queued wait would hold up their release — a `then` then comes early,
 * and the held-bytes bound above keeps a behaviour streaming so from running away. */
static void latency_wait(void *state, cynic_conn *downstream, uint64_t milliseconds) {
    latency_conn *self = state;
    if (self == NULL) {
        latency_host->wait(downstream, milliseconds);
        return;
    }
    if (self->dropped) return;
    latency_catch_up(self, latency_now_us());
    self->clock_us += milliseconds * 1000;
    if (self->head == NULL) latency_host->wait(downstream, milliseconds);
}

static void latency_close(void *state, cynic_conn *downstream) {
    if (state == NULL) latency_host->close(downstream);
    else latency_hold(state, downstream, LATENCY_CLOSE, NULL, 0);
}

static void latency_reset(void *state, cynic_conn *downstream) {
    if (state == NULL) latency_host->reset(downstream);
    else latency_hold(state, downstream, LATENCY_RESET, NULL, 0);
}

static void latency_shutdown_write(void *state, cynic_conn *downstream) {
    if (state == NULL) latency_host->shutdown_write(downstream);
    else latency_hold(state, downstream, LATENCY_SHUTDOWN_WRITE, NULL, 0);
}

/* Takes the oldest held action out of the FIFO and performs it. */
static void latency_release_oldest(latency_conn *self, cynic_conn *downstream) {
    latency_entry *entry = self->head;
    self->head = entry->next;
    if (self->head == NULL) self->tail = NULL;
    self->held_bytes -= entry->length;
    self->held_entries -= 1;
    switch (entry->kind) {
    case LATENCY_SEND: latency_host->send(downstream, entry->bytes, entry->length); break;
    case LATENCY_CLOSE: latency_host->close(downstream); break;
    case LATENCY_RESET: latency_host->reset(downstream); break;
    case LATENCY_SHUTDOWN_WRITE: latency_host->shutdown_write(downstream); break;
    }
    free(entry);
}

/* A release timer: everything due by now leaves, oldest first. Timers fire late on a busy
 * machine, never early, so one may find several due, and a later one none. */
static void latency_timer(void *state, cynic_conn *downstream, uint64_t tag) {
    (void)tag;
    latency_conn *self = state;
    if (self == NULL) return;
    uint64_t now_us = latency_now_us();
    while (self->head != NULL && self->head->due_us <= now_us) latency_release_oldest(self, downstream);
}

/* The connection ended, or this shaper was taken off it while it goes on (a toxic deleted or
 * changed through the API). Then what is still held leaves now, in order, as toxiproxy's latency
 * toxic lets its chunk go when it is interrupted: dropping it would leave the client waiting for
 * an answer that never comes. When the connection itself has ended, these sends return
 * CYNIC_ERR_CLOSED and nothing goes out. */
static void latency_conn_end(void *state) {
    latency_conn *self = state;
    if (self == NULL) return;
    while (self->head != NULL) latency_release_oldest(self, self->downstream);
    free(self);
}

static const cynic_shaper latency_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = latency_conn_open,
    .send = latency_send,
    .wait = latency_wait,
    .close = latency_close,
    .reset = latency_reset,
    .shutdown_write = latency_shutdown_write,
    .timer = latency_timer,
    .conn_end = latency_conn_end,
};

static const void *latency_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &latency_shaper : NULL;
}

static const cynic_plugin latency_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "latency",
    .description = "Shaper: delays each connection's first byte, or every chunk (mode), by ms plus jitter.",
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
