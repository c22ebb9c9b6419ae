// Takes SCRAM-SHA-256-PLUS out of the server's first authentication message when the proxy terminates TLS.

/// Channel binding (SCRAM-SHA-256-PLUS) ties a SCRAM exchange to the TLS connection it runs on: the
/// client proves it saw the server's own certificate. Through a TLS-terminating proxy the client sees
/// the proxy's certificate and the server its own connection to the proxy, so a binding made on one
/// side can never verify on the other. When the upstream link is TLS, PostgreSQL offers the -PLUS
/// mechanism; this filter removes it from the offer so the client chooses plain SCRAM-SHA-256.
///
/// It looks at the server's first message only (the authentication request or an error) and then
/// passes everything through untouched.
/// https://www.postgresql.org/docs/current/sasl-authentication.html#SASL-SCRAM-SHA-256
public struct SASLOfferFilter: Sendable {
    public static let channelBindingMechanism = "SCRAM-SHA-256-PLUS"
    /// An authentication request is a few dozen bytes; anything this large is not one.
    public static let maximumFirstMessage = 64 * 1024

    /// Until the first message has gone by.
    public private(set) var isActive = true
    /// Whether the offer lost SCRAM-SHA-256-PLUS: the client's answer is then worth a look (`refusal(forClientBytes:)`).
    public private(set) var removedChannelBinding = false
    private var pending: [UInt8] = []

    public init() {}

    /// Returns the bytes to pass on for `chunk`: none while the first message is incomplete, then that
    /// message (rewritten if it offered channel binding) and everything after it.
    public mutating func process(_ chunk: UnsafeRawBufferPointer) throws(ProtocolError) -> [UInt8] {
        pending.append(contentsOf: chunk)
        guard pending.count >= 5 else { return [] }
        let id = pending[0]
        let length = Int(pending[1]) << 24 | Int(pending[2]) << 16 | Int(pending[3]) << 8 | Int(pending[4])
        guard length >= 4, length <= Self.maximumFirstMessage else {
            throw .invalidLength(messageID: id, length: length)
        }
        let end = 1 + length
        guard pending.count >= end else { return [] }
        isActive = false
        var out = pending
        pending = []
        guard id == BackendMessageID.authentication.rawValue,
              case let .authentication(.sasl(mechanisms)) = try BackendMessage.decode(id: id, body: Array(out[5..<end])) else {
            return out
        }
        let kept = mechanisms.filter { $0 != Self.channelBindingMechanism }
        guard kept.count != mechanisms.count, !kept.isEmpty else { return out }
        out.replaceSubrange(0..<end, with: BackendMessage.authentication(.sasl(mechanisms: kept)).encoded())
        removedChannelBinding = true
        return out
    }

    /// The client's answer to the filtered offer, when it cannot succeed: a SASLInitialResponse whose
    /// GS2 header is "y" means "I could bind, but you did not offer it", and PostgreSQL, which could
    /// bind on its own TLS link, refuses that as a possible downgrade. Libpq sends it whenever its own
    /// connection is TLS and channel_binding is prefer (the default). Saying so plainly beats the server's
    /// "channel binding negotiation error". Nil for anything else, including an incomplete message.
    public static func refusal(forClientBytes bytes: UnsafeRawBufferPointer) -> ErrorFields? {
        guard bytes.count >= 5, bytes[0] == FrontendMessageID.password.rawValue else { return nil }
        let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        guard length >= 4, bytes.count >= 1 + length else { return nil }
        let body = Array(bytes[5..<(1 + length)])
        guard let nul = body.firstIndex(of: 0), String(decoding: body[..<nul], as: UTF8.self) == "SCRAM-SHA-256",
              body.count >= nul + 1 + 4 + 2 else { return nil }
        let data = body[(nul + 5)...]
        guard data.first == UInt8(ascii: "y"), data.dropFirst().first == UInt8(ascii: ",") else { return nil }
        return ErrorFields(
            severity: "FATAL", sqlState: SQLState.invalidAuthorizationSpecification,
            message: "SCRAM channel binding cannot pass through switchyard: the client's TLS connection ends at switchyard, the server's at PostgreSQL",
            hint: "Connect with channel_binding=disable; the client's connection to switchyard is still encrypted and its certificate verified.")
    }
}
