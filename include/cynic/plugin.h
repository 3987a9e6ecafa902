/*
 * cynic/plugin.h — the ABI between cynic and a behaviour plugin.
 *
 * This is the one file a plugin author reads. A plugin is a shared object that exports one
 * function, `cynic_plugin_entry`, returning a constant descriptor. Everything else — the host's
 * function table, parameters, connection callbacks — is reached from there.
 *
 *     cc -shared -fPIC -I include -o my-behaviour.so my-behaviour.c
 *
 * A plugin never touches a socket. For each connection the host calls the plugin, and the plugin
 * asks the host for actions — send bytes, wait, close, reset, shut down writing, stop reading —
 * which the host queues and performs in order, calling the plugin back when it asks to be
 * (`then`) so it can stream more without holding it all.
 *
 * THREADS. The host runs connections on a few event-loop threads. For one connection, every
 * callback runs on that connection's thread and calls never overlap. Callbacks of different
 * connections — even of one service instance — may run at the same time on different threads, so
 * an instance is read-only once configured, or the plugin synchronises it itself. `create`
 * and the configure function run on the host's control thread before any connection of the
 * instance; `destroy` after the last one has ended.
 *
 * A `cynic_conn *` is valid from conn_open until conn_end returns, and only on that connection's
 * thread, inside one of its callbacks. A host function given it anywhere else does nothing and
 * touches nothing of the connection: from another thread, or from outside its callbacks, it
 * returns CYNIC_ERR_THREAD; once the connection has ended, from any thread, CYNIC_ERR_CLOSED
 * (the value is a handle the host checks, not memory that could have been freed; a later
 * connection gets a different value, until 2^32 connections have used the same slot).
 *
 * Never block in a callback. One event-loop thread serves many connections, of every service, one
 * callback at a time: while a callback sleeps, waits or loops, every connection on that thread
 * waits with it. Ask the host to wait (`wait`, `after`) and stream with `then`; a loop of `send`
 * that ignores CYNIC_ERR_FULL never gives its thread back. The host watches from a thread of its
 * own and logs a callback running longer than a threshold (`--slow-callback-ms`, 500 ms by
 * default), naming the plugin, the callback and the service, and again when it returns. On
 * SIGTERM or SIGINT the host lets connections drain for a bound (`--drain-seconds`), then exits
 * without waiting for a callback still running: its connections are lost, and the exit status
 * says so.
 *
 * OWNERSHIP. Pointers the host passes in are borrowed: valid until the callback returns unless
 * stated otherwise. Pointers the plugin passes to the host are copied before the call returns.
 * Pointers in the descriptor must stay valid as long as the shared object is loaded.
 *
 * VERSIONING. Every top-level struct starts with `abi_version` and `struct_size`. Structs are
 * append-only: a field, once published, never moves or changes meaning. A host fills a missing
 * trailing field of an older plugin's struct with zero, so an older plugin keeps loading in a newer
 * host; a host refuses a plugin whose `abi_version` it does not know, at load time, with a message.
 * New capabilities are optional interfaces looked up by string id with a revision
 * ("cynic.something/1"), NULL when absent, so the core never grows mandatory fields.
 *
 * History:
 *   ABI 1 — first version: descriptor, typed parameters, raw and HTTP/1.x connections, the
 *           host table up to `after`, timers, the listen and shaper capabilities. Later in
 *           ABI 1, no layout changed: CYNIC_ERR_FULL, a bound on a connection's queued bytes
 *           and on all connections' together; the "cynic.listen-instance/1" capability; a
 *           handle used after conn_end returns CYNIC_ERR_CLOSED from any thread; the host
 *           capability "cynic.connect/1" (outbound connections: cynic_connect,
 *           cynic_upstream_events, CYNIC_END_*, CYNIC_PAIR_QUEUE_*); a shaper's conn_end also
 *           when it is taken off an open connection, passing on what it holds.
 */
#ifndef CYNIC_PLUGIN_H
#define CYNIC_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. A plugin puts it in `cynic_plugin.abi_version`. */
#define CYNIC_ABI_VERSION 1u

/* Marks the entry function as exported even under -fvisibility=hidden. */
#define CYNIC_EXPORT __attribute__((visibility("default")))

