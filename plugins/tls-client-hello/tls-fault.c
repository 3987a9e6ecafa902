/*
 * tls-fault.c — the connection side of the TLS handshake faults (see tls-fault.h).
 */
#include "tls-fault.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct tls_fault_conn {
    const tls_fault *fault;
    bool answered;
    tls_hello_reader reader; /* 16 KiB: why a connection's state is allocated */
} tls_fault_conn;

void *tls_fault_create(const cynic_host *host, size_t size, tls_fault_answer_fn answer) {
    if (size < sizeof(tls_fault)) return NULL;
    tls_fault *fault = calloc(1, size);
    if (fault == NULL) return NULL;
    fault->host = host;
    fault->answer = answer;
    fault->hold_ms = TLS_FAULT_HOLD_MS;
    return fault;
}

void tls_fault_destroy(void *instance) {
    free(instance);
}

uint16_t tls_fault_record_version(const tls_client_hello *hello) {
    if (hello == NULL || hello->legacy_version > 0x0303) return 0x0303;
    if (hello->legacy_version < 0x0300) return 0x0300;
    return hello->legacy_version;
}

void *tls_fault_conn_open(void *instance, cynic_conn *conn) {
    const tls_fault *fault = instance;
    tls_fault_conn *state = malloc(sizeof *state);
    if (state == NULL) {
        fault->host->log(conn, CYNIC_LOG_ERROR, "out of memory: resetting the connection");
        fault->host->reset(conn);
        return NULL;
    }
    state->fault = fault;
    state->answered = false;
    tls_hello_reader_init(&state->reader);
    /* A queued close would stop the data coming in: the hold ends with a call back instead. */
    fault->host->wait(conn, fault->hold_ms);
    fault->host->then(conn, 0);
    return state;
}

/* The hold is over. */
void tls_fault_conn_resume(void *state, cynic_conn *conn, uint64_t tag) {
    (void)tag;
    const tls_fault_conn *self = state;
    self->fault->host->close(conn);
}

void tls_fault_conn_data(void *raw, cynic_conn *conn, const uint8_t *bytes, size_t length) {
    tls_fault_conn *state = raw;
    if (state == NULL || state->answered) return;
    tls_hello_status status = tls_hello_read(&state->reader, bytes, length);
    if (status == TLS_HELLO_NEED_MORE) return;
    state->answered = true;

    const tls_fault *fault = state->fault;
    if (status == TLS_HELLO_NOT_TLS) {
        char line[160];
        snprintf(line, sizeof line, "the client's first bytes are not a TLS ClientHello (%s): the fault goes on as for one",
                 state->reader.reason);
        fault->host->log(conn, CYNIC_LOG_INFO, line);
    }
    if (fault->answer == NULL) return; /* the hold queued at open goes on */
    fault->host->cancel_pending(conn);
    fault->answer(fault, conn, status == TLS_HELLO_COMPLETE ? &state->reader.hello : NULL);
}

/* The client gave up. Once the answer is queued it ends the connection itself; before, or when
 * the fault never answers, only the long hold is queued: close now instead. */
void tls_fault_conn_peer_closed(void *raw, cynic_conn *conn) {
    tls_fault_conn *state = raw;
    if (state == NULL) return; /* out of memory: the reset is queued */
    if (state->answered && state->fault->answer != NULL) return;
    const cynic_host *host = state->fault->host;
    host->cancel_pending(conn);
    host->close(conn);
}

void tls_fault_conn_end(void *state, cynic_conn *conn) {
    (void)conn;
    free(state);
}
