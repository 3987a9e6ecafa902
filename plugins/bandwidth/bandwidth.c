/*
 * bandwidth — a shaper that caps a connection's sending rate at `bytes_per_second`.
 *
 * A slow link: a download that takes minutes, a client whose overall timeout fires while data
 * is still arriving. Sends are cut into pieces of 50 ms worth of bytes, with waits between them
 * so that the bytes leave on schedule.
 *
 * The shaper sees actions when they are queued, not when they run, so it keeps its own clock:
 * the time the waits queued so far take. The bytes forwarded so far are due at the rate by some
 * time on that clock; whenever the next piece would put them more than one 50 ms slot ahead of
 * it, a wait lets the clock catch up. Many small sends are paced by the same account as one
 * large one. Timers fire late on a busy machine, and sending takes time too: when the real
 * clock has run ahead of the queue's, the queue's clock jumps to it, so lost time is made up
 * (by at most one slot's burst) instead of lowering the rate.
 *
 * With `shared` set, every connection of the service draws on one bucket: the rate is the
 * service's, as on a link they all cross, and a connection alone still gets all of it. The link
 * is an account of when it is next free, booked piece by piece under a mutex, since one instance
 * serves every connection and they run on several threads: a piece leaves when its connection's
 * queue reaches it or when the link is free, whichever is later, and keeps the link for its
 * length at the rate. Pieces are booked when the behaviour queues them, so a connection that
 * queues a large answer at once books the link ahead, and the others' pieces come after it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <cynic/plugin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The pacing granularity: bursts of at most this much time's worth of bytes. */
/* 50 ms: coarse enough that a timer firing a little late on a busy machine costs a few percent
 * of the rate, fine enough that the stream looks steady. */
#define BANDWIDTH_SLOT_US 50000u

typedef struct bandwidth_instance {
    const cynic_host *host; /* the shaper's conn_open is not given the host table */
    uint64_t bytes_per_second;
    size_t piece; /* bytes in one slot, at least 1 */
    bool shared;
    /* shared: the one account every connection's thread books on, under `link_lock`. */
    pthread_mutex_t link_lock;
    double link_free_us; /* CLOCK_MONOTONIC when the bytes booked so far have left */
} bandwidth_instance;

typedef struct bandwidth_conn {
    bandwidth_instance *instance; /* shared: its link account is written by every connection */
    uint64_t opened_us; /* CLOCK_MONOTONIC at the open */
    uint64_t clock_us; /* the queue's time since the open: queued waits, or the real time if later */
    uint64_t start_us; /* when `sent` started counting: the rate owes no credit for idle time */
    uint64_t sent;     /* bytes forwarded since start_us */
} bandwidth_conn;

static const cynic_param bandwidth_params[] = {
    {"bytes_per_second", CYNIC_TYPE_UINT64, "10240", "The most bytes sent in any second."},
    {"shared", CYNIC_TYPE_BOOL, "false",
     "One bucket for every connection of the service together (false: one per connection)."},
};

static void *bandwidth_create(const cynic_host *host) {
    bandwidth_instance *instance = calloc(1, sizeof *instance);
    if (instance == NULL) return NULL;
    if (pthread_mutex_init(&instance->link_lock, NULL) != 0) {
        free(instance);
        return NULL;
    }
    instance->host = host;
    return instance;
}

static void bandwidth_destroy(void *instance) {
    bandwidth_instance *self = instance;
    pthread_mutex_destroy(&self->link_lock);
    free(self);
}

static const char *bandwidth_configure(void *instance, uint64_t bytes_per_second, bool shared) {
    bandwidth_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (bytes_per_second == 0) return "bytes_per_second must be at least 1";
    self->bytes_per_second = bytes_per_second;
    uint64_t piece = bytes_per_second / (1000000u / BANDWIDTH_SLOT_US);
    self->piece = piece == 0 ? 1 : piece > SIZE_MAX ? SIZE_MAX : (size_t)piece;
    self->shared = shared;
    return NULL;
}

