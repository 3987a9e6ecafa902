/*
 * garbage-http — answers with a response that is not valid HTTP, then closes.
 *
 * Tests a client's response parser on input that is almost, or not at all, HTTP — a
 * misconfigured proxy, a service speaking another protocol on the port, a corrupted stream.
 * `mode` picks the defect:
 *
 *   status-line  "HTTP/1.1 OK-ish": no status code.
 *                (curl 7.88: exit 1, "Unsupported HTTP version in response")
 *   header       a valid status line, then a header line without a colon.
 *                (curl 7.88: exit 8, "Header without colon")
 *   binary       random bytes where the status line should be.
 *                (curl 7.88: exit 1, "Received HTTP/0.9 when not allowed")
 *
 * A good client fails the request with a parse error rather than guessing or hanging.
 */
#include <cynic/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef enum {
    GARBAGE_HTTP_STATUS_LINE,
    GARBAGE_HTTP_HEADER,
    GARBAGE_HTTP_BINARY,
} garbage_http_mode;

/* Indexed by garbage_http_mode. */
static const char *const garbage_http_mode_names[] = {"status-line", "header", "binary"};
#define GARBAGE_HTTP_MODE_COUNT (sizeof garbage_http_mode_names / sizeof garbage_http_mode_names[0])

/* Whole responses; the connection closes after them, so none needs a Content-Length. */
static const char garbage_http_status_line[] =
    "HTTP/1.1 OK-ish\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "no status code\n";
static const char garbage_http_header[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "This header line has no colon\r\n"
    "\r\n"
    "bad header\n";

/* Enough random bytes to fill any client's first read of a status line. */
#define GARBAGE_HTTP_BINARY_LENGTH 64

typedef struct garbage_http_instance {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    garbage_http_mode mode;
    char error[160]; /* configure's message: the host reads it until the instance is destroyed */
} garbage_http_instance;

static const cynic_param garbage_http_params[] = {
    {"mode", CYNIC_TYPE_STRING, "status-line",
     "What is wrong: status-line (no status code), header (no colon) or binary (random bytes)."},
};

static void *garbage_http_create(const cynic_host *host) {
    garbage_http_instance *instance = calloc(1, sizeof *instance);
    if (instance != NULL) instance->host = host;
    return instance;
}

static void garbage_http_destroy(void *instance) {
    free(instance);
}

static const char *garbage_http_configure(void *instance, const char *mode) {
    garbage_http_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    for (size_t i = 0; i < GARBAGE_HTTP_MODE_COUNT; i++) {
        if (mode != NULL && strcmp(mode, garbage_http_mode_names[i]) == 0) {
            self->mode = (garbage_http_mode)i;
            return NULL;
        }
    }
    snprintf(self->error, sizeof self->error,
             "unknown mode \"%.40s\": use status-line, header or binary", mode ? mode : "");
    return self->error;
}

/* The instance is read-only once configured, so it doubles as every connection's state. */
static void *garbage_http_conn_open(void *instance, cynic_conn *conn) {
    (void)conn;
    return instance;
}

static void garbage_http_conn_request(void *state, cynic_conn *conn,
                                 const cynic_http_request *request) {
    (void)request;
    garbage_http_instance *self = state;
    switch (self->mode) {
    case GARBAGE_HTTP_STATUS_LINE:
        self->host->send(conn, garbage_http_status_line, sizeof garbage_http_status_line - 1);
        break;
    case GARBAGE_HTTP_HEADER:
        self->host->send(conn, garbage_http_header, sizeof garbage_http_header - 1);
        break;
    case GARBAGE_HTTP_BINARY: {
        /* Fresh bytes per response; should getrandom fail, zeros are garbage enough. */
        uint8_t bytes[GARBAGE_HTTP_BINARY_LENGTH] = {0};
        (void)getrandom(bytes, sizeof bytes, 0);
        self->host->send(conn, bytes, sizeof bytes);
        break;
    }
    }
    self->host->close(conn);
}

static const cynic_plugin garbage_http_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "garbage-http",
    .description = "Answers with an invalid HTTP response (see `mode`), then closes.",
    .default_port = 2006,
    .flags = CYNIC_PLUGIN_HTTP1,
    .params = garbage_http_params,
    .param_count = sizeof garbage_http_params / sizeof garbage_http_params[0],
    .configure = CYNIC_CONFIGURE(garbage_http_configure),
    .create = garbage_http_create,
    .destroy = garbage_http_destroy,
    .conn_open = garbage_http_conn_open,
    .conn_request = garbage_http_conn_request,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &garbage_http_plugin;
}
