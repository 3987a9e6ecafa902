/*
 * The TLS fault plugins' ClientHello reader (plugins/tls-client-hello), compiled from its own
 * source with the fuzzer: `clang -fsanitize=fuzzer,address` (scripts/fuzz.sh does it).
 *
 * The input is what a client sends first. Checked: fed whole and fed in pieces (a byte at a
 * time, and in pieces of 2 to 8 bytes), the reader ends in the same state with the same fields;
 * a refusal has a reason, a complete ClientHello has at least one cipher suite lying inside the
 * reader's own message buffer, and nothing it reports lies outside what was fed.
 */
#include "tls-client-hello.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void broken(const char *what) {
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static tls_hello_status feed(tls_hello_reader *reader, const uint8_t *data, size_t size, size_t piece) {
    tls_hello_reader_init(reader);
    tls_hello_status status = tls_hello_read(reader, NULL, 0);
    for (size_t at = 0; at < size; at += piece) {
        size_t length = size - at < piece ? size - at : piece;
        status = tls_hello_read(reader, data + at, length);
    }
    /* Once decided, it stays decided: more bytes change nothing. */
    tls_hello_status again = tls_hello_read(reader, (const uint8_t *)"\x16\x03\x01", 3);
    if (status != TLS_HELLO_NEED_MORE && again != status) broken("a decided reader changed its mind");
    return status;
}

static void check(const tls_hello_reader *reader) {
    if (reader->status == TLS_HELLO_NOT_TLS && (reader->reason == NULL || reader->reason[0] == 0))
        broken("refused without a reason");
    if (reader->status != TLS_HELLO_NOT_TLS && reader->reason != NULL) broken("a reason without a refusal");
    if (reader->status == TLS_HELLO_COMPLETE) {
        const tls_client_hello *hello = &reader->hello;
        if (hello->cipher_suite_count == 0) broken("a complete ClientHello without cipher suites");
        if (hello->session_id_length > 32) broken("a session id over 32 bytes");
        const uint8_t *first = hello->cipher_suites, *end = reader->message + reader->message_length;
        if (first < reader->message || first + 2 * (size_t)hello->cipher_suite_count > end)
            broken("cipher suites outside the message read");
        volatile uint16_t sum = 0;
        for (uint16_t i = 0; i < hello->cipher_suite_count; i++) sum += tls_hello_cipher_suite(hello, i);
        (void)sum;
    }
}

static void same(const tls_hello_reader *a, const tls_hello_reader *b) {
    if (a->status != b->status) broken("the status depends on how the bytes arrived");
    if (a->reason != b->reason) broken("the reason depends on how the bytes arrived");
    if (a->status != TLS_HELLO_COMPLETE) return;
    const tls_client_hello *x = &a->hello, *y = &b->hello;
    if (x->record_version != y->record_version || x->legacy_version != y->legacy_version
        || x->session_id_length != y->session_id_length
        || memcmp(x->session_id, y->session_id, x->session_id_length) != 0
        || x->cipher_suite_count != y->cipher_suite_count
        || memcmp(x->cipher_suites, y->cipher_suites, 2 * (size_t)x->cipher_suite_count) != 0)
        broken("the fields depend on how the bytes arrived");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* About 16 KiB each: on the heap, as the plugins keep theirs. */
    static tls_hello_reader *whole, *bytewise, *pieces;
    if (whole == NULL) {
        whole = malloc(sizeof *whole);
        bytewise = malloc(sizeof *bytewise);
        pieces = malloc(sizeof *pieces);
    }
    feed(whole, data, size, size ? size : 1);
    feed(bytewise, data, size, 1);
    feed(pieces, data, size, 2 + size % 7);
    check(whole);
    same(whole, bytewise);
    same(whole, pieces);
    return 0;
}
