// OpenSSL contexts built from PEM files: one to accept clients, one to connect to the upstream.
import COpenSSL
import Glibc

/// A TLS setup failure: what was being done, and OpenSSL's reason.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var reason: String

    public init(_ operation: String, reason: String) {
        self.operation = operation
        self.reason = reason
    }

    /// The error with OpenSSL's queued reason (the oldest one, which names the cause), clearing the queue.
    static func fromQueue(_ operation: String, fallback: String = "unknown OpenSSL error") -> TLSError {
        TLSError(operation, reason: openSSLErrorText() ?? fallback)
    }

    public var description: String { "\(operation): \(reason)" }
}

/// OpenSSL's oldest queued error as text ("error:0A000086:SSL routines::certificate verify failed"),
/// clearing the queue; nil when it is empty.
func openSSLErrorText() -> String? {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return nil }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &buffer, buffer.count)
    return cString(buffer)
}

/// An `SSL_CTX`: certificates, verification and protocol limits shared by every connection made
/// from it. Built once per configuration and only read afterwards, which OpenSSL allows from any thread.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    /// Whether connections verify that the peer's certificate names the host they connect to.
    public let verifiesHostName: Bool

    private init(context: OpaquePointer, verifiesHostName: Bool) {
        self.context = context
        self.verifiesHostName = verifiesHostName
    }

    deinit { SSL_CTX_free(context) }

    /// The server side, for clients: presents `certificate` (PEM, chain allowed) with `privateKey`.
    /// With `clientCA`, a client certificate is asked for and, when one is sent, must chain to it
    /// (a client that sends none is let through the handshake: the session refuses it with an error
    /// message the client can show, rather than a bare TLS alert).
    public static func server(certificate: String, privateKey: String, clientCA: String?) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw .fromQueue("SSL_CTX_new") }
        let tls = TLSContext(context: ctx, verifiesHostName: false)
        try tls.applyCommonSettings()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
            throw .fromQueue("loading the certificate \(certificate)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1 else {
            throw .fromQueue("loading the private key \(privateKey) for the certificate \(certificate)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .fromQueue("checking the private key \(privateKey) against \(certificate)")
        }
        // Tickets and the session cache would let a client resume without showing its certificate again
        // under a different context; connections to a proxy are long-lived, so nothing is lost.
        _ = sy_ssl_ctx_disable_session_cache(ctx)
        _ = SSL_CTX_set_num_tickets(ctx, 0)
        if let clientCA {
            guard SSL_CTX_load_verify_locations(ctx, clientCA, nil) == 1 else {
                throw .fromQueue("loading the client CA certificates \(clientCA)")
            }
            guard let names = SSL_load_client_CA_file(clientCA) else {
                throw .fromQueue("reading the CA names in \(clientCA)")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        return tls
    }

    /// The client side, for the upstream. With `rootCertificates` and `verifyChain`, the server's
    /// certificate must chain to them; with `verifyHostName` too, it must name the host connected to.
    public static func client(rootCertificates: String?, verifyChain: Bool, verifyHostName: Bool) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw .fromQueue("SSL_CTX_new") }
        let tls = TLSContext(context: ctx, verifiesHostName: verifyChain && verifyHostName)
        try tls.applyCommonSettings()
        if verifyChain {
            guard let rootCertificates else { throw TLSError("verifying the server", reason: "no root certificates given") }
            guard SSL_CTX_load_verify_locations(ctx, rootCertificates, nil) == 1 else {
                throw .fromQueue("loading the root certificates \(rootCertificates)")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        return tls
    }

    /// TLS 1.2 at least, partial writes (the event loop retries the rest), no renegotiation or compression.
    private func applyCommonSettings() throws(TLSError) {
        guard sy_ssl_ctx_set_min_tls12(context) == 1 else { throw .fromQueue("setting TLS 1.2 as the minimum") }
        _ = sy_ssl_ctx_set_nonblocking_modes(context)
        _ = sy_ssl_ctx_set_proxy_options(context)
    }

    /// A TLS stream over `socket` that accepts the handshake (server side).
    public func accepting(_ socket: Socket) throws(TLSError) -> TLSStream {
        let stream = try TLSStream(context: self, socket: socket)
        SSL_set_accept_state(stream.ssl)
        return stream
    }

    /// A TLS stream over `socket` that starts the handshake (client side) to `host`: sent as SNI
    /// when it is a name, and checked against the certificate when this context verifies host names.
    public func connecting(_ socket: Socket, host: String) throws(TLSError) -> TLSStream {
        let stream = try TLSStream(context: self, socket: socket)
        let ssl = stream.ssl
        let isAddress = Self.isIPAddress(host)
        if !isAddress && !host.hasPrefix("/") {
            _ = sy_ssl_set_sni(ssl, host)
        }
        if verifiesHostName {
            let ok = isAddress
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                : SSL_set1_host(ssl, host) == 1
            guard ok else { throw .fromQueue("setting the host name to verify (\(host))") }
        }
        SSL_set_connect_state(ssl)
        return stream
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