/* The name of the one symbol a plugin exports. */
#define CYNIC_ENTRY_SYMBOL "cynic_plugin_entry"

/* ---------------------------------------------------------------------------------------------
 * Status codes returned by host functions. Since ABI 1. Codes may be added within a version:
 * treat any negative value as "not done".
 */
#define CYNIC_OK 0
/* The connection has ended (or is ending after a close or reset): the action was dropped. Also
 * what any call with a `cynic_conn *` returns once its connection has ended, from any thread. */
#define CYNIC_ERR_CLOSED (-1)
/* Called from outside a callback of that connection, or from another thread. Nothing was done. */
#define CYNIC_ERR_THREAD (-2)
/* An argument was invalid (NULL bytes with a length, an unknown level...). Nothing was done. */
#define CYNIC_ERR_INVALID (-3)
/* `send` only: this connection already has CYNIC_MAX_QUEUED_BYTES of bytes queued and not yet
 * handed to the kernel (a plugin sending in a loop without `then`), or all connections together
 * have the host's bound on queued bytes (cynic's --max-queued-bytes, 256 MiB unless told
 * otherwise). A byte counts until the kernel has it, so clients that do not read keep theirs
 * counted. Nothing was queued; the host's memory stays bounded whatever a plugin does, and
 * however many connections do it. Stream with `then` instead. Since ABI 1 (cynic 0.1). */
#define CYNIC_ERR_FULL (-4)
/* The most bytes one connection may have queued and not yet sent: 64 MiB. */
#define CYNIC_MAX_QUEUED_BYTES (64u << 20)

/* ---------------------------------------------------------------------------------------------
 * Parameters. Since ABI 1.
 *
 * A plugin declares its parameters with C types. The host converts the values of a service's
 * configuration (or the command line, or `default_value`) to those types, refuses a value that does
 * not fit before any call, and then calls the plugin's configure function through libffi with
 * the values as ordinary C arguments, in declaration order:
 *
 *     const char *configure(void *instance, T1 p1, T2 p2, ...);
 *
 * where each Tn is the C type below. It returns NULL when it accepts the values, or a message
 * saying what is wrong (owned by the plugin, valid until the instance is destroyed); the host then
 * refuses the service with that message.
 */
typedef uint32_t cynic_type;
#define CYNIC_TYPE_BOOL   1u /* bool                          */
#define CYNIC_TYPE_INT32  2u /* int32_t                       */
#define CYNIC_TYPE_INT64  3u /* int64_t                       */
#define CYNIC_TYPE_UINT32 4u /* uint32_t                      */
#define CYNIC_TYPE_UINT64 5u /* uint64_t                      */
#define CYNIC_TYPE_DOUBLE 6u /* double                        */
#define CYNIC_TYPE_STRING 7u /* const char * (NUL-terminated) */

/* One parameter. This struct is frozen: arrays of it are read with this exact size. */
typedef struct cynic_param {
    /* Lowercase letters, digits and '_'; unique within the plugin. Required. */
    const char *name;
    /* One of CYNIC_TYPE_*. */
    cynic_type type;
    /* The default, written as a user would write it ("30000", "0.5", "true", "text/html").
     * NULL means: for CYNIC_TYPE_STRING, the plugin receives NULL unless a value is given;
     * for every other type, the parameter is required. */
    const char *default_value;
    /* One line saying what it does, for `cynic plugins`. May be NULL. */
    const char *doc;
} cynic_param;

/* The configure function's real type varies with the parameters; the descriptor stores it as
 * this generic function pointer. Write `.configure = CYNIC_CONFIGURE(my_configure)`. */
typedef void (*cynic_any_fn)(void);
#define CYNIC_CONFIGURE(fn) ((cynic_any_fn)(fn))

