// TLS decisions without sockets: SSLRequest answers and startup refusals per client mode, the upstream's sslmode steps, and the SASL offer filter.

import Testing
@testable import SwitchyardProtocol

private let alice = StartupMessage(parameters: [("user", "alice"), ("database", "shop")])

private func refusal(_ action: SessionStateMachine.StartupAction) -> ErrorFields? {
    if case let .reject(fields) = action { return fields }
    return nil
}

@Suite("Client encryption in the session state machine")
struct ClientEncryptionTests {
    static let require = ClientEncryptionPolicy(offersTLS: true, requiresTLS: true)
    static let allow = ClientEncryptionPolicy(offersTLS: true, requiresTLS: false)
    static let verifyFull = ClientEncryptionPolicy(offersTLS: true, requiresTLS: true, requiresCertificate: true, certificateMustNameUser: true)

    @Test("SSLRequest is answered S when TLS is offered; GSSENCRequest is still declined")
    func acceptsWhenOffered() {
        var s = SessionStateMachine(encryption: Self.allow)
        #expect(s.startupPacketReceived(.gssEncRequest) == .declineEncryption)
        #expect(s.startupPacketReceived(.sslRequest) == .acceptEncryption)
        s.tlsEstablished(ClientTLSIdentity(hasCertificate: false, commonName: nil))
        #expect(s.tls == ClientTLSIdentity(hasCertificate: false, commonName: nil))
        #expect(s.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
    }

    @Test("without TLS configured SSLRequest is declined, as before")
    func declinesByDefault() {
        var s = SessionStateMachine()
        #expect(s.startupPacketReceived(.sslRequest) == .declineEncryption)
        #expect(s.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
    }

    @Test("allow and prefer accept a plaintext startup")
    func allowPlaintext() {
        var s = SessionStateMachine(encryption: Self.allow)
        #expect(s.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
    }

    @Test("require refuses a plaintext startup with 28000, the admin console included")
    func requireRefusesPlaintext() throws {
        for database in ["shop", "switchyard"] {
            var s = SessionStateMachine(encryption: Self.require)
            let fields = try #require(refusal(s.startupPacketReceived(.startup(StartupMessage(parameters: [("user", "alice"), ("database", database)])))))
            #expect(fields.severity == "FATAL")
            #expect(fields.sqlState == SQLState.invalidAuthorizationSpecification)
            #expect(fields.message == "switchyard requires an encrypted connection (TLS); this one is not encrypted")
            #expect(fields[.hint]?.contains("sslmode=require") == true)
            #expect(s.phase == .closed)
        }
    }

    @Test("a second SSLRequest, during or after the handshake, is a protocol violation")
    func secondRequest() throws {
        var during = SessionStateMachine(encryption: Self.require)
        #expect(during.startupPacketReceived(.sslRequest) == .acceptEncryption)
        #expect(try #require(refusal(during.startupPacketReceived(.sslRequest))).sqlState == SQLState.protocolViolation)

        var after = SessionStateMachine(encryption: Self.require)
        _ = after.startupPacketReceived(.sslRequest)
        after.tlsEstablished(ClientTLSIdentity(hasCertificate: false, commonName: nil))
        #expect(try #require(refusal(after.startupPacketReceived(.sslRequest))).sqlState == SQLState.protocolViolation)
    }

    @Test("bytes sent in the clear after an accepted SSLRequest close the session")
    func plaintextAfterRequest() {
        var s = SessionStateMachine(encryption: Self.require)
        _ = s.startupPacketReceived(.sslRequest)
        let fields = s.plaintextAfterSSLRequest()
        #expect(fields.sqlState == SQLState.protocolViolation)
        #expect(fields.message == "received unencrypted data after SSL request")
        #expect(s.phase == .closed)
    }

    @Test("verify modes need a certificate; verify-full needs it to name the user")
    func certificates() throws {
        let table: [(ClientTLSIdentity, String?)] = [
            (ClientTLSIdentity(hasCertificate: false, commonName: nil), "connection requires a valid client certificate"),
            (ClientTLSIdentity(hasCertificate: true, commonName: "mallory"),
             "certificate authentication failed for user \"alice\": the client certificate's common name is \"mallory\""),
            (ClientTLSIdentity(hasCertificate: true, commonName: nil),
             "certificate authentication failed for user \"alice\": the client certificate's common name is no common name"),
            (ClientTLSIdentity(hasCertificate: true, commonName: "alice"), nil),
        ]
        for (identity, message) in table {
            var s = SessionStateMachine(encryption: Self.verifyFull)
            _ = s.startupPacketReceived(.sslRequest)
            s.tlsEstablished(identity)
            let action = s.startupPacketReceived(.startup(alice))
            if let message {
                let fields = try #require(refusal(action))
                #expect(fields.message == message)
                #expect(fields.sqlState == SQLState.invalidAuthorizationSpecification)
            } else {
                #expect(action == .connectUpstream(alice))
            }
        }
        // verify-ca: any verified certificate will do.
        var ca = SessionStateMachine(encryption: ClientEncryptionPolicy(offersTLS: true, requiresTLS: true, requiresCertificate: true))
        _ = ca.startupPacketReceived(.sslRequest)
        ca.tlsEstablished(ClientTLSIdentity(hasCertificate: true, commonName: "mallory"))
        #expect(ca.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
    }
}

@Suite("Upstream sslmode negotiation")
struct UpstreamNegotiationTests {
    @Test("disable sends the startup message at once, plaintext")
    func disable() {
        var n = UpstreamNegotiation(mode: .disable)
        #expect(n.connected() == .sendStartup)
        #expect(!n.isTLS && !n.watchingFirstAnswer)
    }

