/*
 * tls-alert — answers the client's TLS ClientHello with a fatal alert, then closes.
 *
 * A TLS server that refuses the handshake: no cipher suite in common, a protocol version it no
 * longer speaks, a name it has no certificate for, a client certificate it wanted. The answer is
 * one alert record, `15 03 03 00 02 02 28` for the default handshake_failure, in the record
 * version the client offered (TLS 1.2 at most), then a FIN. What the client says names the
 * alert: curl exits 35 ("sslv3 alert handshake failure", "tlsv1 alert protocol version"), Python
 * raises SSLError "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE]", openssl s_client prints the same.
 *
 * `alert` is an AlertDescription of RFC 8446 or 5246 by name, or any number 0–255 (one no
 * client knows, to see what it makes of it). close_notify and user_canceled go as warnings, as
 * those two are defined; every other alert is fatal.
 *
 * First bytes that are not a ClientHello (a plain HTTP request) get the same alert at once, in a
 * TLS 1.2 record: the fault is the point, and a plain client sees bytes that are not HTTP.
 */
#include <cynic/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls-fault.h"

#define TLS_ALERT_WARNING 1
#define TLS_ALERT_FATAL 2

typedef struct tls_alert_name {
    const char *name;
    uint8_t code;
} tls_alert_name;

/* RFC 8446 §6 and RFC 5246 §7.2, without the codes both mark as no longer to be sent. */
static const tls_alert_name tls_alert_names[] = {
    {"close_notify", 0}, {"unexpected_message", 10}, {"bad_record_mac", 20}, {"record_overflow", 22},
    {"handshake_failure", 40}, {"bad_certificate", 42}, {"unsupported_certificate", 43},
    {"certificate_revoked", 44}, {"certificate_expired", 45}, {"certificate_unknown", 46},
    {"illegal_parameter", 47}, {"unknown_ca", 48}, {"access_denied", 49}, {"decode_error", 50},
    {"decrypt_error", 51}, {"protocol_version", 70}, {"insufficient_security", 71},
    {"internal_error", 80}, {"inappropriate_fallback", 86}, {"user_canceled", 90},
    {"missing_extension", 109}, {"unsupported_extension", 110}, {"unrecognized_name", 112},
    {"bad_certificate_status_response", 113}, {"unknown_psk_identity", 115},
    {"certificate_required", 116}, {"no_application_protocol", 120},
};
#define TLS_ALERT_NAME_COUNT (sizeof tls_alert_names / sizeof tls_alert_names[0])

typedef struct tls_alert_instance {
    tls_fault fault; /* first: the shared connection callbacks take the instance as one */
    uint8_t level;
    uint8_t code;
    char error[1024]; /* configure's message: the host reads it until the instance is destroyed */
} tls_alert_instance;

static const cynic_param tls_alert_params[] = {
    {"alert", CYNIC_TYPE_STRING, "handshake_failure",
     "The alert sent: a name of RFC 8446/5246 (protocol_version, unrecognized_name...) or a number 0-255."},
};

static void tls_alert_answer(const tls_fault *fault, cynic_conn *conn, const tls_client_hello *hello) {
    const tls_alert_instance *self = (const tls_alert_instance *)fault;
    uint16_t version = tls_fault_record_version(hello);
    const uint8_t record[] = {0x15, (uint8_t)(version >> 8), (uint8_t)version, 0x00, 0x02, self->level, self->code};
    fault->host->send(conn, record, sizeof record);
    fault->host->close(conn);
}

static void *tls_alert_create(const cynic_host *host) {
    return tls_fault_create(host, sizeof(tls_alert_instance), tls_alert_answer);
}

/* A whole decimal number 0-255, nothing else. */
static int tls_alert_number(const char *text) {
    if (text[0] == '\0' || strlen(text) > 3) return -1;
    int value = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') return -1;
        value = value * 10 + (*c - '0');
    }
    return value <= 255 ? value : -1;
}

static const char *tls_alert_refuse(tls_alert_instance *self, const char *alert) {
    int length = snprintf(self->error, sizeof self->error, "unknown alert \"%.40s\": use a number 0-255 or one of", alert);
    for (size_t i = 0; i < TLS_ALERT_NAME_COUNT && length > 0 && (size_t)length < sizeof self->error; i++) {
        length += snprintf(self->error + length, sizeof self->error - (size_t)length, "%s %s",
                           i == 0 ? "" : ",", tls_alert_names[i].name);
    }
    return self->error;
}

static const char *tls_alert_configure(void *instance, const char *alert) {
    tls_alert_instance *self = instance;
    if (self == NULL) return "out of memory"; /* create has no other way to fail */
    if (alert == NULL) alert = "";
    int code = tls_alert_number(alert);
    for (size_t i = 0; code < 0 && i < TLS_ALERT_NAME_COUNT; i++) {
        if (strcmp(alert, tls_alert_names[i].name) == 0) code = tls_alert_names[i].code;
    }
    if (code < 0) return tls_alert_refuse(self, alert);
    self->code = (uint8_t)code;
    self->level = code == 0 || code == 90 ? TLS_ALERT_WARNING : TLS_ALERT_FATAL;
    return NULL;
}

static const cynic_plugin tls_alert_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "tls-alert",
    .description = "Answers the TLS ClientHello with an alert record (`alert`, handshake_failure), then closes.",
    .default_port = 2031,
    .params = tls_alert_params,
    .param_count = sizeof tls_alert_params / sizeof tls_alert_params[0],
    .configure = CYNIC_CONFIGURE(tls_alert_configure),
    .create = tls_alert_create,
    TLS_FAULT_CALLBACKS,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &tls_alert_plugin;
}