/* ---------------------------------------------------------------------------------------------
 * HTTP/1.x requests, for plugins with CYNIC_PLUGIN_HTTP1. Since ABI 1.
 *
 * The host parses requests; the plugin answers with raw bytes through the same actions, so it
 * can answer with malformed HTTP on purpose. After the plugin's actions for one request are all
 * done and the connection is still open, the host hands it the next request (keep-alive,
 * pipelining): a request's answer is done when, after conn_request (or a conn_resume it led to)
 * returns, no action is left in the queue — so a conn_request that queues nothing is answered
 * with nothing, and the next request follows. Everything in these structs is borrowed for the
 * duration of the callback; read `struct_size` before a field added after ABI 1.
 *
 * Limits the host enforces before a plugin sees anything: a request target and headers of at most
 * 32 KiB (cynic's --max-header-bytes), a body of at most 1 MiB (--max-body-bytes), 16 requests
 * pipelined ahead. A request over a limit or not parseable as HTTP/1.x is answered by the host
 * itself (431, 413 or 400, then close) and logged.
 */
typedef struct cynic_http_header {
    const char *name;  /* as the client sent it, NUL-terminated */
    const char *value; /* NUL-terminated, surrounding white space removed */
} cynic_http_header;

typedef struct cynic_http_request {
    uint32_t struct_size;           /* sizeof(cynic_http_request) of the host */
    const char *method;             /* "GET", "POST", ... */
    const char *target;             /* "/path?query", as sent */
    uint16_t version_major;         /* 1 */
    uint16_t version_minor;         /* 0 or 1 */
    const cynic_http_header *headers;
    uint32_t header_count;
    const uint8_t *body;            /* the whole body, NULL when empty */
    size_t body_length;
    bool keep_alive;                /* what the client asked for (version and Connection header) */
} cynic_http_request;

/* The first value of header `name` (case-insensitive), or NULL. */
static inline const char *cynic_http_header_value(const cynic_http_request *request,
                                                  const char *name) {
    for (uint32_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, name) == 0) return request->headers[i].value;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The host's function table. Since ABI 1.
 *
 * Passed to `create`. Each loaded plugin gets a table of its own (a new version swapped in, a
 * new one), the same for every instance of it, so a plugin may keep it in a static variable or
 * give it to a thread of its own. It is valid as long as the plugin's code is loaded: a plugin
 * that links the Swift runtime is never unloaded, so until the process exits; a C plugin is
 * unloaded once no instance and no connection of that version remains, after its last
 * `destroy` (stop the threads you started there: their code goes too). Append-only: later ABI
 * versions add fields at the end, and `struct_size` tells a plugin which exist (check it before
 * using a newer one).
 *
 * Actions (send, wait, close, reset, shutdown_write, stop_reading, then) are queued and performed
 * in the order asked, one after the other: a `wait` delays the actions queued after it. Each
 * returns CYNIC_OK once queued, or a CYNIC_ERR_* code. The bytes of `send` are copied before it
 * returns; a `send` counts as done when the bytes are handed to the kernel, so streaming with
 * `then` keeps the host's memory flat whatever the total size.
 */
/* Opaque, never NULL; valid from conn_open until conn_end returns, on the connection's thread
 * only (see THREADS): after the end any call returns CYNIC_ERR_CLOSED, from another thread
 * CYNIC_ERR_THREAD. */
typedef struct cynic_conn cynic_conn;

#define CYNIC_LOG_DEBUG   0u
#define CYNIC_LOG_INFO    1u
#define CYNIC_LOG_WARNING 2u
#define CYNIC_LOG_ERROR   3u

