/*
 * tls-fault.h — the connection side every TLS handshake fault shares.
 *
 * A fault plugin's instance starts with a `tls_fault`; its descriptor takes the connection
 * callbacks below. Each connection reads the client's ClientHello with the reader of
 * tls-client-hello.h and, the moment it is in (or the first bytes show it is not coming), the
 * fault's `answer` queues what the fault does — once. Until then the connection is held: a client
 * that connects and says nothing is closed after `hold_ms`, or when it leaves.
 */
#ifndef TLS_FAULT_H
#define TLS_FAULT_H

#include <cynic/plugin.h>

#include "tls-client-hello.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How long a fault holds a client that sends nothing: 24 h, like noresponse. */
#define TLS_FAULT_HOLD_MS 86400000u

typedef struct tls_fault tls_fault;

/* Queues the fault's answer. `hello` is the complete ClientHello, or NULL when the client's first
 * bytes were not one (`reason` then says why, for the log). What was queued to hold the
 * connection has been dropped. Connection thread. */
typedef void (*tls_fault_answer_fn)(const tls_fault *fault, cynic_conn *conn, const tls_client_hello *hello);

struct tls_fault {
    const cynic_host *host; /* conn_open is not given the host table: keep the one from create */
    /* NULL for a fault that never answers: the connection stays held for `hold_ms`. */
    tls_fault_answer_fn answer;
    uint64_t hold_ms;
};

/* An instance of `size` bytes — a struct that starts with its tls_fault — zeroed, with `host`,
 * `answer` and a hold of TLS_FAULT_HOLD_MS; NULL when out of memory. For `create`. */
void *tls_fault_create(const cynic_host *host, size_t size, tls_fault_answer_fn answer);
/* Frees an instance made by tls_fault_create. For `destroy`. */
void tls_fault_destroy(void *instance);

/* The record version to answer a client with: the version it offered in its ClientHello, within
 * SSL 3.0 to TLS 1.2 (the record layer never says 1.3), or TLS 1.2 without one. */
uint16_t tls_fault_record_version(const tls_client_hello *hello);

/* The descriptor's connection callbacks; the instance is a tls_fault (or starts with one). A
 * descriptor takes them, and tls_fault_destroy, with TLS_FAULT_CALLBACKS. */
#define TLS_FAULT_CALLBACKS                                                                        \
    .destroy = tls_fault_destroy, .conn_open = tls_fault_conn_open, .conn_data = tls_fault_conn_data, \
    .conn_resume = tls_fault_conn_resume, .conn_peer_closed = tls_fault_conn_peer_closed,             \
    .conn_end = tls_fault_conn_end

void *tls_fault_conn_open(void *instance, cynic_conn *conn);
void tls_fault_conn_data(void *state, cynic_conn *conn, const uint8_t *bytes, size_t length);
void tls_fault_conn_resume(void *state, cynic_conn *conn, uint64_t tag);
void tls_fault_conn_peer_closed(void *state, cynic_conn *conn);
void tls_fault_conn_end(void *state, cynic_conn *conn);

#ifdef __cplusplus
}
#endif

#endif /* TLS_FAULT_H */
