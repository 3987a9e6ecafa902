/* http-json-c — the answer of cynic's http-json (plugins/http-json), written in C: what a
 * behaviour costs when no Swift runs in it. bench/run serves it beside the Swift one and nginx.
 *
 * The same bytes as http-json with its defaults: `200 OK`, Content-Type, Content-Length and a
 * Connection header saying whether the connection stays open, then {"message": "Hello, World!"};
 * a request that does not ask for keep-alive is answered, then the connection is closed.
 *
 *     cc -shared -fPIC -O2 -I include -o DIR/http-json-c.so bench/plugins/http-json-c.c
 *     cynic serve --plugin-dir DIR http-json-c --port 0
 *
 * bench/run also builds 50 copies with other names and ports for the start-up figure:
 * -DPLUGIN_NAME='"extra-07"' -DPLUGIN_PORT=2107 (default: "http-json-c", no default port).
 */
#include <cynic/plugin.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "http-json-c"
#endif
#ifndef PLUGIN_PORT
#define PLUGIN_PORT 0
#endif

#define BODY "{\"message\": \"Hello, World!\"}"
#define HEAD(connection) \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 28\r\nConnection: " \
    connection "\r\n\r\n"

static const char keep_alive[] = HEAD("keep-alive") BODY;
static const char closing[] = HEAD("close") BODY;
_Static_assert(sizeof BODY - 1 == 28, "Content-Length is the body's length");

/* The host's table: the same for every instance, valid while this plugin is loaded. */
static const cynic_host *host;

static void *create(const cynic_host *h) {
    if (host != h) host = h; /* the first instance writes it; later ones (other threads serve) only read */
    return NULL; /* stateless: no destroy, so NULL is a valid instance */
}

static void *conn_open(void *instance, cynic_conn *conn) {
    (void)instance;
    (void)conn;
    return NULL; /* wait for requests */
}

/* The next request comes once this answer is out, as in http-json. */
static void conn_request(void *state, cynic_conn *conn, const cynic_http_request *request) {
    (void)state;
    if (request->keep_alive) {
        host->send(conn, keep_alive, sizeof keep_alive - 1);
    } else {
        host->send(conn, closing, sizeof closing - 1);
        host->close(conn);
    }
}

static const cynic_plugin plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = PLUGIN_NAME,
    .description = "Answers with a small JSON document, as http-json does, from C.",
    .default_port = PLUGIN_PORT,
    .flags = CYNIC_PLUGIN_HTTP1,
    .create = create,
    .conn_open = conn_open,
    .conn_request = conn_request,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
