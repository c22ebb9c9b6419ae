// The TLS contexts and policies sessions follow, built from client_tls and server_tls.
import SwitchyardConfig
import SwitchyardIO
import SwitchyardProtocol

/// Built when the configuration is loaded or reloaded, so a certificate or key OpenSSL cannot use is
/// reported then, with its file, and never at a client's handshake.
public struct TLSSettings: Sendable {
    /// Accepts client handshakes; nil when client_tls.mode is disable.
    let client: TLSContext?
    let clientPolicy: ClientEncryptionPolicy
    /// Connects to the upstream; nil when server_tls.sslmode is disable.
    let server: TLSContext?
    let upstreamMode: UpstreamNegotiation.Mode

    public init(_ config: SwitchyardConfiguration) throws(TLSError) {
        let clientTLS = config.clientTLS
        let mode = clientTLS.mode
        clientPolicy = ClientEncryptionPolicy(
            offersTLS: mode.offersTLS, requiresTLS: mode.requiresTLS,
            requiresCertificate: mode.requiresCertificate, certificateMustNameUser: mode == .verifyFull)
        if mode.offersTLS, let cert = clientTLS.cert, let key = clientTLS.key {
            client = try TLSContext.server(certificate: cert, privateKey: key, clientCA: mode.requiresCertificate ? clientTLS.ca : nil)
        } else {
            client = nil
        }
        let serverTLS = config.serverTLS
        // As in libpq, sslmode does not apply to a Unix socket (PostgreSQL offers no TLS on one).
        switch config.upstream.isUnixSocket ? .disable : serverTLS.sslmode {
        case .disable: upstreamMode = .disable
        case .allow: upstreamMode = .allow
        case .prefer: upstreamMode = .prefer
        case .require, .verifyCA, .verifyFull: upstreamMode = .require
        }
        if serverTLS.sslmode == .disable {
            server = nil
        } else {
            server = try TLSContext.client(rootCertificates: serverTLS.rootCert, verifyChain: serverTLS.verifiesChain,
                                           verifyHostName: serverTLS.sslmode == .verifyFull)
        }
    }
}