typedef struct cynic_host {
    uint32_t abi_version; /* the host's CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_host) of the host */

    /* Queue `length` bytes to send. Copied before return. CYNIC_ERR_FULL when the connection
     * has CYNIC_MAX_QUEUED_BYTES queued already (so one send may not be larger), or when all
     * connections together have the host's bound queued. Since ABI 1. */
    int (*send)(cynic_conn *conn, const void *bytes, size_t length);
    /* Queue a pause of `milliseconds` before the next action. Since ABI 1. */
    int (*wait)(cynic_conn *conn, uint64_t milliseconds);
    /* Queue an orderly close (FIN) of both directions; the connection then ends. Once a close or
     * reset is queued, every later action returns CYNIC_ERR_CLOSED (until cancel_pending), and
     * no conn_data or conn_request arrives any more; conn_peer_closed still does, so a plugin
     * that queued a long wait before its close can cancel_pending and close at once. Since
     * ABI 1. */
    int (*close)(cynic_conn *conn);
    /* Queue an abortive close: SO_LINGER {1, 0}, then close, so the peer gets a TCP RST. Its
     * next receive fails with ECONNRESET and the write after that with EPIPE. Since ABI 1. */
    int (*reset)(cynic_conn *conn);
    /* Queue shutdown(SHUT_WR): the peer reads EOF, the connection stays open for reading. A
     * send queued after it returns CYNIC_ERR_CLOSED (nothing more can be written), unless
     * cancel_pending drops the shutdown before it is performed. Since ABI 1. */
    int (*shutdown_write)(cynic_conn *conn);
    /* Queue: stop reading from the socket. The kernel's receive buffer fills and the peer's
     * writes eventually block. conn_data / conn_request are not called again, and neither is
     * conn_peer_closed: a server that does not read does not see the peer leave. Since ABI 1. */
    int (*stop_reading)(cynic_conn *conn);
    /* Queue a call back: when every action queued before it is done, the host calls
     * `conn_resume(state, conn, tag)`. The way to stream: send a piece, then `then`. Since ABI 1. */
    int (*then)(cynic_conn *conn, uint64_t tag);
    /* Drop every queued action not yet started; a `wait` in progress ends now. Use it to react
     * at once, e.g. to close from conn_peer_closed while a long wait is queued. It clears the
     * connection's one queue, including what shapers queued there. Since ABI 1. */
    int (*cancel_pending)(cynic_conn *conn);

    /* Write a line to cynic's console; `message` is copied, bounded and escaped to one line.
     * With a `conn`, on that connection's log: tagged with its service and peer. Without one
     * (NULL), or with one that cannot be used here (ended, or of another thread), on the logger
     * `cynic.plugin` with metadata `plugin=NAME`, the name of the plugin this table was given
     * to: each table's `log` is a function of its own, so the line names its plugin from any
     * thread, `create`'s or one the plugin started. Any thread; `conn` only under the rule
     * above. Since ABI 1. */
    void (*log)(cynic_conn *conn, uint32_t level, const char *message);

    /* An optional host interface by id ("cynic.something/1"), or NULL. Any thread. Since ABI 1. */
    const void *(*get_extension)(const char *id);

    /* Not queued: in `milliseconds`, call the timer callback of whoever holds `conn` (a
     * behaviour's conn_timer, a shaper's timer) with `tag`, whatever the queue is doing then —
     * unless the connection has ended. A timer cannot be cancelled (ignore a stale one by its
     * tag); cancel_pending does not touch timers; with no callback, nothing happens. What a timer
     * callback queues is performed like any action; for an HTTP behaviour, the next request is
     * handed over whenever the queue runs empty, so answer a request from conn_request or
     * conn_resume (wait + then), not from a timer. Since ABI 1. */
    int (*after)(cynic_conn *conn, uint64_t milliseconds, uint64_t tag);
} cynic_host;

/* ---------------------------------------------------------------------------------------------
 * The descriptor. Since ABI 1.
 */

/* The behaviour speaks HTTP/1.x: the host parses requests and calls conn_request instead of
 * conn_data. */
#define CYNIC_PLUGIN_HTTP1 (1u << 0)

