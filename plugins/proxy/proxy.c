/*
 * proxy — a transparent TCP proxy in front of a real server.
 *
 * Every client connection gets an upstream connection of its own, to `upstream`, opened by the
 * host (capability "cynic.connect/1"); the bytes pass through unchanged both ways. What one side
 * does to its connection reaches the other: a half-close (shutdown(SHUT_WR)) is forwarded as a
 * half-close, a reset as a reset. Put shapers on the service to make a real server slow, choppy or
 * flaky without touching it; `unreachable` says what a client gets when the server is down.
 *
 * Bytes the client sends before the upstream is connected are queued on the upstream by the
 * host, and sent once it is. The host's pair flow control keeps memory flat: a connection is not
 * read while the other side of the pair has more than CYNIC_PAIR_QUEUE_HIGH bytes queued.
 *
 * Built with SwiftPM like every shipped plugin, and with `cc -shared -fPIC -I include` against the
 * header alone.
 */
#include <cynic/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a client gets when its upstream connection cannot be established. */
typedef enum {
    UNREACHABLE_CLOSE, /* a FIN, as HAProxy or Envoy in TCP mode give; a lingering close */
    UNREACHABLE_RESET, /* a TCP RST */
    UNREACHABLE_HANG,  /* nothing: held, read and discarded, for a day at most */
} unreachable_mode;

/* A day, as noresponse holds: a hanging client without a timeout is not held forever. */
#define HANG_MS 86400000u
/* How long a client told EOF may go on sending before the connection is closed. Closing a socket
 * with unread bytes in it makes the kernel send an RST instead of the FIN, so `close` shuts down
 * writing first and reads (and drops) what still comes, as Apache's lingering close does. */
#define LINGER_MS 2000u
/* How long `reset` waits for a client that has sent nothing yet: an RST before the client's first
 * write races its connect and its request, and the client then reports anything from "couldn't
 * connect" to a failed send; after its request it reports what a user meets, "connection reset
 * by peer" on its read (the `reset` behaviour waits the same way). */
#define RESET_WAIT_MS 200u

typedef struct {
    const cynic_host *host;
    const cynic_connect *connect;
    char *upstream;
    unreachable_mode unreachable;
} proxy_instance;

/* One client connection and its upstream; the upstream's events run on the client's thread,
 * never overlapping its callbacks, so this needs no lock. */
typedef struct {
    const proxy_instance *self;
    cynic_conn *client;
    cynic_conn *upstream;  /* NULL once it has ended (or could not be opened) */
    bool client_eof;       /* the client shut down its sending side */
    bool upstream_eof;     /* the upstream did */
    bool client_spoke;     /* the client has sent something */
    bool reset_pending;    /* unreachable=reset, waiting for the client's first bytes */
} proxy_conn;

static void *proxy_create(const cynic_host *host) {
    proxy_instance *self = calloc(1, sizeof *self);
    if (self != NULL) self->host = host;
    return self;
}

static void proxy_destroy(void *instance) {
    proxy_instance *self = instance;
    free(self->upstream);
    free(self);
}

/* "host:port" with a port of 1 to 65535 ("[::1]:5432" included), or "unix:/path", read by the
 * host's rules (UpstreamAddress): the host reads the address again at each open, and this
 * catches a typo before any client comes, rather than a refused open at every connection. */
static bool address_readable(const char *address) {
    if (strncmp(address, "unix:", 5) == 0) return address[5] == '/';
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0') return false;
    long port = 0;
    for (const char *digit = colon + 1; *digit != '\0'; digit++) {
        if (*digit < '0' || *digit > '9' || port > 65535) return false;
        port = port * 10 + (*digit - '0');
    }
    if (port < 1 || port > 65535) return false;
    const char *host = address, *host_end = colon;
    if (*host == '[') {
        /* Brackets hold an IPv6 address, and end right before the port's colon. */
        if (host_end - host < 3 || host_end[-1] != ']') return false;
        host++;
        host_end--;
    }
    for (const char *c = host; c < host_end; c++) {
        unsigned char byte = (unsigned char)*c;
        if (byte <= 0x20 || byte >= 0x7f || byte == '/' || byte == '[' || byte == ']') return false;
        if (byte == ':' && address[0] != '[') return false; /* an IPv6 address needs its brackets */
    }
    return true;
}

