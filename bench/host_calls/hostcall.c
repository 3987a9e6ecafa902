/* Host-call cost: times one million cancel_pending (a handle lookup and an empty queue) and one
 * million 1-byte sends (lookup, budget, allocation, queued action) from inside conn_open, and logs
 * ns per call. Run:
 *
 *     cc -O2 -shared -fPIC -I include -o bench/host_calls/hostcall.so bench/host_calls/hostcall.c
 *     cynic serve hostcall --port 0 --plugin-dir bench/host_calls   # then connect once
 */
#include <cynic/plugin.h>
#include <stdio.h>
#include <time.h>
static const cynic_host *host;
static void *create(const cynic_host *h) { host = h; return NULL; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static void *conn_open(void *i, cynic_conn *conn) {
    (void)i;
    enum { N = 1000000 };
    double start = now();
    for (int k = 0; k < N; k++) host->cancel_pending(conn);
    double cancel = (now() - start) / N;
    start = now();
    for (int k = 0; k < N; k++) { host->send(conn, "x", 1); if (k % 1000 == 999) host->cancel_pending(conn); }
    double send = (now() - start) / N;
    char line[128];
    snprintf(line, sizeof line, "hostcall: cancel_pending %.1f ns, send %.1f ns", cancel, send);
    host->log(conn, CYNIC_LOG_WARNING, line);
    host->close(conn);
    return NULL;
}
static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
    .name = "hostcall", .create = create, .conn_open = conn_open };
CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