typedef struct cynic_plugin {
    uint32_t abi_version; /* CYNIC_ABI_VERSION the plugin was built against */
    uint32_t struct_size; /* sizeof(cynic_plugin) */

    /* The behaviour's name, e.g. "http-slow": lowercase letters, digits, '-' and '_'. Unique
     * among loaded plugins. Required. */
    const char *name;
    /* One line for `cynic plugins`. May be NULL. */
    const char *description;
    /* Served on this port at start when no configuration says otherwise; 0 for none. */
    uint16_t default_port;
    /* CYNIC_PLUGIN_* bits. */
    uint32_t flags;

    /* The parameters, `param_count` of them; NULL when there are none. */
    const cynic_param *params;
    uint32_t param_count;
    /* `const char *configure(void *instance, T1, ..., Tn)`, see "Parameters". Called once per
     * service instance, after create, before any connection. Required when param_count > 0. */
    cynic_any_fn configure;

    /* Make the state of one service (a behaviour with its parameters). Several services may use
     * one plugin. `host` is this plugin's table, valid while it is loaded (see "The host's function
     * table"). May be NULL (the instance is NULL).
     * When the plugin has a `destroy`, returning NULL means failure (out of memory) and the
     * service is refused; without one, NULL is a valid stateless instance. Control thread. */
    void *(*create)(const cynic_host *host);
    /* Free the instance. Called once, when the service is gone and no connection of it
     * remains, on any host thread, never during another callback of the instance. May be NULL. */
    void (*destroy)(void *instance);

    /* A connection was accepted. Return the plugin's per-connection state (NULL is fine); it is
     * passed to every later callback of this connection. Queue the first actions here, or wait
     * for data. Required for a behaviour; a shaper has none. Connection thread. */
    void *(*conn_open)(void *instance, cynic_conn *conn);
    /* Bytes arrived (raw plugins only). `bytes` is borrowed. May be NULL: bytes are discarded. */
    void (*conn_data)(void *state, cynic_conn *conn, const uint8_t *bytes, size_t length);
    /* A complete HTTP request arrived (CYNIC_PLUGIN_HTTP1 only). Required for HTTP plugins. */
    void (*conn_request)(void *state, cynic_conn *conn, const cynic_http_request *request);
    /* The `then(conn, tag)` the plugin queued was reached. May be NULL. */
    void (*conn_resume)(void *state, cynic_conn *conn, uint64_t tag);
    /* The peer closed its sending side (read EOF). May be NULL: the host then closes the
     * connection once the plugin is idle — every queued action done, including those queued
     * from a conn_resume on the way, so a response being streamed still completes. */
    void (*conn_peer_closed)(void *state, cynic_conn *conn);
    /* The connection is over, for whatever reason (our close or reset, the peer's reset, the
     * server stopping). Called exactly once per conn_open; free `state` here. No host function may
     * be given `conn` from here on. May be NULL. */
    void (*conn_end)(void *state, cynic_conn *conn);

    /* An optional plugin interface by id ("cynic.something/1"), or NULL. May be NULL. Any
     * thread. */
    const void *(*get_extension)(const char *id);

    /* A timer set with host->after fired. May be NULL. Connection thread. */
    void (*conn_timer)(void *state, cynic_conn *conn, uint64_t tag);
} cynic_plugin;

/* ---------------------------------------------------------------------------------------------
 * Listening differently: capability "cynic.listen/1", returned by the plugin's get_extension.
 * Since ABI 1.
 *
 * Some failures happen before a connection exists. A behaviour that returns this struct asks the
 * host to listen in a particular way for every service that uses it.
 */
#define CYNIC_LISTEN_ID "cynic.listen/1"

typedef struct cynic_listen {
    uint32_t abi_version; /* CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_listen) */
    /* The listen() backlog; 0 for the host's default. */
    int32_t backlog;
    /* SO_RCVBUF for accepted connections, set before they are accepted so the advertised
     * window is small from the first byte; 0 for the kernel's default. */
    uint32_t receive_buffer;
    /* Listen, never accept: the host fills the accept queue with connections of its own, so a
     * client's SYN goes unanswered and its connect times out. conn_open is never called. */
    bool never_accept;
} cynic_listen;

/* ---------------------------------------------------------------------------------------------
 * Listening as parameters say: capability "cynic.listen-instance/1", returned by the plugin's
 * get_extension. Since ABI 1 (cynic 0.1; no layout changed).
 *
 * "cynic.listen/1" is one answer for every service of the plugin. A behaviour whose listening
 * depends on its parameters (a receive buffer of the size asked for) returns this struct too,
 * and the host asks it for each configured instance.
 */
#define CYNIC_LISTEN_INSTANCE_ID "cynic.listen-instance/1"

typedef struct cynic_listen_instance {
    uint32_t abi_version; /* CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_listen_instance) */
    /* Fills `listen` for one configured instance; the service of that instance listens so.
     * `listen` arrives with abi_version and struct_size set and every other field at the
     * plugin's "cynic.listen/1" values (zero without them); the plugin changes what it wants.
     * Control thread, after configure, before the service listens; never during a connection
     * callback. `listen` is the host's, valid during the call. Read when a service starts
     * listening: a swapped-in generation serves on the listener it finds. */
    void (*listen)(const void *instance, cynic_listen *listen);
} cynic_listen_instance;