static const char *proxy_configure(void *instance, const char *upstream, const char *unreachable) {
    proxy_instance *self = instance;
    if (upstream == NULL) return "upstream: required, the server to proxy to ('host:port' or 'unix:/path')";
    if (!address_readable(upstream)) {
        return "upstream: expected 'host:port' (port 1-65535; an IPv6 address in brackets) or 'unix:/path'";
    }
    if (strcmp(unreachable, "close") == 0) self->unreachable = UNREACHABLE_CLOSE;
    else if (strcmp(unreachable, "reset") == 0) self->unreachable = UNREACHABLE_RESET;
    else if (strcmp(unreachable, "hang") == 0) self->unreachable = UNREACHABLE_HANG;
    else return "unreachable: expected close, reset or hang";

    const cynic_connect *connect = self->host->get_extension(CYNIC_CONNECT_ID);
    if (connect == NULL || connect->struct_size < offsetof(cynic_connect, open) + sizeof connect->open) {
        return "this cynic cannot open upstream connections (no cynic.connect/1): upgrade it";
    }
    self->connect = connect;
    free(self->upstream); /* configure runs once per instance, but costs nothing to make safe */
    self->upstream = strdup(upstream);
    return self->upstream == NULL ? "out of memory" : NULL;
}

/* The upstream will never carry the client's bytes: answer the client as `unreachable` says. */
static void answer_unreachable(proxy_conn *state) {
    const proxy_instance *self = state->self;
    switch (self->unreachable) {
    case UNREACHABLE_CLOSE:
        self->host->shutdown_write(state->client);
        self->host->wait(state->client, LINGER_MS);
        self->host->close(state->client);
        break;
    case UNREACHABLE_RESET:
        if (!state->client_spoke) {
            /* A wait, then the reset; the client's first bytes (or its FIN) cut the wait short. */
            state->reset_pending = true;
            self->host->wait(state->client, RESET_WAIT_MS);
        }
        self->host->reset(state->client);
        break;
    case UNREACHABLE_HANG:
        self->host->wait(state->client, HANG_MS);
        self->host->close(state->client);
        break;
    }
}

/* Both sides said they are done sending: the exchange is over. The close is queued after every
 * byte relayed to the client, so none is cut off; the host closes the upstream with the client
 * if it is still open. */
static void close_when_both_done(proxy_conn *state) {
    if (state->client_eof && state->upstream_eof) state->self->host->close(state->client);
}

static void upstream_connect_failed(void *raw, cynic_conn *upstream, int error) {
    proxy_conn *state = raw;
    char line[160];
    /* Debug, not a warning: pointing a proxy at a dead port is what `unreachable` is for. */
    snprintf(line, sizeof line, "upstream %s unreachable: %s", state->self->upstream, strerror(error));
    state->self->host->log(state->client, CYNIC_LOG_DEBUG, line);
    (void)upstream;
    state->upstream = NULL; /* `ended` follows; nothing the client sends can go anywhere now */
    answer_unreachable(state);
}

static void upstream_data(void *raw, cynic_conn *upstream, const uint8_t *bytes, size_t length) {
    proxy_conn *state = raw;
    const cynic_host *host = state->self->host;
    /* Dropping bytes would corrupt the stream; the pair flow control makes this all but
     * impossible, but if the host's bound on all connections is reached, end both at once. */
    if (host->send(state->client, bytes, length) == CYNIC_ERR_FULL) {
        host->reset(upstream);
        host->reset(state->client);
    }
}

static void upstream_peer_closed(void *raw, cynic_conn *upstream) {
    proxy_conn *state = raw;
    (void)upstream;
    state->upstream_eof = true;
    state->self->host->shutdown_write(state->client);
    close_when_both_done(state);
}

