/*
 * chunked-malformed — a chunked response whose second chunk-size line is not a number.
 *
 * Tests a client's chunked-decoding error path: the headers and a first chunk are valid, so the
 * client has started handing the body to its caller when the stream turns to garbage. A good
 * client fails the request instead of returning the first chunk as the whole body (curl 7.88:
 * exit 56, "Illegal or missing hexadecimal sequence in chunked-encoding").
 */
#include <cynic/plugin.h>

/* "zz" where the size of the next chunk, in hex, should be. No terminating "0\r\n\r\n" follows,
 * so a lenient decoder cannot reach a clean end either. */
static const char chunked_malformed_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "6\r\n"
    "hello\n\r\n"
    "zz\r\n"
    "this chunk has no size\r\n";

/* The instance is the host table itself: it is all a connection needs, it outlives every
 * connection, and there is nothing to free. */
static void *chunked_malformed_create(const cynic_host *host) {
    return (void *)host;
}

static void *chunked_malformed_conn_open(void *instance, cynic_conn *conn) {
    (void)conn;
    return instance;
}

static void chunked_malformed_conn_request(void *state, cynic_conn *conn,
                                           const cynic_http_request *request) {
    (void)request;
    const cynic_host *host = state;
    host->send(conn, chunked_malformed_response, sizeof chunked_malformed_response - 1);
    host->close(conn);
}

static const cynic_plugin chunked_malformed_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "chunked-malformed",
    .description = "Chunked response with one valid chunk, then an invalid chunk size; closes.",
    .default_port = 2005,
    .flags = CYNIC_PLUGIN_HTTP1,
    .create = chunked_malformed_create,
    .conn_open = chunked_malformed_conn_open,
    .conn_request = chunked_malformed_conn_request,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &chunked_malformed_plugin;
}
