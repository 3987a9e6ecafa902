/*
 * tls-truncated — starts a TLS ServerHello, sends only part of it, then closes.
 *
 * A TLS server that dies in the middle of its first flight: a terminator killed or restarted
 * mid-handshake, a connection cut by an idle timeout or a middlebox just after the server began
 * to answer. The ServerHello record's header announces its full length (version 0x0303, a fresh
 * random, the client's session id echoed, the first cipher suite it offered, no compression) and
 * only `bytes` of the record arrive before a FIN. The client waits for the rest and reads an end
 * of stream inside a record: curl exits 35 with "SSL_ERROR_SYSCALL", Python raises SSLError
 * "[SSL: UNEXPECTED_EOF_WHILE_READING]", openssl s_client "unexpected eof while reading".
 *
 * The record is 47 bytes plus the session id echoed (up to 79). First bytes that are not a
 * ClientHello (a plain HTTP request) get the same partial record at once, with no session id and
 * TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
 */
#include <cynic/plugin.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#include "tls-fault.h"

#define TLS_TRUNCATED_FIXED 47       /* the record without a session id */
#define TLS_TRUNCATED_LONGEST 79     /* with a 32-byte one */
#define TLS_TRUNCATED_FALLBACK 0xc02f /* ECDHE-RSA-AES128-GCM-SHA256 */

typedef struct tls_truncated_instance {
    tls_fault fault; /* first: the shared connection callbacks take the instance as one */
    uint32_t bytes;  /* 0: half the record */
} tls_truncated_instance;

static const cynic_param tls_truncated_params[] = {
    {"bytes", CYNIC_TYPE_UINT32, "0",
     "How many bytes of the ServerHello record to send before closing (0: half; at most 78)."},
};

/* GREASE values (RFC 8701) and the signalling suites are offered, never chosen. */
static bool tls_truncated_choosable(uint16_t suite) {
    bool grease = (suite & 0x0f0f) == 0x0a0a && (suite >> 8) == (suite & 0xff);
    return !grease && suite != 0x00ff && suite != 0x5600;
}

static uint16_t tls_truncated_suite(const tls_client_hello *hello) {
    if (hello == NULL) return TLS_TRUNCATED_FALLBACK;
    for (uint16_t i = 0; i < hello->cipher_suite_count; i++) {
        uint16_t suite = tls_hello_cipher_suite(hello, i);
        if (tls_truncated_choosable(suite)) return suite;
    }
    return tls_hello_cipher_suite(hello, 0);
}

/* The whole ServerHello record (RFC 5246 §7.4.1.3) into `record`; returns its length. */
static size_t tls_truncated_server_hello(const tls_client_hello *hello, uint8_t record[TLS_TRUNCATED_LONGEST]) {
    size_t session_id_length = hello != NULL ? hello->session_id_length : 0;
    size_t length = TLS_TRUNCATED_FIXED + session_id_length;
    size_t body = length - 9; /* less the record and handshake headers */
    uint16_t suite = tls_truncated_suite(hello);
    uint8_t *at = record;
    *at++ = 0x16; *at++ = 0x03; *at++ = 0x03;
    *at++ = (uint8_t)((length - 5) >> 8); *at++ = (uint8_t)(length - 5);
    *at++ = 0x02; *at++ = 0x00; *at++ = (uint8_t)(body >> 8); *at++ = (uint8_t)body;
    *at++ = 0x03; *at++ = 0x03;
    /* Should getrandom fail, zeros make a random the client cannot check anyway. */
    memset(at, 0, 32);
    (void)getrandom(at, 32, 0);
    at += 32;
    *at++ = (uint8_t)session_id_length;
    if (session_id_length > 0) memcpy(at, hello->session_id, session_id_length);
    at += session_id_length;
    *at++ = (uint8_t)(suite >> 8); *at++ = (uint8_t)suite;
    *at++ = 0x00; /* the null compression method */
    return length;
}

static void tls_truncated_answer(const tls_fault *fault, cynic_conn *conn, const tls_client_hello *hello) {
    const tls_truncated_instance *self = (const tls_truncated_instance *)fault;
    uint8_t record[TLS_TRUNCATED_LONGEST];
    size_t length = tls_truncated_server_hello(hello, record);
    size_t sent = self->bytes == 0 ? length / 2 : self->bytes;
    if (sent >= length) sent = length - 1; /* always short of the whole */
    fault->host->send(conn, record, sent);
    fault->host->close(conn);
}

static void *tls_truncated_create(const cynic_host *host) {
    return tls_fault_create(host, sizeof(tls_truncated_instance), tls_truncated_answer);
}

static const char *tls_truncated_configure(void *instance, uint32_t bytes) {
    tls_truncated_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (bytes >= TLS_TRUNCATED_LONGEST)
        return "`bytes` must be less than 79, the longest ServerHello record this sends";
    self->bytes = bytes;
    return NULL;
}

static const cynic_plugin tls_truncated_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "tls-truncated",
    .description = "Answers the TLS ClientHello with part of a ServerHello record (`bytes`), then closes.",
    .default_port = 2034,
    .params = tls_truncated_params,
    .param_count = sizeof tls_truncated_params / sizeof tls_truncated_params[0],
    .configure = CYNIC_CONFIGURE(tls_truncated_configure),
    .create = tls_truncated_create,
    TLS_FAULT_CALLBACKS,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &tls_truncated_plugin;
}