static void upstream_ended(void *raw, cynic_conn *upstream, uint32_t how) {
    proxy_conn *state = raw;
    const cynic_host *host = state->self->host;
    (void)upstream;
    state->upstream = NULL;
    switch (how) {
    case CYNIC_END_RESET_BY_PEER:
        host->reset(state->client); /* after what was already relayed */
        break;
    case CYNIC_END_CLOSED:
    case CYNIC_END_RESET:
        /* Gone both ways (after its FIN and ours, or a write that failed): nothing more the
         * client sends can reach it, so close after what was relayed. */
        host->close(state->client);
        break;
    default: /* CONNECT_FAILED: connect_failed answered; CLIENT_ENDED: nobody to tell */
        break;
    }
}

static const cynic_upstream_events proxy_upstream_events = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_upstream_events),
    .connect_failed = upstream_connect_failed,
    .data = upstream_data,
    .peer_closed = upstream_peer_closed,
    .ended = upstream_ended,
};

static void *proxy_conn_open(void *instance, cynic_conn *conn) {
    proxy_instance *self = instance;
    proxy_conn *state = calloc(1, sizeof *state);
    if (state == NULL) {
        self->host->reset(conn);
        return NULL;
    }
    state->self = self;
    state->client = conn;
    if (self->connect->open(conn, self->upstream, &proxy_upstream_events, state, &state->upstream) != CYNIC_OK) {
        state->upstream = NULL;
        answer_unreachable(state);
    }
    return state;
}

/* unreachable=reset was waiting for the client to speak (or leave): reset now. */
static bool reset_if_pending(proxy_conn *state, cynic_conn *conn) {
    if (!state->reset_pending) return false;
    state->reset_pending = false;
    state->self->host->cancel_pending(conn);
    state->self->host->reset(conn);
    return true;
}

static void proxy_conn_data(void *raw, cynic_conn *conn, const uint8_t *bytes, size_t length) {
    proxy_conn *state = raw;
    if (state == NULL) return;
    state->client_spoke = true;
    if (reset_if_pending(state, conn) || state->upstream == NULL) return; /* hanging: read and discarded */
    const cynic_host *host = state->self->host;
    if (host->send(state->upstream, bytes, length) == CYNIC_ERR_FULL) {
        host->reset(state->upstream);
        host->reset(conn);
    }
}

static void proxy_conn_peer_closed(void *raw, cynic_conn *conn) {
    proxy_conn *state = raw;
    if (state == NULL) return;
    state->client_eof = true;
    if (reset_if_pending(state, conn)) return;
    if (state->upstream == NULL) {
        /* Nothing to forward to: a client held (hang) or lingering (close) that leaves is let
         * go at once. */
        state->self->host->cancel_pending(conn);
        state->self->host->close(conn);
        return;
    }
    state->self->host->shutdown_write(state->upstream);
    close_when_both_done(state);
}

/* The upstream, if still open, has had its `ended` already (the host closes it, or resets it
 * when the client was reset, before this). */
static void proxy_conn_end(void *state, cynic_conn *conn) {
    (void)conn;
    free(state);
}

static const cynic_param proxy_params[] = {
    {"upstream", CYNIC_TYPE_STRING, NULL,
     "Required: the server to proxy to, 'host:port' ('[::1]:5432' for IPv6) or 'unix:/path/to/socket'."},
    {"unreachable", CYNIC_TYPE_STRING, "close",
     "What a client gets when the upstream cannot be reached: close (a FIN), reset (a TCP RST, once it has sent something or after 200 ms), "
     "or hang (held open, read and discarded, never answered)."},
};

static const cynic_plugin proxy_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "proxy",
    .description = "Passes bytes through to a real server and back, half-closes and resets included.",
    .default_port = 0, /* a proxy needs an upstream: it is only served when configured */
    .params = proxy_params,
    .param_count = sizeof proxy_params / sizeof proxy_params[0],
    .configure = CYNIC_CONFIGURE(proxy_configure),
    .create = proxy_create,
    .destroy = proxy_destroy,
    .conn_open = proxy_conn_open,
    .conn_data = proxy_conn_data,
    .conn_peer_closed = proxy_conn_peer_closed,
    .conn_end = proxy_conn_end,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &proxy_plugin;
}
