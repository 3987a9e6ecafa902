/*
 * tls-client-hello.h — reads a TLS ClientHello as it arrives, with no TLS library.
 *
 * The TLS fault plugins (tls-hang, tls-alert, tls-plaintext, tls-reset, tls-truncated) act on
 * the client's first flight, so they need to know when it is in and a few of its fields. This is
 * that reader: a bounded incremental parser over bytes, with no I/O, no allocation and no global
 * state, so it can be tested and fuzzed alone.
 *
 * A ClientHello comes in handshake records (content type 22, `16 03 0x LL LL`, at most 2^14
 * bytes each) holding a handshake message of type 1 with a 3-byte length (RFC 8446 §4, §5.1).
 * It may arrive a byte at a time, and a large one may span several records; the reader strips
 * the record headers and keeps the message, at most TLS_HELLO_MAX_MESSAGE bytes of it. Nothing
 * else is buffered: one record header (5 bytes) at a time.
 *
 * THREADS. A reader is plain memory: one caller at a time.
 * OWNERSHIP. The caller owns the reader (about 16 KiB: allocate it, do not put it on a stack);
 * `tls_hello_read` copies what it needs from `bytes`. `hello.cipher_suites` points into the
 * reader and is valid while the reader is, unchanged once complete.
 */
#ifndef TLS_CLIENT_HELLO_H
#define TLS_CLIENT_HELLO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest ClientHello message kept, its 4-byte handshake header included. A browser's is
 * under 2 KiB, with post-quantum key shares; a longer one is refused, not buffered. */
#define TLS_HELLO_MAX_MESSAGE 16384u
/* The longest record payload TLS allows (2^14). */
#define TLS_HELLO_MAX_RECORD 16384u

typedef enum tls_hello_status {
    /* Every byte so far fits a ClientHello that is not complete yet: feed more. */
    TLS_HELLO_NEED_MORE = 0,
    /* The whole ClientHello is in and `hello` holds its fields. */
    TLS_HELLO_COMPLETE = 1,
    /* The bytes are not a ClientHello this reader takes: not a handshake record, not a
     * ClientHello, lengths that do not add up, or longer than TLS_HELLO_MAX_MESSAGE. `reason`
     * says which. */
    TLS_HELLO_NOT_TLS = 2,
} tls_hello_status;

/* The fields of a complete ClientHello. */
typedef struct tls_client_hello {
    /* The version of the first record's header (0x0301 from most clients). */
    uint16_t record_version;
    /* `legacy_version` of the ClientHello: 0x0303 for TLS 1.2 and 1.3 (1.3 is offered in an
     * extension), 0x0301 from a TLS 1.0 client. */
    uint16_t legacy_version;
    uint8_t session_id_length; /* 0 to 32 */
    uint8_t session_id[32];
    /* The offered cipher suites, `cipher_suite_count` big-endian pairs, in the client's order. */
    const uint8_t *cipher_suites;
    uint16_t cipher_suite_count;
} tls_client_hello;

typedef struct tls_hello_reader {
    tls_hello_status status;
    /* Once NOT_TLS: why, a static string. NULL otherwise. */
    const char *reason;
    /* Once COMPLETE. */
    tls_client_hello hello;

    /* Where it is: the record header being read, and what is left of the record's payload. */
    uint8_t record_header[5];
    size_t record_header_length;
    size_t record_remaining;
    int seen_record;
    /* The handshake message so far: its 4-byte header, then the body; its whole length once
     * the header is in (0 before). */
    uint8_t message[TLS_HELLO_MAX_MESSAGE];
    size_t message_length;
    size_t message_expected;
} tls_hello_reader;

/* Makes `reader` a fresh one, before the first byte. */
void tls_hello_reader_init(tls_hello_reader *reader);

/* Feeds the next `length` bytes the client sent (NULL is allowed with 0). Returns the status
 * after them. Once COMPLETE or NOT_TLS, it stays so: later bytes are not looked at, and bytes
 * after the end of the ClientHello (in its last record, or beyond) are ignored. */
tls_hello_status tls_hello_read(tls_hello_reader *reader, const uint8_t *bytes, size_t length);

/* The `index`th offered cipher suite (0 ≤ index < cipher_suite_count). */
uint16_t tls_hello_cipher_suite(const tls_client_hello *hello, uint16_t index);

#ifdef __cplusplus
}
#endif

#endif /* TLS_CLIENT_HELLO_H */
