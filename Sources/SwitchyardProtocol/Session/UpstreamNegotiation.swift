// The steps between connecting to the upstream and sending it the client's startup message, by libpq's sslmode.

/// Whether and how the link to the upstream is encrypted, decided as libpq decides it for `sslmode`.
/// Certificate checks (verify-ca, verify-full) belong to the TLS layer; here the question is only
/// whether to ask for TLS, and what an answer means.
/// https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
public struct UpstreamNegotiation: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// Plaintext only.
        case disable
        /// Plaintext first; if the server refuses that connection before authenticating, once more with TLS.
        case allow
        /// TLS if the server accepts the SSLRequest, plaintext if it declines.
        case prefer
        /// TLS or nothing (require, verify-ca, verify-full).
        case require
    }

    public enum Action: Sendable, Equatable {
        /// Send the 8-byte SSLRequest and read the one-byte answer.
        case sendSSLRequest
        /// Start the TLS handshake as a client; call `tlsEstablished` when it is done.
        case startTLS
        /// Send the client's startup message on the link as it now is.
        case sendStartup
        /// Close this connection and connect again (`connected` is called anew).
        case reconnect
        /// Give up: the client gets this reason in a FATAL error.
        case fail(String)
    }

    public let mode: Mode
    /// Whether this connection attempt asks for TLS (allow's second attempt does).
    public private(set) var attemptsTLS: Bool
    /// Whether the link is encrypted now.
    public private(set) var isTLS = false
    /// allow's plaintext attempt: the server's first answer decides whether to try again with TLS.
    public private(set) var watchingFirstAnswer = false

    public init(mode: Mode) {
        self.mode = mode
        attemptsTLS = mode == .prefer || mode == .require
    }

    /// The TCP connection is up.
    public mutating func connected() -> Action {
        isTLS = false
        if attemptsTLS { return .sendSSLRequest }
        watchingFirstAnswer = mode == .allow
        return .sendStartup
    }

    /// The server's answer to the SSLRequest: 'S', 'N', or (from a server that does not know the
    /// request at all) the first byte of an ErrorResponse.
    public mutating func sslResponse(_ byte: UInt8) -> Action {
        switch byte {
        case UInt8(ascii: "S"):
            return .startTLS
        case UInt8(ascii: "N"):
            if mode == .prefer { return .sendStartup }
            return .fail("the server does not accept TLS connections, and server_tls.sslmode is \(mode == .allow ? "allow (plaintext was refused)" : "require or stronger")")
        default:
            return .fail("the server answered the SSL request with an unexpected byte 0x\(String(byte, radix: 16))")
        }
    }

    public mutating func tlsEstablished() -> Action {
        isTLS = true
        return .sendStartup
    }

    /// allow's plaintext attempt got its first answer: an ErrorResponse (typically pg_hba.conf refusing a
    /// connection without encryption) means "try again with TLS"; anything else, carry on in plaintext.
    public mutating func firstAnswer(isError: Bool) -> Action? {
        guard watchingFirstAnswer else { return nil }
        watchingFirstAnswer = false
        guard isError else { return nil }
        attemptsTLS = true
        return .reconnect
    }
}
