// What a client's transport must be (client_tls.mode) and what it was when its startup message came.

/// The proxy's demands on a client's transport, decided from the configured mode.
/// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
public struct ClientEncryptionPolicy: Sendable, Equatable {
    /// SSLRequest is answered 'S' and TLS follows; otherwise 'N'.
    public var offersTLS: Bool
    /// A startup message on a plaintext connection is refused.
    public var requiresTLS: Bool
    /// The client must have presented a certificate (the TLS layer has verified any it sent).
    public var requiresCertificate: Bool
    /// The certificate's common name must be the user name of the startup message.
    public var certificateMustNameUser: Bool

    public init(offersTLS: Bool, requiresTLS: Bool, requiresCertificate: Bool = false, certificateMustNameUser: Bool = false) {
        self.offersTLS = offersTLS
        self.requiresTLS = requiresTLS
        self.requiresCertificate = requiresCertificate
        self.certificateMustNameUser = certificateMustNameUser
    }

    /// SSLRequest answered 'N', plaintext accepted.
    public static let plaintextOnly = ClientEncryptionPolicy(offersTLS: false, requiresTLS: false)
}

/// The client's transport once TLS is up.
public struct ClientTLSIdentity: Sendable, Equatable {
    /// Whether the client presented a certificate (already verified by the TLS layer when it did).
    public var hasCertificate: Bool
    /// The certificate subject's common name.
    public var commonName: String?

    public init(hasCertificate: Bool, commonName: String?) {
        self.hasCertificate = hasCertificate
        self.commonName = commonName
    }
}

extension ClientEncryptionPolicy {
    /// Why a startup message for `user` over this transport (nil: plaintext) is refused, or nil when it is accepted.
    /// The refusals read like PostgreSQL's own for the same cases, with SQLSTATE 28000.
    func refusal(user: String, tls: ClientTLSIdentity?) -> ErrorFields? {
        func refuse(_ message: String, hint: String? = nil) -> ErrorFields {
            ErrorFields(severity: "FATAL", sqlState: SQLState.invalidAuthorizationSpecification, message: message, hint: hint)
        }
        guard let tls else {
            guard requiresTLS else { return nil }
            return refuse("switchyard requires an encrypted connection (TLS); this one is not encrypted",
                          hint: "Connect with sslmode=require or stronger.")
        }
        if requiresCertificate && !tls.hasCertificate {
            return refuse("connection requires a valid client certificate",
                          hint: "Connect with sslcert and sslkey naming a certificate signed by the CA in client_tls.ca.")
        }
        if certificateMustNameUser && tls.commonName != user {
            let name = tls.commonName.map { "\"\($0)\"" } ?? "no common name"
            return refuse("certificate authentication failed for user \"\(user)\": the client certificate's common name is \(name)")
        }
        return nil
    }
}