static uint64_t bandwidth_now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static void *bandwidth_conn_open(void *instance, cynic_conn *downstream) {
    bandwidth_instance *self = instance;
    bandwidth_conn *state = calloc(1, sizeof *state);
    if (state == NULL) {
        self->host->log(downstream, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(downstream);
        return NULL;
    }
    state->instance = self;
    state->opened_us = bandwidth_now_us();
    return state;
}

/* When the bytes forwarded so far plus `more` may have left at the rate. */
static uint64_t bandwidth_due_us(const bandwidth_conn *state, uint64_t more) {
    return state->start_us + (state->sent + more) * 1000000u / state->instance->bytes_per_second;
}

/* Real time ahead of the queue's clock is time the queue lost (late timers, the send itself) or
 * spent idle; the shaper cannot tell which. Up to a slot's worth of it is made up; beyond that
 * the account keeps exactly one slot of credit (a token bucket one slot deep), so a stall costs
 * only its excess over a slot, and an idle link never banks a burst bigger than one slot. */
static void bandwidth_catch_up(bandwidth_conn *self) {
    uint64_t real_us = bandwidth_now_us() - self->opened_us;
    if (real_us <= self->clock_us) return;
    self->clock_us = real_us;
    if (bandwidth_due_us(self, 0) + BANDWIDTH_SLOT_US < self->clock_us) {
        self->start_us = self->clock_us - BANDWIDTH_SLOT_US;
        self->sent = 0;
    }
}

/* When a piece of `length` bytes, reaching the link at `ready_us`, may leave: booked on the
 * shared account. An idle link banks at most one slot of credit, as a connection's own does. */
static double bandwidth_book_link(bandwidth_instance *link, double ready_us, size_t length) {
    double now_us = (double)bandwidth_now_us();
    pthread_mutex_lock(&link->link_lock);
    if (link->link_free_us < now_us - BANDWIDTH_SLOT_US) link->link_free_us = now_us - BANDWIDTH_SLOT_US;
    double leaves_us = ready_us > link->link_free_us ? ready_us : link->link_free_us;
    link->link_free_us = leaves_us + (double)length * 1e6 / (double)link->bytes_per_second;
    pthread_mutex_unlock(&link->link_lock);
    return leaves_us;
}

/* Shared: each piece waits, on its own connection's queue, for the time the link was booked. */
static void bandwidth_send_shared(bandwidth_conn *self, cynic_conn *downstream, const uint8_t *bytes,
                                  size_t length) {
    bandwidth_instance *instance = self->instance;
    uint64_t real_us = bandwidth_now_us() - self->opened_us;
    if (real_us > self->clock_us) self->clock_us = real_us;
    while (length > 0) {
        size_t piece = length < instance->piece ? length : instance->piece;
        double ready_us = (double)(self->opened_us + self->clock_us);
        double leaves_us = bandwidth_book_link(instance, ready_us, piece);
        if (leaves_us > ready_us) {
            uint64_t wait_ms = (uint64_t)ceil((leaves_us - ready_us) / 1000); /* never early */
            instance->host->wait(downstream, wait_ms);
            self->clock_us += wait_ms * 1000;
        }
        instance->host->send(downstream, bytes, piece);
        bytes += piece;
        length -= piece;
    }
}

static void bandwidth_send(void *state, cynic_conn *downstream, const uint8_t *bytes,
                           size_t length) {
    bandwidth_conn *self = state;
    if (self == NULL) return; /* out of memory at the open: the connection is being reset */
    const bandwidth_instance *instance = self->instance;
    if (instance->shared) {
        bandwidth_send_shared(self, downstream, bytes, length);
        return;
    }
    bandwidth_catch_up(self);
    while (length > 0) {
        size_t piece = length < instance->piece ? length : instance->piece;
        uint64_t due_us = bandwidth_due_us(self, 0);
        if (due_us > self->clock_us &&
            bandwidth_due_us(self, piece) > self->clock_us + BANDWIDTH_SLOT_US) {
            uint64_t wait_ms = (due_us - self->clock_us + 999) / 1000; /* never early */
            instance->host->wait(downstream, wait_ms);
            self->clock_us += wait_ms * 1000;
        }
        instance->host->send(downstream, bytes, piece);
        self->sent += piece;
        bytes += piece;
        length -= piece;
    }
}

/* The behaviour's own wait passes the time too: it counts towards the rate, but an idle link
 * banks no credit, or the bytes after a long pause would leave in one burst. */
static void bandwidth_wait(void *state, cynic_conn *downstream, uint64_t milliseconds) {
    bandwidth_conn *self = state;
    if (self == NULL) return;
    self->instance->host->wait(downstream, milliseconds);
    self->clock_us += milliseconds * 1000;
    if (bandwidth_due_us(self, 0) < self->clock_us) {
        self->start_us = self->clock_us;
        self->sent = 0;
    }
}

static void bandwidth_conn_end(void *state) {
    free(state);
}

static const cynic_shaper bandwidth_shaper = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_shaper),
    .conn_open = bandwidth_conn_open,
    .send = bandwidth_send,
    .wait = bandwidth_wait,
    .conn_end = bandwidth_conn_end,
};

static const void *bandwidth_get_extension(const char *id) {
    return strcmp(id, CYNIC_SHAPER_ID) == 0 ? &bandwidth_shaper : NULL;
}

static const cynic_plugin bandwidth_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "bandwidth",
    .description = "Shaper: caps each connection's sending rate, or all of them together (shared), at bytes_per_second.",
    .params = bandwidth_params,
    .param_count = sizeof bandwidth_params / sizeof bandwidth_params[0],
    .configure = CYNIC_CONFIGURE(bandwidth_configure),
    .create = bandwidth_create,
    .destroy = bandwidth_destroy,
    .get_extension = bandwidth_get_extension,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &bandwidth_plugin;
}