/* ---------------------------------------------------------------------------------------------
 * Shapers: capability "cynic.shaper/1", returned by the plugin's get_extension. Since ABI 1.
 *
 * A shaper applies to any service. A service is a behaviour plus an ordered list of shapers, each
 * with its parameters and a probability of applying to a connection. The behaviour's actions pass
 * through the first shaper that applies; what it forwards goes through the next, and what the
 * last forwards reaches the socket. A shaper forwards with the ordinary host functions, called
 * with the `cynic_conn *` it was given, which stands for "downstream of this shaper". It may
 * forward an action as it came, split it, delay it (queue a `wait` before it), drop it, or replace
 * it (a `reset` instead of more bytes).
 *
 * A shaper plugin has a name, parameters, create/configure/destroy like a behaviour, no
 * conn_open, and returns a cynic_shaper for CYNIC_SHAPER_ID. Every callback may be NULL: the
 * action then passes on unchanged. Callbacks run on the connection's thread, in the order the
 * behaviour asked for the actions; `then` and `stop_reading` always pass on unchanged.
 */
#define CYNIC_SHAPER_ID "cynic.shaper/1"

typedef struct cynic_shaper {
    uint32_t abi_version; /* CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_shaper) */

    /* The connection opened, before the behaviour's conn_open: queue what comes first (a
     * latency's wait) here. Return per-connection state (NULL is fine). */
    void *(*conn_open)(void *instance, cynic_conn *downstream);
    /* The behaviour (or the shaper before) asks to send `length` bytes. */
    void (*send)(void *state, cynic_conn *downstream, const uint8_t *bytes, size_t length);
    /* ... to wait. */
    void (*wait)(void *state, cynic_conn *downstream, uint64_t milliseconds);
    /* ... to close (FIN). */
    void (*close)(void *state, cynic_conn *downstream);
    /* ... to reset (RST). */
    void (*reset)(void *state, cynic_conn *downstream);
    /* ... to shut down writing. */
    void (*shutdown_write)(void *state, cynic_conn *downstream);
    /* A timer this shaper set with host->after(downstream, ...) fired. */
    void (*timer)(void *state, cynic_conn *downstream, uint64_t tag);
    /* The connection is over, or this shaper was taken off it while it goes on (a toxic deleted
     * or changed through the control API). Free `state`. Until this returns, the `downstream`
     * handle given to conn_open is valid: a shaper that holds actions back passes them on here,
     * in order, so that taking it off loses nothing; when the connection itself has ended, they
     * return CYNIC_ERR_CLOSED. */
    void (*conn_end)(void *state);
} cynic_shaper;

/* ---------------------------------------------------------------------------------------------
 * Outbound connections: host capability "cynic.connect/1", returned by the HOST's get_extension
 * (`host->get_extension(CYNIC_CONNECT_ID)`). Since ABI 1 (cynic 0.2; no layout changed).
 *
 * A behaviour may open connections of its own — to a real server it stands in front of, say — on
 * behalf of a client connection, and still never touch a socket. An upstream connection is a
 * `cynic_conn *` like the client's: send, wait, close, reset, shutdown_write, stop_reading,
 * then, cancel_pending, after and log all work on it, queued and performed in order as for the
 * client. The service's shapers with direction "upstream" apply to what is sent on it (those
 * with direction "downstream", the default, to what is sent to the client).
 *
 * THREADS. Every event of an upstream connection is called on its client connection's thread,
 * never overlapping another callback of that client or of its other upstreams: a plugin's state
 * for a client and its upstreams needs no lock. Host functions taking the upstream's handle follow
 * the rule of THREADS: from inside a callback of the client or of any of its upstreams.
 *
 * LIFETIME. The handle is valid from `open`'s return until `ended` returns. Actions queued before
 * the connection is established wait for it; if it cannot be established, `connect_failed` is
 * called, then `ended`, and what was queued is dropped. An upstream connection ends when it is
 * closed or reset (by the plugin or its peer), when connecting fails, or at the latest when its
 * client connection ends: then every upstream still open is closed (a FIN; a reset when the
 * client's connection was reset) and gets its `ended` before the client's conn_end.
 *
 * FLOW CONTROL. A connection stops being read while another connection of the same client (the
 * client itself or one of its upstreams) has more than CYNIC_PAIR_QUEUE_HIGH bytes queued and not
 * yet written, and is read again once that falls under CYNIC_PAIR_QUEUE_LOW: a fast upstream
 * relayed into a slow client keeps the host's memory flat without the plugin doing anything.
 */
