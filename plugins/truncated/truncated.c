/*
 * truncated — announces a Content-Length, sends less, then closes.
 *
 * The server died, or a proxy timed out, in the middle of a body: the headers promise
 * `announced` bytes and only `sent` arrive before the connection ends. A client that trusts the
 * end of the connection more than the length it was given takes a partial file for a whole one;
 * a careful one reports the shortfall (curl: exit 18, "transfer closed with 990 bytes remaining to
 * read"). The body is streamed a chunk at a time, so a large `sent` costs no memory.
 */
#include <cynic/plugin.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small enough for any thread's stack: the host copies the bytes before `send` returns. */
#define TRUNCATED_CHUNK 16384

typedef struct truncated_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    uint64_t announced;
    uint64_t sent;
} truncated_instance;

typedef struct truncated_conn {
    const truncated_instance *instance;
    uint64_t remaining; /* body bytes still to send */
} truncated_conn;

static const cynic_param truncated_params[] = {
    {"announced", CYNIC_TYPE_UINT64, "1000", "The Content-Length the response announces."},
    {"sent", CYNIC_TYPE_UINT64, "10",
     "How many body bytes are really sent before closing; less than `announced`."},
};

static void *truncated_create(const cynic_host *host) {
    truncated_instance *instance = malloc(sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void truncated_destroy(void *instance) {
    free(instance);
}

static const char *truncated_configure(void *instance, uint64_t announced, uint64_t sent) {
    truncated_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (sent >= announced) return "`sent` must be less than `announced`, or nothing is missing";
    self->announced = announced;
    self->sent = sent;
    return NULL;
}

/* Sends the next piece of body and asks to be called back once it is out; closes at the end. */
static void truncated_send_next(truncated_conn *state, cynic_conn *conn) {
    const cynic_host *host = state->instance->host;
    if (state->remaining == 0) {
        host->close(conn);
        return;
    }
    char chunk[TRUNCATED_CHUNK];
    size_t length = state->remaining < TRUNCATED_CHUNK ? (size_t)state->remaining : TRUNCATED_CHUNK;
    memset(chunk, 'x', length);
    state->remaining -= length;
    host->send(conn, chunk, length);
    host->then(conn, 0);
}

static void *truncated_conn_open(void *instance, cynic_conn *conn) {
    truncated_instance *self = instance;
    truncated_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        self->host->log(conn, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        self->host->reset(conn);
        return NULL;
    }
    state->instance = self;
    state->remaining = 0;
    return state;
}

static void truncated_conn_request(void *state, cynic_conn *conn,
                                   const cynic_http_request *request) {
    (void)request;
    truncated_conn *self = state;
    char head[160];
    int length = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\n"
                          "Content-Type: text/plain\r\n"
                          "Content-Length: %" PRIu64 "\r\n"
                          "\r\n",
                          self->instance->announced);
    self->instance->host->send(conn, head, (size_t)length);
    self->remaining = self->instance->sent;
    truncated_send_next(self, conn);
}

static void truncated_conn_resume(void *state, cynic_conn *conn, uint64_t tag) {
    (void)tag;
    truncated_send_next(state, conn);
}

static void truncated_conn_end(void *state, cynic_conn *conn) {
    (void)conn;
    free(state);
}

static const cynic_plugin truncated_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "truncated",
    .description = "Announces Content-Length `announced`, sends only `sent` body bytes, closes.",
    .default_port = 2004,
    .flags = CYNIC_PLUGIN_HTTP1,
    .params = truncated_params,
    .param_count = sizeof truncated_params / sizeof truncated_params[0],
    .configure = CYNIC_CONFIGURE(truncated_configure),
    .create = truncated_create,
    .destroy = truncated_destroy,
    .conn_open = truncated_conn_open,
    .conn_request = truncated_conn_request,
    .conn_resume = truncated_conn_resume,
    .conn_end = truncated_conn_end,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &truncated_plugin;
}
