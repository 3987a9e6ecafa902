@testable import CynicRuntime
import NIOCore
import NIOSSL
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Why a TLS handshake failed, in a line, and whose doing it was")
struct TLSFailureTests {
    @Test("BoringSSL's reason codes: the client's alert is the peer's doing; a refusal is cynic's", arguments: [
        ("error:10000418:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA", "the client sent alert unknown_ca", true),
        ("error:10000416:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_UNKNOWN", "the client sent alert certificate_unknown", true),
        ("error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST", "the client spoke plain HTTP, not TLS", false),
        ("error:100000c7:SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE",
         "the client sent no certificate, and this service requires one", false),
        ("error:100000f0:SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL", "no TLS version in common (unsupported protocol)", false),
        ("error:1000008b:SSL routines:OPENSSL_internal:DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
         "the client refused the handshake (its alert unreadable: decryption failed or bad record mac)", true),
        ("error:1000006f:SSL routines:OPENSSL_internal:SOMETHING_NEW", "something new", false),
    ])
    func codes(text: String, reason: String, byPeer: Bool) {
        let failure = TLSFailure(boringSSL: text)
        #expect(failure.reason == reason)
        #expect(failure.endedBy == (byPeer ? .peer : .cynic))
    }

    @Test("a reset, a ragged close and an EOF in the handshake are the client leaving")
    func leaving() {
        #expect(TLSFailure(IOError(errnoCode: ECONNRESET, reason: "read")) == TLSFailure(reason: "the client: Connection reset by peer", endedBy: .peer))
        #expect(TLSFailure(NIOSSLError.uncleanShutdown).endedBy == .peer)
        #expect(TLSFailure(boringSSL: "sslError([eofDuringHandshake])").reason == "the client left during the handshake")
    }

    @Test("only upper-case words with an underscore are reason codes")
    func reasonCodes() {
        #expect(TLSFailure.reasonCodes(in: "error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST, then: A_1 B _X")
                == ["HTTP_REQUEST", "A_1"])
    }
}
