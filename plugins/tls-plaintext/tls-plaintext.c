/*
 * tls-plaintext — answers the client's TLS ClientHello in plain HTTP: a 400, then a FIN.
 *
 * The client speaks TLS to a port that speaks plain HTTP: a URL with https:// for an http://
 * service, a load balancer whose TLS listener was replaced by a plain one, a port mix-up. A plain
 * web server reads the ClientHello as a broken request and answers it as nginx does, with
 * "400 Bad Request", `Connection: close`. The client reads "HTTP/1.1 400" as a TLS record header
 * and fails on its version: curl exits 35 "wrong version number", Python raises SSLError
 * "[SSL: WRONG_VERSION_NUMBER]", openssl s_client prints "wrong version number".
 *
 * First bytes that are not a ClientHello (a plain HTTP request) get the same 400 at once: this
 * server cannot parse them either, and the fault is the point.
 */
#include <cynic/plugin.h>
#include <stdio.h>

#include "tls-fault.h"

/* nginx's answer to a ClientHello on a plain port, without its Server and Date headers. */
static const char tls_plaintext_body[] =
    "<html>\r\n"
    "<head><title>400 Bad Request</title></head>\r\n"
    "<body>\r\n"
    "<center><h1>400 Bad Request</h1></center>\r\n"
    "<hr><center>cynic</center>\r\n"
    "</body>\r\n"
    "</html>\r\n";

static void tls_plaintext_answer(const tls_fault *fault, cynic_conn *conn, const tls_client_hello *hello) {
    (void)hello;
    char head[160];
    int length = snprintf(head, sizeof head,
                          "HTTP/1.1 400 Bad Request\r\n"
                          "Content-Type: text/html\r\n"
                          "Content-Length: %zu\r\n"
                          "Connection: close\r\n"
                          "\r\n",
                          sizeof tls_plaintext_body - 1);
    fault->host->send(conn, head, (size_t)length);
    fault->host->send(conn, tls_plaintext_body, sizeof tls_plaintext_body - 1);
    fault->host->close(conn);
}

static void *tls_plaintext_create(const cynic_host *host) {
    return tls_fault_create(host, sizeof(tls_fault), tls_plaintext_answer);
}

static const cynic_plugin tls_plaintext_plugin = {
    .abi_version = CYNIC_ABI_VERSION,
    .struct_size = sizeof(cynic_plugin),
    .name = "tls-plaintext",
    .description = "Answers the TLS ClientHello with a plain HTTP 400 Bad Request, then closes.",
    .default_port = 2032,
    .create = tls_plaintext_create,
    TLS_FAULT_CALLBACKS,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) {
    return &tls_plaintext_plugin;
}
