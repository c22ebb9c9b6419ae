// Behaviours PostgreSQL clients and servers really exhibit that the current sources get wrong; these tests fail until fixed.

import Testing
@testable import SwitchyardProtocol

@Suite("Protocol conformance gaps")
struct ProtocolConformanceBugTests {
    /// libpq's PQexecParams("COPY t FROM STDIN") and tokio-postgres' copy_in send Bind/Execute/Sync in one
    /// write, then CopyData..., CopyDone and a second Sync. The server ignores Flush and Sync received in
    /// copy-in mode (protocol docs, "COPY Operations"), so the whole exchange ends with ONE ReadyForQuery.
    @Test("COPY FROM STDIN over the extended protocol: the Sync sent during copy-in gets no ReadyForQuery")
    func syncDuringCopyInIsIgnoredByTheServer() {
        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(StartupMessage(parameters: [("user", "loader")])))
        s.upstreamConnected()
        _ = s.serverMessage(server(.authentication(.ok)), now: 0)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 0) == .sessionEstablished)

        // Client: Parse, Bind, Describe, Execute, Sync, all in one write.
        for m in [FrontendMessage.parse(Parse(statementName: "", query: "copy t from stdin")),
                  .bind(Bind(portalName: "", statementName: "")), .describe(Describe(target: .portal, name: "")),
                  .execute(Execute(portalName: "")), .sync] {
            _ = s.clientMessage(client(m), now: 100)
        }
        // Server: ParseComplete, BindComplete, NoData, CopyInResponse. It is now in copy-in mode and
        // will skip the Sync above.
        for m in [BackendMessage.parseComplete, .bindComplete, .noData,
                  .copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0]))] {
            #expect(s.serverMessage(server(m), now: 200) == .none)
        }
        // Client: the data, CopyDone, and the Sync that ends the extended-query cycle.
        for m in [FrontendMessage.copyData(Array("1\n".utf8)), .copyData(Array("2\n".utf8)), .copyDone, .sync] {
            _ = s.clientMessage(client(m), now: 500)
        }
        // Server: CommandComplete and the only ReadyForQuery of the exchange.
        #expect(s.serverMessage(server(.commandComplete(tag: "COPY 2")), now: 900) == .none)
        let done = s.serverMessage(server(.readyForQuery(.idle)), now: 900)
        guard case .requestCompleted = done else {
            Issue.record("the COPY's ReadyForQuery gave \(done)")
            return
        }
        // Nothing is in flight any more: the session can be moved or closed.
        #expect(s.outstandingRequests == 0)
        #expect(s.isIdle)

        // The next query's latency must be measured from its own start, not from the COPY's second Sync.
        _ = s.clientMessage(client(.query("select 1")), now: 2_000)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 2_010) == .requestCompleted(nanoseconds: 10))
        #expect(s.isIdle)
    }

    /// Protocol 3.2 (PostgreSQL 18) makes the secret key variable length (4 to 256 bytes; the server sends 32).
    /// Switchyard accepts 3.x startups and forwards them, so a 3.2 client gets such a BackendKeyData.
    @Test("a protocol 3.2 BackendKeyData with a 32-byte secret key decodes and is recorded")
    func longSecretKeyInBackendKeyData() {
        let body = be32(4242) + (0..<32).map { UInt8($0) }
        let decoded = Result { () throws(ProtocolError) in try BackendMessage.decode(id: 0x4B, body: body) }
        switch decoded {
        case .success(.backendKeyData(let key)):
            #expect(key.processID == 4242)
        case .success(let other):
            Issue.record("decoded as \(other)")
        case .failure(let error):
            Issue.record("BackendKeyData with a 32-byte key threw \(error)")
        }

        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(StartupMessage(protocolVersion: 3 << 16 | 2, parameters: [("user", "u")])))
        s.upstreamConnected()
        _ = s.serverMessage(ScannedMessage(id: 0x4B, bodyLength: body.count, body: body), now: 0)
        #expect(s.backendKey?.processID == 4242, "the session has no key to route this client's cancel requests")
    }

    @Test("a protocol 3.2 CancelRequest with a 32-byte secret key is a cancel, not a malformed packet")
    func longSecretKeyInCancelRequest() {
        let packet = be32(12 + 32) + be32(StartupRequestCode.cancelRequest) + be32(4242) + (0..<32).map { UInt8($0) }
        let decoded = Result { () throws(ProtocolError) in try StartupPacket.decode(packet) }
        switch decoded {
        case .success(.cancel(let key)):
            #expect(key.processID == 4242)
        case .success(let other):
            Issue.record("decoded as \(other)")
        case .failure(let error):
            Issue.record("CancelRequest with a 32-byte key threw \(error)")
        }
    }
}