#define CYNIC_CONNECT_ID "cynic.connect/1"
#define CYNIC_PAIR_QUEUE_HIGH (1u << 20)
#define CYNIC_PAIR_QUEUE_LOW (256u << 10)

/* What a plugin hears of an upstream connection it opened. `state` is what it gave `open`.
 * Every callback may be NULL. Since ABI 1 (cynic 0.2). */
typedef struct cynic_upstream_events {
    uint32_t abi_version; /* CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_upstream_events) */

    /* The connection is established; what was queued on it is performed from now on. */
    void (*connected)(void *state, cynic_conn *upstream);
    /* It could not be established: `error` is an errno value (ECONNREFUSED, ETIMEDOUT,
     * ENOENT for a missing Unix socket...). `ended` follows. */
    void (*connect_failed)(void *state, cynic_conn *upstream, int error);
    /* Bytes arrived from the upstream. Borrowed until return. */
    void (*data)(void *state, cynic_conn *upstream, const uint8_t *bytes, size_t length);
    /* The upstream shut down its writing (a FIN): no more data will come. Not called after
     * stop_reading, nor when the plugin had already shut down writing to it (both halves are
     * then closed: the connection ends, and `ended` says CYNIC_END_CLOSED). Without this
     * callback the host closes the upstream connection once its queue is done. */
    void (*peer_closed)(void *state, cynic_conn *upstream);
    /* A `then` queued on the upstream was reached. */
    void (*resume)(void *state, cynic_conn *upstream, uint64_t tag);
    /* A timer set with host->after(upstream, ...) fired. */
    void (*timer)(void *state, cynic_conn *upstream, uint64_t tag);
    /* The upstream connection is over: how is in `how` (one of CYNIC_END_*). The handle is stale
     * once this returns; free what belongs to it here. */
    void (*ended)(void *state, cynic_conn *upstream, uint32_t how);
} cynic_upstream_events;

/* How an upstream connection ended, for `ended`. */
#define CYNIC_END_CLOSED        0u /* closed in order: by the plugin, or by the peer after its FIN */
#define CYNIC_END_RESET_BY_PEER 1u /* the upstream sent an RST (or the connection failed later) */
#define CYNIC_END_RESET         2u /* reset by the plugin */
#define CYNIC_END_CONNECT_FAILED 3u /* never established; connect_failed said why */
#define CYNIC_END_CLIENT_ENDED  4u /* its client connection ended first */

typedef struct cynic_connect {
    uint32_t abi_version; /* the host's CYNIC_ABI_VERSION */
    uint32_t struct_size; /* sizeof(cynic_connect) of the host */

    /* Opens a connection to `address` on behalf of `client`, from inside a callback of `client`
     * (or of one of its upstreams). `address` is "host:port" (a name, an IPv4 address, or an
     * IPv6 one in brackets: "[::1]:5432") or "unix:/path/to/socket"; copied before return.
     * `events` must stay valid until `ended` returns (a static const struct is the usual way);
     * `state` is passed back with every event. On CYNIC_OK, `*upstream` is the new handle, usable
     * at once; connecting goes on in the background. CYNIC_ERR_INVALID for an address that
     * cannot be read (nothing is opened), CYNIC_ERR_THREAD or CYNIC_ERR_CLOSED as for any call
     * on `client`. Since ABI 1 (cynic 0.2). */
    int (*open)(cynic_conn *client, const char *address, const cynic_upstream_events *events, void *state,
                cynic_conn **upstream);
} cynic_connect;

/* The one exported symbol. Returns the descriptor, which must stay valid while the shared
 * object is loaded. Called once per load, on the control thread. Write:
 *
 *     CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &my_plugin; }
 */
typedef const cynic_plugin *(*cynic_plugin_entry_fn)(void);
#ifndef __swift__ /* Swift plugins define it with @_cdecl; the host looks it up with dlsym. */
CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* CYNIC_PLUGIN_H */