    @Test("prefer uses TLS when offered and plaintext when declined")
    func prefer() {
        var offered = UpstreamNegotiation(mode: .prefer)
        #expect(offered.connected() == .sendSSLRequest)
        #expect(offered.sslResponse(UInt8(ascii: "S")) == .startTLS)
        #expect(offered.tlsEstablished() == .sendStartup)
        #expect(offered.isTLS)

        var declined = UpstreamNegotiation(mode: .prefer)
        #expect(declined.connected() == .sendSSLRequest)
        #expect(declined.sslResponse(UInt8(ascii: "N")) == .sendStartup)
        #expect(!declined.isTLS)
    }

    @Test("require fails when the server declines or answers something else")
    func require() {
        var declined = UpstreamNegotiation(mode: .require)
        #expect(declined.connected() == .sendSSLRequest)
        guard case let .fail(reason) = declined.sslResponse(UInt8(ascii: "N")) else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason.contains("does not accept TLS"))
        var odd = UpstreamNegotiation(mode: .require)
        _ = odd.connected()
        #expect(odd.sslResponse(UInt8(ascii: "E")) == .fail("the server answered the SSL request with an unexpected byte 0x45"))
    }

    @Test("allow tries plaintext, and TLS once the server refuses it before authenticating")
    func allow() {
        var n = UpstreamNegotiation(mode: .allow)
        #expect(n.connected() == .sendStartup)
        #expect(n.watchingFirstAnswer)
        #expect(n.firstAnswer(isError: true) == .reconnect)
        #expect(!n.watchingFirstAnswer)
        #expect(n.connected() == .sendSSLRequest)
        #expect(n.sslResponse(UInt8(ascii: "S")) == .startTLS)
        #expect(n.tlsEstablished() == .sendStartup)
        // The TLS attempt's answer is the client's, whatever it is.
        #expect(n.firstAnswer(isError: true) == nil)

        var accepted = UpstreamNegotiation(mode: .allow)
        _ = accepted.connected()
        #expect(accepted.firstAnswer(isError: false) == nil)
        #expect(!accepted.watchingFirstAnswer && !accepted.isTLS)
    }
}

@Suite("SASL offer filter")
struct SASLOfferFilterTests {
    static func sasl(_ mechanisms: [String]) -> [UInt8] { BackendMessage.authentication(.sasl(mechanisms: mechanisms)).encoded() }

    func run(_ filter: inout SASLOfferFilter, _ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try filter.process($0) }
    }

    @Test("SCRAM-SHA-256-PLUS is removed from the offer; what follows passes untouched")
    func removesPlus() throws {
        var filter = SASLOfferFilter()
        let after = BackendMessage.parameterStatus(name: "a", value: "b").encoded()
        let out = try run(&filter, Self.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]) + after)
        #expect(out == Self.sasl(["SCRAM-SHA-256"]) + after)
        #expect(!filter.isActive)
    }

    @Test("the offer is held until it is whole, even one byte at a time")
    func split() throws {
        var filter = SASLOfferFilter()
        var out: [UInt8] = []
        for byte in Self.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]) {
            #expect(filter.isActive)
            out += try run(&filter, [byte])
        }
        #expect(out == Self.sasl(["SCRAM-SHA-256"]))
    }

    @Test("other first messages pass as they are", arguments: [
        BackendMessage.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])),
        .authentication(.md5Password(salt: [1, 2, 3, 4])),
        .authentication(.ok),
        .errorResponse(ErrorFields(severity: "FATAL", sqlState: "28000", message: "no pg_hba.conf entry")),
    ])
    func untouched(_ message: BackendMessage) throws {
        var filter = SASLOfferFilter()
        #expect(try run(&filter, message.encoded()) == message.encoded())
        #expect(!filter.isActive)
    }

    @Test("a SASL answer with GS2 flag y is refused with a hint; n and incomplete answers are not")
    func clientAnswer() throws {
        func answer(_ mechanism: String, _ data: String) -> [UInt8] {
            FrontendMessage.password(Array(mechanism.utf8) + [0] + be32(Int32(data.utf8.count)) + Array(data.utf8)).encoded()
        }
        let y = answer("SCRAM-SHA-256", "y,,n=,r=abc")
        let refusal = try #require(y.withUnsafeBytes { SASLOfferFilter.refusal(forClientBytes: $0) })
        #expect(refusal.sqlState == SQLState.invalidAuthorizationSpecification)
        #expect(refusal[.hint]?.contains("channel_binding=disable") == true)
        for bytes in [answer("SCRAM-SHA-256", "n,,n=,r=abc"), answer("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"),
                      Array(y.dropLast(3)), FrontendMessage.query("select 1").encoded()] {
            #expect(bytes.withUnsafeBytes { SASLOfferFilter.refusal(forClientBytes: $0) } == nil)
        }
        var filter = SASLOfferFilter()
        _ = try run(&filter, Self.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
        #expect(filter.removedChannelBinding)
        var plain = SASLOfferFilter()
        _ = try run(&plain, Self.sasl(["SCRAM-SHA-256"]))
        #expect(!plain.removedChannelBinding)
    }

    @Test("a first message with an impossible length is an error")
    func badLength() {
        var filter = SASLOfferFilter()
        #expect(throws: ProtocolError.self) { try run(&filter, [UInt8(ascii: "R"), 0x7f, 0, 0, 0]) }
    }
}
