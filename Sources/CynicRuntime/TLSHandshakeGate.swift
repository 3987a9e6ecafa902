import Foundation
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Holds a TLS connection back from its behaviour until the handshake is done: it sits behind
/// the `NIOSSLServerHandler`, and once TLS is up it adds the connection's own handlers
/// (`install`) behind itself, tells them the channel is active, and leaves. The behaviour, its
/// shapers and their timings so begin with a TLS connection, as a client sees it.
///
/// A handshake that fails never reaches the behaviour: the gate records it, end `tls_failed` and
/// why (the client's alert, no version or cipher in common, a missing client certificate, not
/// TLS at all). Its console line is at info level, not a warning: a refused certificate is what
/// a TLS fault is there to cause. A client that never finishes the handshake is dropped after
/// `handshakeTimeout`, so half-open handshakes cannot pile up.
final class TLSHandshakeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let handshakeTimeout = TimeAmount.seconds(30)

    private let service: String
    private let setup: ServiceSetup
    private var logger: Logger
    private let events: ConnectionEventLog?
    private let install: (any Channel) throws -> Void
    private var failure: TLSFailure?
    private var timeout: Scheduled<Void>?
    private var startedAt = NIODeadline.now()
    private let startedWall = Date()
    private var peer: SocketAddress?
    private var passedOn = false

    init(service: String, setup: ServiceSetup, logger: Logger, events: ConnectionEventLog?,
         install: @escaping (any Channel) throws -> Void) {
        self.service = service
        self.setup = setup
        self.logger = logger
        self.events = events
        self.install = install
    }

    func channelActive(context: ChannelHandlerContext) {
        // Not passed on: the connection's handlers are not there yet.
        startedAt = .now()
        peer = context.remoteAddress
        if let peer { logger[metadataKey: "peer"] = "\(ConnectionDriver.describe(peer))" }
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.handshakeTimeout) {
            self.failure = self.failure ?? TLSFailure(reason: "no handshake within \(Self.handshakeTimeout.nanoseconds / 1_000_000_000) s",
                                                      endedBy: .cynic)
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted = event, !passedOn else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        passedOn = true
        timeout?.cancel()
        do {
            try install(context.channel)
        } catch {
            logger.error("cannot set up the connection after the TLS handshake: \(error)")
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !passedOn else {
            context.fireErrorCaught(error)
            return
        }
        failure = failure ?? TLSFailure(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !passedOn else {
            context.fireChannelInactive()
            return
        }
        timeout?.cancel()
        let failure = failure ?? TLSFailure(reason: "the client left during the handshake", endedBy: .peer)
        // The record's console line says it; without an event log, only a debug line.
        guard let events else {
            logger.debug("TLS handshake failed: \(failure.reason)")
            return
        }
        // cynic stopping closes handshakes in flight too: that, not the client, ended them.
        let end = self.failure == nil && ServerShutdown.isUnderWay
            ? ConnectionEnd(.serverStopping, by: .cynic)
            : ConnectionEnd(.tlsFailed, by: failure.endedBy, reason: failure.reason)
        // No shaper was drawn: the connection never reached them.
        let context = RecordContext(log: events, service: service, setup: setup, applied: setup.shapers.map { _ in false })
        _ = events.add(context.record(peer: peer, client: .init(bytesIn: 0, bytesOut: 0), upstream: nil,
                                      started: startedWall, startedAt: startedAt, end: end))
    }
}

/// Why a TLS connection failed, in a line a user reads, and whose doing it was: the client's
/// alert (it refused our certificate) or cynic's refusal (no version in common, no client
/// certificate, not TLS).
struct TLSFailure: Sendable, Equatable {
    var reason: String
    var endedBy: ConnectionEnd.Origin

    init(reason: String, endedBy: ConnectionEnd.Origin) {
        self.reason = reason
        self.endedBy = endedBy
    }

    init(_ error: any Error) {
        if let io = error as? IOError {
            self.init(reason: "the client: \(String(cString: strerror(io.errnoCode)))", endedBy: .peer)
            return
        }
        if let boring = error as? BoringSSLError {
            self.init(boringSSL: "\(boring)")
            return
        }
        guard let ssl = error as? NIOSSLError else {
            self.init(reason: "\(error)", endedBy: .cynic)
            return
        }
        switch ssl {
        case .handshakeFailed(let boring):
            self.init(boringSSL: "\(boring)")
        case .uncleanShutdown:
            self.init(reason: "the client left without a close_notify", endedBy: .peer)
        default:
            self.init(reason: "\(ssl)", endedBy: .cynic)
        }
    }

    /// BoringSSL's error stack as text ("...:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA"):
    /// the last reason code, which says an alert the client sent ("the client sent alert
    /// unknown_ca") or what cynic refused ("no shared cipher").
    init(boringSSL text: String) {
        let codes = Self.reasonCodes(in: text)
        guard let code = codes.last else {
            self.init(reason: text.contains("EOF") || text.lowercased().contains("eof")
                      ? "the client left during the handshake" : text, endedBy: .peer)
            return
        }
        if let range = code.range(of: "_ALERT_") {
            self.init(reason: "the client sent alert \(code[range.upperBound...].lowercased())", endedBy: .peer)
        } else if Self.unreadableAlerts.contains(code) {
            // Under TLS 1.3 the alert of a client that refuses the certificate reaches BoringSSL
            // as a record it cannot read: it reports the record, not the alert.
            self.init(reason: "the client refused the handshake (its alert unreadable: \(Self.words(code)))", endedBy: .peer)
        } else {
            self.init(reason: Self.refusals[code] ?? Self.words(code), endedBy: .cynic)
        }
    }

    /// What cynic's refusals mean, where BoringSSL's words do not say it.
    static let refusals = [
        "HTTP_REQUEST": "the client spoke plain HTTP, not TLS",
        "HTTPS_PROXY_REQUEST": "the client spoke plain HTTP (a proxy CONNECT), not TLS",
        "WRONG_VERSION_NUMBER": "the client spoke no TLS (wrong version number)",
        "UNSUPPORTED_PROTOCOL": "no TLS version in common (unsupported protocol)",
        "NO_SHARED_CIPHER": "no cipher in common",
        "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate, and this service requires one",
        "CERTIFICATE_VERIFY_FAILED": "the client's certificate did not verify against the local CA",
    ]

    static let unreadableAlerts: Set<String> = ["DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "BAD_PACKET_LENGTH"]

    /// "NO_SHARED_CIPHER" as "no shared cipher".
    static func words(_ code: String) -> String {
        code.lowercased().replacingOccurrences(of: "_", with: " ")
    }

    /// The upper-case reason codes of an OpenSSL-style error text, in order.
    static func reasonCodes(in text: String) -> [String] {
        var codes: [String] = []
        var word = ""
        for character in text + " " {
            if character.isUppercase || character.isNumber || character == "_" {
                word.append(character)
            } else {
                // A code starts with a letter and has an underscore inside ("OPENSSL_internal"
                // leaves "OPENSSL_", which is not one).
                if word.first?.isLetter == true, word.last != "_", word.contains("_") { codes.append(word) }
                word = ""
            }
        }
        return codes
    }
}
