/*
 * tls-client-hello.c — the ClientHello reader (see tls-client-hello.h).
 *
 * Every length is checked against what is left before it is used, and every copy is bounded by
 * the reader's own arrays, so no input can make it read or write outside them.
 */
#include "tls-client-hello.h"

#include <string.h>

#define TLS_CONTENT_HANDSHAKE 22
#define TLS_HANDSHAKE_CLIENT_HELLO 1
#define TLS_RECORD_HEADER 5
#define TLS_HANDSHAKE_HEADER 4

static uint16_t tls_hello_u16(const uint8_t *bytes) {
    return (uint16_t)(bytes[0] << 8 | bytes[1]);
}

static tls_hello_status tls_hello_refuse(tls_hello_reader *reader, const char *reason) {
    reader->status = TLS_HELLO_NOT_TLS;
    reader->reason = reason;
    return reader->status;
}

void tls_hello_reader_init(tls_hello_reader *reader) {
    /* The message buffer needs no clearing: only what was written into it is ever read. */
    reader->status = TLS_HELLO_NEED_MORE;
    reader->reason = NULL;
    memset(&reader->hello, 0, sizeof reader->hello);
    reader->record_header_length = 0;
    reader->record_remaining = 0;
    reader->seen_record = 0;
    reader->message_length = 0;
    reader->message_expected = 0;
}

uint16_t tls_hello_cipher_suite(const tls_client_hello *hello, uint16_t index) {
    return tls_hello_u16(hello->cipher_suites + 2 * (size_t)index);
}

/* The extensions block, when there is one, must hold whole extensions and nothing else. */
static int tls_hello_extensions_fit(const uint8_t *at, const uint8_t *end) {
    if (at == end) return 1; /* none: allowed before TLS 1.3 */
    if (end - at < 2 || tls_hello_u16(at) != (size_t)(end - at) - 2) return 0;
    for (at += 2; at < end;) {
        if (end - at < 4 || tls_hello_u16(at + 2) > (size_t)(end - at) - 4) return 0;
        at += 4 + tls_hello_u16(at + 2);
    }
    return 1;
}

/* The whole message is in: reads the fields of the body (RFC 8446 §4.1.2). */
static tls_hello_status tls_hello_parse_body(tls_hello_reader *reader) {
    const uint8_t *at = reader->message + TLS_HANDSHAKE_HEADER;
    const uint8_t *end = reader->message + reader->message_expected;
    tls_client_hello *hello = &reader->hello;

    if (end - at < 2 + 32 + 1) return tls_hello_refuse(reader, "ClientHello shorter than its fixed fields");
    hello->legacy_version = tls_hello_u16(at);
    if (at[0] != 3) return tls_hello_refuse(reader, "ClientHello version is not 3.x");
    at += 2 + 32; /* the random */

    size_t session_id_length = *at++;
    if (session_id_length > sizeof hello->session_id)
        return tls_hello_refuse(reader, "session id longer than 32 bytes");
    if ((size_t)(end - at) < session_id_length) return tls_hello_refuse(reader, "session id past the end");
    hello->session_id_length = (uint8_t)session_id_length;
    memcpy(hello->session_id, at, session_id_length);
    at += session_id_length;

    if (end - at < 2) return tls_hello_refuse(reader, "no cipher suites");
    size_t suites_length = tls_hello_u16(at);
    at += 2;
    if (suites_length == 0 || suites_length % 2 != 0)
        return tls_hello_refuse(reader, "cipher suite list empty or of odd length");
    if ((size_t)(end - at) < suites_length) return tls_hello_refuse(reader, "cipher suites past the end");
    hello->cipher_suites = at;
    hello->cipher_suite_count = (uint16_t)(suites_length / 2);
    at += suites_length;

    if (end - at < 1) return tls_hello_refuse(reader, "no compression methods");
    size_t compressions = *at++;
    if (compressions == 0) return tls_hello_refuse(reader, "compression method list empty");
    if ((size_t)(end - at) < compressions) return tls_hello_refuse(reader, "compression methods past the end");
    at += compressions;

    if (!tls_hello_extensions_fit(at, end)) return tls_hello_refuse(reader, "extension lengths do not add up");
    reader->status = TLS_HELLO_COMPLETE;
    return reader->status;
}

/* Takes bytes of a record header; refuses at the first byte that cannot start a handshake
 * record, so a plain HTTP request is told apart from its first byte. */
static size_t tls_hello_take_record_header(tls_hello_reader *reader, const uint8_t *bytes, size_t length) {
    size_t take = TLS_RECORD_HEADER - reader->record_header_length;
    if (take > length) take = length;
    memcpy(reader->record_header + reader->record_header_length, bytes, take);
    reader->record_header_length += take;

    const uint8_t *header = reader->record_header;
    if (header[0] != TLS_CONTENT_HANDSHAKE) {
        tls_hello_refuse(reader, reader->seen_record ? "a record that is not a handshake inside the ClientHello"
                                                     : "not a TLS handshake record");
    } else if (reader->record_header_length >= 2 && header[1] != 3) {
        tls_hello_refuse(reader, "record version is not 3.x");
    } else if (reader->record_header_length == TLS_RECORD_HEADER) {
        size_t payload = tls_hello_u16(header + 3);
        if (payload == 0) {
            tls_hello_refuse(reader, "empty handshake record");
        } else if (payload > TLS_HELLO_MAX_RECORD) {
            tls_hello_refuse(reader, "record longer than 2^14 bytes");
        } else {
            if (!reader->seen_record) reader->hello.record_version = tls_hello_u16(header + 1);
            reader->seen_record = 1;
            reader->record_remaining = payload;
            reader->record_header_length = 0;
        }
    }
    return take;
}

/* Takes payload bytes of the current record into the message. */
static size_t tls_hello_take_payload(tls_hello_reader *reader, const uint8_t *bytes, size_t length) {
    size_t wanted = reader->message_expected == 0 ? TLS_HANDSHAKE_HEADER - reader->message_length
                                                  : reader->message_expected - reader->message_length;
    size_t take = length;
    if (take > reader->record_remaining) take = reader->record_remaining;
    if (take > wanted) take = wanted;
    memcpy(reader->message + reader->message_length, bytes, take);
    reader->message_length += take;
    reader->record_remaining -= take;

    if (reader->message_expected == 0 && reader->message_length == TLS_HANDSHAKE_HEADER) {
        const uint8_t *header = reader->message;
        if (header[0] != TLS_HANDSHAKE_CLIENT_HELLO) {
            tls_hello_refuse(reader, "a handshake message that is not a ClientHello");
            return take;
        }
        size_t body = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
        if (body > TLS_HELLO_MAX_MESSAGE - TLS_HANDSHAKE_HEADER) {
            tls_hello_refuse(reader, "ClientHello longer than the 16 KiB this reader keeps");
            return take;
        }
        reader->message_expected = TLS_HANDSHAKE_HEADER + body;
    }
    if (reader->message_expected != 0 && reader->message_length == reader->message_expected) {
        tls_hello_parse_body(reader);
    }
    return take;
}

tls_hello_status tls_hello_read(tls_hello_reader *reader, const uint8_t *bytes, size_t length) {
    while (reader->status == TLS_HELLO_NEED_MORE && length > 0) {
        size_t taken = reader->record_remaining == 0 ? tls_hello_take_record_header(reader, bytes, length)
                                                     : tls_hello_take_payload(reader, bytes, length);
        bytes += taken;
        length -= taken;
    }
    return reader->status;
}
