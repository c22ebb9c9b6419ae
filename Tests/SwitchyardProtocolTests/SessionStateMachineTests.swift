// SessionStateMachine tests: startup decisions, authentication pass-through, request latencies, counters and idleness.

import Testing
@testable import SwitchyardProtocol

private let alice = StartupMessage(parameters: [("user", "alice"), ("database", "shop")])

/// A session that has completed startup and authentication.
private func establishedSession() -> SessionStateMachine {
    var s = SessionStateMachine()
    _ = s.startupPacketReceived(.startup(alice))
    s.upstreamConnected()
    _ = s.serverMessage(server(.authentication(.ok)), now: 0)
    _ = s.serverMessage(server(.readyForQuery(.idle)), now: 0)
    return s
}

@Suite("SessionStateMachine startup")
struct SessionStartupTests {
    @Test("SSLRequest and GSSENCRequest are declined and startup continues", arguments: [
        StartupPacket.sslRequest, .gssEncRequest,
    ])
    func declineEncryption(_ packet: StartupPacket) {
        var s = SessionStateMachine()
        #expect(s.startupPacketReceived(packet) == .declineEncryption)
        #expect(s.phase == .awaitingStartup)
        #expect(s.startup == nil)
        // A client may try GSS, then SSL, then plain startup.
        #expect(s.startupPacketReceived(.gssEncRequest) == .declineEncryption)
        #expect(s.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
    }

    @Test("a startup packet without a user (or with an empty one) is rejected with 28000", arguments: [
        StartupMessage(parameters: []),
        StartupMessage(parameters: [("database", "shop")]),
        StartupMessage(parameters: [("user", ""), ("database", "shop")]),
    ])
    func rejectWithoutUser(_ message: StartupMessage) {
        var s = SessionStateMachine()
        let action = s.startupPacketReceived(.startup(message))
        guard case .reject(let fields) = action else {
            Issue.record("expected reject, got \(action)")
            return
        }
        #expect(fields.sqlState == "28000")
        #expect(fields.sqlState == SQLState.invalidAuthorizationSpecification)
        #expect(fields.severity == "FATAL")
        #expect(fields.message?.isEmpty == false)
        #expect(s.phase == .closed)
    }

    @Test("the admin database opens the console, also when it is only implied by the user name")
    func adminConsole() {
        let explicit = StartupMessage(parameters: [("user", "ops"), ("database", "switchyard")])
        var s = SessionStateMachine()
        #expect(s.startupPacketReceived(.startup(explicit)) == .openAdminConsole(explicit))
        #expect(s.phase == .ready)
        #expect(s.startup == explicit)

        let implied = StartupMessage(parameters: [("user", "switchyard")])
        var t = SessionStateMachine()
        #expect(t.startupPacketReceived(.startup(implied)) == .openAdminConsole(implied))

        let custom = StartupMessage(parameters: [("user", "ops"), ("database", "pgbouncer")])
        var u = SessionStateMachine(adminDatabase: "pgbouncer")
        #expect(u.startupPacketReceived(.startup(custom)) == .openAdminConsole(custom))
        var v = SessionStateMachine(adminDatabase: "pgbouncer")
        #expect(v.startupPacketReceived(.startup(explicit)) == .connectUpstream(explicit))
    }

    @Test("a normal startup connects upstream with the exact message")
    func connectUpstream() {
        var s = SessionStateMachine()
        #expect(s.isIdle)
        #expect(s.startupPacketReceived(.startup(alice)) == .connectUpstream(alice))
        #expect(s.phase == .connecting)
        #expect(s.startup == alice)
        #expect(!s.isIdle)
        s.upstreamConnected()
        #expect(s.phase == .authenticating)
        #expect(!s.isIdle)
    }

    @Test("a CancelRequest is forwarded by key and closes the session", arguments: [
        BackendKey(processID: 31337, secretKey: -42),
        BackendKey(processID: 31337, secretKey: Samples.secretKey32),
        BackendKey(processID: 1, secretKey: Samples.secretKey256),
    ])
    func cancel(_ key: BackendKey) {
        var s = SessionStateMachine()
        #expect(s.startupPacketReceived(.cancel(key)) == .forwardCancel(key))
        #expect(s.phase == .closed)
    }

    @Test("an unsupported protocol version is 0A000; other startup errors are 08P01", arguments: [
        (ProtocolError.unsupportedProtocolVersion(major: 2, minor: 0), "0A000"),
        (.unsupportedProtocolVersion(major: 4, minor: 1), "0A000"),
        (.invalidStartupLength(3), "08P01"),
        (.missingTerminator(messageID: 0), "08P01"),
        (.trailingBytes(messageID: 0, count: 2), "08P01"),
    ] as [(ProtocolError, String)])
    func startupFailed(_ error: ProtocolError, _ sqlState: String) {
        var s = SessionStateMachine()
        let fields = s.startupFailed(error)
        #expect(fields.sqlState == sqlState)
        #expect(fields.severity == "FATAL")
        #expect(fields.message == error.description)
        #expect(s.phase == .closed)
    }

    @Test("the protocol 2.0 error message names the version")
    func protocol2Message() throws {
        var s = SessionStateMachine()
        let fields = s.startupFailed(.unsupportedProtocolVersion(major: 2, minor: 0))
        #expect(try #require(fields.message).contains("2.0"))
    }

    @Test("an upstream connection failure is 08001 and closes the session")
    func upstreamConnectFailed() {
        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(alice))
        let fields = s.upstreamConnectFailed(address: "127.0.0.1:5432", reason: "connection refused")
        #expect(fields.sqlState == "08001")
        #expect(fields.message?.contains("127.0.0.1:5432") == true)
        #expect(fields.message?.contains("connection refused") == true)
        #expect(fields[.hint] != nil)
        #expect(s.phase == .closed)
    }
}

@Suite("SessionStateMachine traffic")
struct SessionTrafficTests {
    @Test("authentication flows through until the first ReadyForQuery establishes the session")
    func authenticationFlow() {
        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(alice))
        s.upstreamConnected()
        let key = BackendKey(processID: 4242, secretKey: 0x0123_4567)
        let flow: [(BackendMessage, SessionStateMachine.ServerEvent)] = [
            (.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])), .none),
            (.authentication(.saslContinue(data: Array("r=x".utf8))), .none),
            (.authentication(.saslFinal(data: Array("v=y".utf8))), .none),
            (.authentication(.ok), .none),
            (.parameterStatus(name: "server_version", value: "17.2"), .none),
            (.parameterStatus(name: "client_encoding", value: "UTF8"), .none),
            (.parameterStatus(name: "server_version", value: "17.3"), .none),
            (.backendKeyData(key), .none),
        ]
        for (message, event) in flow {
            #expect(s.serverMessage(server(message), now: 10) == event, "\(message)")
            #expect(s.phase == .authenticating)
            #expect(!s.isIdle)
        }
        #expect(s.backendKey == key)
        #expect(s.serverParameters == ["server_version": "17.3", "client_encoding": "UTF8"])
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 20) == .sessionEstablished)
        #expect(s.phase == .ready)
        #expect(s.isIdle)
        #expect(s.requestCount == 0)
        #expect(s.transactionCount == 0)
        #expect(s.statementCount == 0)
        #expect(s.outstandingRequests == 0)
        // Later ParameterStatus messages (SET) keep updating the map.
        #expect(s.serverMessage(server(.parameterStatus(name: "TimeZone", value: "UTC")), now: 30) == .none)
        #expect(s.serverParameters["TimeZone"] == "UTC")
    }

    /// Switchyard accepts 3.x startups and forwards them, so a 3.2 client gets a BackendKeyData with a long key.
    @Test("a protocol 3.2 BackendKeyData with a 32-byte secret key is recorded whole")
    func longSecretKeyRecorded() {
        let secret = (0..<32).map { UInt8($0) }
        let body = be32(4242) + secret
        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(StartupMessage(protocolVersion: 3 << 16 | 2, parameters: [("user", "u")])))
        s.upstreamConnected()
        #expect(s.serverMessage(ScannedMessage(id: 0x4B, bodyLength: body.count, body: body), now: 0) == .none)
        #expect(s.backendKey == BackendKey(processID: 4242, secretKey: secret),
                "the session has no key to route this client's cancel requests")
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 1) == .sessionEstablished)
        #expect(s.backendKey?.secretKey.count == 32)
    }

    @Test("a failed authentication is a fatal error")
    func authenticationFailure() {
        var s = SessionStateMachine()
        _ = s.startupPacketReceived(.startup(alice))
        s.upstreamConnected()
        let fields = ErrorFields(severity: "FATAL", sqlState: "28P01", message: "password authentication failed for user \"alice\"")
        #expect(s.serverMessage(server(.authentication(.cleartextPassword)), now: 1) == .none)
        #expect(s.clientMessage(client(.password(cstr("wrong"))), now: 2) == .none)
        #expect(s.serverMessage(server(.errorResponse(fields)), now: 3) == .fatalError(fields))
        #expect(s.backendKey == nil)
    }

    @Test("pipelined extended protocol: five Syncs answered in order with exact latencies")
    func pipelinedLatencies() {
        var s = establishedSession()
        let syncTimes: [UInt64] = [1_000, 2_500, 2_600, 9_000, 9_001]
        var t: UInt64 = 0
        for i in 0..<5 {
            t = syncTimes[i] - 30
            #expect(s.clientMessage(client(.parse(Parse(statementName: "", query: "select $1", parameterTypes: [23]))), now: t) == .none)
            #expect(s.clientMessage(client(.bind(Bind(portalName: "", statementName: "", parameters: [[0x31]]))), now: t + 10) == .none)
            #expect(s.clientMessage(client(.execute(Execute(portalName: ""))), now: t + 20) == .none)
            #expect(s.clientMessage(client(.sync), now: syncTimes[i]) == .none)
            #expect(s.outstandingRequests == i + 1)
            #expect(!s.isIdle)
        }
        #expect(s.statementCount == 5)

        let readyTimes: [UInt64] = [50_000, 50_001, 70_000, 70_500, 1_000_000]
        var latencies: [UInt64] = []
        for i in 0..<5 {
            for message in [BackendMessage.parseComplete, .bindComplete, .dataRow(DataRow(values: [[0x31]])), .commandComplete(tag: "SELECT 1")] {
                #expect(s.serverMessage(server(message), now: readyTimes[i] - 5) == .none)
            }
            let event = s.serverMessage(server(.readyForQuery(.idle)), now: readyTimes[i])
            guard case .requestCompleted(let ns, _) = event else {
                Issue.record("ReadyForQuery \(i) gave \(event)")
                continue
            }
            latencies.append(ns)
            #expect(s.outstandingRequests == 4 - i)
            #expect(s.isIdle == (i == 4))
        }
        #expect(latencies == [49_000, 47_501, 67_400, 61_500, 990_999])
        #expect(s.requestCount == 5)
        #expect(s.transactionCount == 5)
        #expect(s.statementCount == 5)
    }

    @Test("more than 64 requests in flight, drained and refilled, stay in FIFO order")
    func deepPipeline() {
        var s = establishedSession()
        var starts: [UInt64] = []
        var clock: UInt64 = 1_000_000
        var expected: [UInt64] = []
        var got: [UInt64] = []
        func send(_ n: Int) {
            for _ in 0..<n {
                clock += 7
                starts.append(clock)
                _ = s.clientMessage(client(.sync), now: clock)
            }
        }
        func answer(_ n: Int) {
            for _ in 0..<n {
                clock += 1_000
                let start = starts.removeFirst()
                expected.append(clock - start)
                if case .requestCompleted(let ns, _) = s.serverMessage(server(.readyForQuery(.idle)), now: clock) {
                    got.append(ns)
                }
            }
        }
        send(100); answer(70); send(100); answer(20); send(5); answer(115)
        #expect(got == expected)
        #expect(s.outstandingRequests == 0)
        #expect(s.requestCount == 205)
        #expect(s.isIdle)
    }

    @Test("a transaction ended by an error, in a block or alone, is reported failed; a commit is not")
    func failedTransactions() {
        var s = establishedSession()
        let error = server(.errorResponse(ErrorFields(severity: "ERROR", sqlState: "22012", message: "division by zero")))
        _ = s.clientMessage(client(.query("select 1/0")), now: 1)
        _ = s.serverMessage(error, now: 2)
        _ = s.serverMessage(server(.readyForQuery(.idle)), now: 3)
        #expect(s.lastTransactionFailed)

        _ = s.clientMessage(client(.query("select 1")), now: 4)
        _ = s.serverMessage(server(.readyForQuery(.idle)), now: 5)
        #expect(!s.lastTransactionFailed)

        _ = s.clientMessage(client(.query("begin")), now: 6)
        _ = s.serverMessage(server(.readyForQuery(.inTransaction)), now: 7)
        _ = s.clientMessage(client(.query("select 1/0")), now: 8)
        _ = s.serverMessage(error, now: 9)
        _ = s.serverMessage(server(.readyForQuery(.failed)), now: 10)
        _ = s.clientMessage(client(.query("commit")), now: 11)
        _ = s.serverMessage(server(.commandComplete(tag: "ROLLBACK")), now: 12)
        _ = s.serverMessage(server(.readyForQuery(.idle)), now: 13)
        #expect(s.lastTransactionFailed)
    }

    @Test("simple queries: statements, requests and transactions are counted")
    func simpleQueryCounters() {
        var s = establishedSession()
        // An autocommit statement is one transaction.
        #expect(s.clientMessage(client(.query("select 1")), now: 100) == .none)
        #expect(!s.isIdle)
        #expect(s.serverMessage(server(.commandComplete(tag: "SELECT 1")), now: 150) == .none)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 200) == .requestCompleted(nanoseconds: 100, failed: false))
        #expect(s.statementCount == 1)
        #expect(s.transactionCount == 1)
        #expect(s.isIdle)

        // BEGIN; INSERT; COMMIT is one transaction of three statements, not idle in between.
        _ = s.clientMessage(client(.query("begin")), now: 300)
        #expect(s.serverMessage(server(.readyForQuery(.inTransaction)), now: 310) == .requestCompleted(nanoseconds: 10, failed: false))
        #expect(s.transactionStatus == .inTransaction)
        #expect(s.outstandingRequests == 0)
        #expect(!s.isIdle)
        _ = s.clientMessage(client(.query("insert into t values (1)")), now: 400)
        #expect(s.serverMessage(server(.readyForQuery(.inTransaction)), now: 450) == .requestCompleted(nanoseconds: 50, failed: false))
        #expect(!s.isIdle)
        _ = s.clientMessage(client(.query("commit")), now: 500)
        #expect(!s.isIdle)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 501) == .requestCompleted(nanoseconds: 1, failed: false))
        #expect(s.isIdle)
        #expect(s.statementCount == 4)
        #expect(s.transactionCount == 2)
        #expect(s.requestCount == 4)

        // A failed transaction is not idle until the ROLLBACK completes.
        _ = s.clientMessage(client(.query("begin; select 1/0")), now: 600)
        let error = ErrorFields(severity: "ERROR", sqlState: "22012", message: "division by zero")
        #expect(s.serverMessage(server(.errorResponse(error)), now: 601) == .none)
        #expect(s.serverMessage(server(.readyForQuery(.failed)), now: 602) == .requestCompleted(nanoseconds: 2, failed: true))
        #expect(s.transactionStatus == .failed)
        #expect(!s.isIdle)
        _ = s.clientMessage(client(.query("rollback")), now: 700)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 705) == .requestCompleted(nanoseconds: 5, failed: false))
        #expect(s.isIdle)
        #expect(s.statementCount == 6)
        #expect(s.transactionCount == 3)
    }

    @Test("only Query, Sync and FunctionCall open a request; only Query and Execute count statements")
    func whatCounts() {
        var s = establishedSession()
        let quiet: [FrontendMessage] = [
            .parse(Parse(statementName: "s", query: "select 1")), .bind(Bind(portalName: "", statementName: "s")),
            .describe(Describe(target: .portal, name: "")), .close(Close(target: .statement, name: "s")),
            .flush, .copyData([1, 2]), .copyDone, .copyFail(message: "x"), .password([]),
        ]
        for m in quiet {
            #expect(s.clientMessage(client(m), now: 1) == .none)
        }
        #expect(s.outstandingRequests == 0)
        #expect(s.statementCount == 0)
        #expect(s.isIdle)
        _ = s.clientMessage(client(.functionCall(FunctionCall(functionOID: 952, argumentFormats: [], arguments: [], resultFormat: 1))), now: 10)
        #expect(s.outstandingRequests == 1)
        #expect(s.statementCount == 0)
        _ = s.clientMessage(client(.execute(Execute(portalName: ""))), now: 11)
        _ = s.clientMessage(client(.execute(Execute(portalName: ""))), now: 12)
        #expect(s.statementCount == 2)
        #expect(s.outstandingRequests == 1)
        _ = s.clientMessage(client(.query("select 1")), now: 13)
        #expect(s.statementCount == 3)
        #expect(s.outstandingRequests == 2)
        #expect(s.serverMessage(server(.functionCallResponse(nil)), now: 20) == .none)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 30) == .requestCompleted(nanoseconds: 20, failed: false))
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 40) == .requestCompleted(nanoseconds: 27, failed: false))
    }

    @Test("a ReadyForQuery timestamped before its request reports zero, not a wrapped value")
    func clockSkew() {
        var s = establishedSession()
        _ = s.clientMessage(client(.sync), now: 1_000)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 999) == .requestCompleted(nanoseconds: 0, failed: false))
    }

    @Test("a ReadyForQuery with nothing outstanding completes nothing")
    func unsolicitedReady() {
        var s = establishedSession()
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 5) == .none)
        #expect(s.requestCount == 0)
        #expect(s.transactionCount == 0)
    }

    @Test("FATAL and PANIC errors are fatal; ERROR, WARNING and notices are not", arguments: [
        ("FATAL", true), ("PANIC", true), ("ERROR", false), ("WARNING", false),
    ])
    func fatalErrors(_ severity: String, _ fatal: Bool) {
        var s = establishedSession()
        let fields = ErrorFields(severity: severity, sqlState: "57P01", message: "terminating connection due to administrator command")
        let expected: SessionStateMachine.ServerEvent = fatal ? .fatalError(fields) : .none
        #expect(s.serverMessage(server(.errorResponse(fields)), now: 1) == expected)
        #expect(s.serverMessage(server(.noticeResponse(fields)), now: 1) == .none)
    }

    @Test("fatality follows the non-localized severity when both are present")
    func localizedSeverity() {
        var s = establishedSession()
        let localizedFatal = ErrorFields(fields: [(0x53, "SCHWERWIEGEND"), (0x56, "FATAL"), (0x43, "57P01"), (0x4D, "x")])
        #expect(s.serverMessage(server(.errorResponse(localizedFatal)), now: 1) == .fatalError(localizedFatal))
        let oldServer = ErrorFields(fields: [(0x53, "FATAL"), (0x43, "57P01"), (0x4D, "x")])
        #expect(s.serverMessage(server(.errorResponse(oldServer)), now: 1) == .fatalError(oldServer))
    }

    @Test("Terminate closes the session")
    func terminate() {
        var s = establishedSession()
        #expect(s.clientMessage(client(.terminate), now: 1) == .terminate)
        #expect(s.phase == .closed)
        #expect(s.isIdle)
    }

    @Test("undecodable or uninspected server messages are ignored")
    func ignoredServerMessages() {
        var s = establishedSession()
        _ = s.clientMessage(client(.sync), now: 1)
        #expect(s.serverMessage(ScannedMessage(id: 0x5A, bodyLength: 1, body: nil), now: 2) == .none)
        #expect(s.serverMessage(ScannedMessage(id: 0x5A, bodyLength: 1, body: [0x58]), now: 2) == .none)
        #expect(s.serverMessage(ScannedMessage(id: 0x4B, bodyLength: 3, body: [1, 2, 3]), now: 2) == .none)
        // A BackendKeyData whose key is under 4 bytes is invalid and recorded as nothing.
        #expect(s.serverMessage(ScannedMessage(id: 0x4B, bodyLength: 7, body: be32(1) + [1, 2, 3]), now: 2) == .none)
        #expect(s.backendKey == nil)
        #expect(s.outstandingRequests == 1)
        #expect(s.transactionStatus == .idle)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 9) == .requestCompleted(nanoseconds: 8, failed: false))
    }

    @Test("the inspect set is exactly R, K, S, Z, E, G (CopyInResponse) and W (CopyBothResponse)")
    func inspectSet() {
        #expect(SessionStateMachine.inspectedServerMessages == Set("RKSZEGW".utf8))
        #expect(SessionStateMachine.inspectedServerMessages.contains(BackendMessageID.copyInResponse.rawValue))
        #expect(SessionStateMachine.inspectedServerMessages.contains(BackendMessageID.copyBothResponse.rawValue))
        // CopyOutResponse needs no inspection: a COPY TO STDOUT does not change how Sync is answered.
        #expect(!SessionStateMachine.inspectedServerMessages.contains(BackendMessageID.copyOutResponse.rawValue))
    }
}

@Suite("SessionStateMachine COPY")
struct SessionCopyTests {
    static let copyResponses: [BackendMessage] = [
        .copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0])),
        .copyBothResponse(CopyResponse(overallFormat: 0, columnFormats: [])),
    ]

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
        #expect(s.outstandingRequests == 1)
        // Server: ParseComplete, BindComplete, NoData, CopyInResponse. It is now in copy-in mode and
        // will skip the Sync above, whose request ends unanswered.
        for m in [BackendMessage.parseComplete, .bindComplete, .noData] {
            #expect(s.serverMessage(server(m), now: 200) == .none)
        }
        #expect(s.serverMessage(server(.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0]))), now: 200) == .requestIgnored)
        #expect(s.outstandingRequests == 0)
        // Client: the data, CopyDone, and the Sync that ends the extended-query cycle.
        for m in [FrontendMessage.copyData(Array("1\n".utf8)), .copyData(Array("2\n".utf8)), .copyDone, .sync] {
            _ = s.clientMessage(client(m), now: 500)
        }
        #expect(s.outstandingRequests == 1)
        // Server: CommandComplete and the only ReadyForQuery of the exchange.
        #expect(s.serverMessage(server(.commandComplete(tag: "COPY 2")), now: 900) == .none)
        let done = s.serverMessage(server(.readyForQuery(.idle)), now: 900)
        // The latency runs from the Sync that followed CopyDone (the one the server answers).
        #expect(done == .requestCompleted(nanoseconds: 400, failed: false))
        // Nothing is in flight any more: the session can be moved or closed.
        #expect(s.outstandingRequests == 0)
        #expect(s.isIdle)
        #expect(s.requestCount == 1)
        #expect(s.statementCount == 1)
        #expect(s.transactionCount == 1)

        // The next query's latency must be measured from its own start, not from the COPY's second Sync.
        _ = s.clientMessage(client(.query("select 1")), now: 2_000)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 2_010) == .requestCompleted(nanoseconds: 10, failed: false))
        #expect(s.isIdle)
    }

    @Test("extended-protocol COPY: CopyInResponse and CopyBothResponse drop the head Sync; Syncs count again after CopyDone or CopyFail",
          arguments: SessionCopyTests.copyResponses, [FrontendMessage.copyDone, .copyFail(message: "client gave up")])
    func extendedCopyEnds(_ response: BackendMessage, _ end: FrontendMessage) {
        var s = establishedSession()
        for m in [FrontendMessage.bind(Bind(portalName: "", statementName: "copy")), .execute(Execute(portalName: "")), .sync] {
            _ = s.clientMessage(client(m), now: 1_000)
        }
        #expect(s.serverMessage(server(.bindComplete), now: 1_100) == .none)
        #expect(s.serverMessage(server(response), now: 1_200) == .requestIgnored)
        #expect(s.outstandingRequests == 0)
        // Flush and Sync during copy-in are ignored by the server, so they open no request.
        for m in [FrontendMessage.copyData([0x31, 0x0A]), .flush, .sync, .copyData([0x32, 0x0A]), .sync] {
            #expect(s.clientMessage(client(m), now: 1_300) == .none)
        }
        #expect(s.outstandingRequests == 0)
        _ = s.clientMessage(client(end), now: 1_400)
        _ = s.clientMessage(client(.sync), now: 1_500)
        #expect(s.outstandingRequests == 1)
        if case .copyFail = end {
            let error = ErrorFields(severity: "ERROR", sqlState: "57014", message: "COPY from stdin failed: client gave up")
            #expect(s.serverMessage(server(.errorResponse(error)), now: 1_600) == .none)
        } else {
            #expect(s.serverMessage(server(.commandComplete(tag: "COPY 2")), now: 1_600) == .none)
        }
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 1_700) == .requestCompleted(nanoseconds: 200, failed: end == .copyFail(message: "client gave up")))
        #expect(s.outstandingRequests == 0)
        #expect(s.isIdle)

        // Copy-in mode is over: the next extended-protocol Sync is a request again.
        _ = s.clientMessage(client(.execute(Execute(portalName: ""))), now: 2_000)
        _ = s.clientMessage(client(.sync), now: 2_001)
        #expect(s.outstandingRequests == 1)
        #expect(!s.isIdle)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 2_051) == .requestCompleted(nanoseconds: 50, failed: false))
        #expect(s.requestCount == 2)
        #expect(s.statementCount == 2)
    }

    @Test("simple-query COPY FROM STDIN: the Query's request completes at the ReadyForQuery after CopyDone, timed from the Query")
    func simpleQueryCopyIn() {
        var s = establishedSession()
        #expect(s.clientMessage(client(.query("copy t from stdin")), now: 10_000) == .none)
        #expect(s.outstandingRequests == 1)
        // The server's CopyInResponse answers no request: the Query is still in flight.
        #expect(s.serverMessage(server(.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0, 0]))), now: 10_100) == .none)
        #expect(s.outstandingRequests == 1)
        #expect(!s.isIdle)
        for m in [FrontendMessage.copyData(Array("1\ta\n".utf8)), .copyData(Array("2\tb\n".utf8)), .copyDone] {
            #expect(s.clientMessage(client(m), now: 12_000) == .none)
        }
        #expect(s.outstandingRequests == 1)
        #expect(!s.isIdle)
        #expect(s.serverMessage(server(.commandComplete(tag: "COPY 2")), now: 14_000) == .none)
        #expect(s.outstandingRequests == 1)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 15_000) == .requestCompleted(nanoseconds: 5_000, failed: false))
        #expect(s.outstandingRequests == 0)
        #expect(s.isIdle)
        #expect(s.requestCount == 1)
        #expect(s.statementCount == 1)
        #expect(s.transactionCount == 1)

        // Syncs count again once CopyDone was sent.
        _ = s.clientMessage(client(.sync), now: 20_000)
        #expect(s.outstandingRequests == 1)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 20_007) == .requestCompleted(nanoseconds: 7, failed: false))
    }

    @Test("simple-query COPY FROM STDIN aborted with CopyFail: the error's ReadyForQuery completes the Query")
    func simpleQueryCopyFail() {
        var s = establishedSession()
        _ = s.clientMessage(client(.query("copy t from stdin")), now: 1_000)
        #expect(s.serverMessage(server(.copyInResponse(CopyResponse(overallFormat: 1, columnFormats: [1]))), now: 1_050) == .none)
        #expect(s.outstandingRequests == 1)
        for m in [FrontendMessage.copyData([0x50, 0x47, 0x43, 0x4F, 0x50, 0x59]), .copyFail(message: "interrupted")] {
            #expect(s.clientMessage(client(m), now: 1_500) == .none)
        }
        #expect(s.outstandingRequests == 1)
        let error = ErrorFields(severity: "ERROR", sqlState: "57014", message: "COPY from stdin failed: interrupted")
        #expect(s.serverMessage(server(.errorResponse(error)), now: 1_800) == .none)
        #expect(s.outstandingRequests == 1)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 2_250) == .requestCompleted(nanoseconds: 1_250, failed: true))
        #expect(s.outstandingRequests == 0)
        #expect(s.isIdle)
        #expect(s.requestCount == 1)

        // CopyFail ended copy-in mode: the next Sync is a request.
        _ = s.clientMessage(client(.sync), now: 3_000)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 3_003) == .requestCompleted(nanoseconds: 3, failed: false))
        #expect(s.requestCount == 2)
    }

    @Test("COPY TO STDOUT over the extended protocol changes nothing: its Sync is answered normally")
    func extendedCopyOut() {
        var s = establishedSession()
        for m in [FrontendMessage.bind(Bind(portalName: "", statementName: "out")), .execute(Execute(portalName: "")), .sync] {
            _ = s.clientMessage(client(m), now: 100)
        }
        for m in [BackendMessage.bindComplete, .copyOutResponse(CopyResponse(overallFormat: 0, columnFormats: [0])),
                  .copyData(Array("1\n".utf8)), .copyDone, .commandComplete(tag: "COPY 1")] {
            #expect(s.serverMessage(server(m), now: 150) == .none)
            #expect(s.outstandingRequests == 1)
        }
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 180) == .requestCompleted(nanoseconds: 80, failed: false))
        #expect(s.isIdle)
        // Not in copy-in mode: a Sync right after is a request.
        _ = s.clientMessage(client(.sync), now: 200)
        #expect(s.outstandingRequests == 1)
    }

    @Test("a CopyInResponse with no Sync pending drops nothing")
    func copyInWithoutPendingSync() {
        var s = establishedSession()
        // Execute and Flush, no Sync: the client waits for the CopyInResponse before syncing.
        for m in [FrontendMessage.bind(Bind(portalName: "", statementName: "copy")), .execute(Execute(portalName: "")), .flush] {
            _ = s.clientMessage(client(m), now: 100)
        }
        #expect(s.outstandingRequests == 0)
        #expect(s.serverMessage(server(.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: []))), now: 200) == .none)
        #expect(s.outstandingRequests == 0)
        for m in [FrontendMessage.copyData([0x0A]), .copyDone, .sync] {
            _ = s.clientMessage(client(m), now: 300)
        }
        #expect(s.outstandingRequests == 1)
        #expect(s.serverMessage(server(.commandComplete(tag: "COPY 1")), now: 350) == .none)
        #expect(s.serverMessage(server(.readyForQuery(.idle)), now: 360) == .requestCompleted(nanoseconds: 60, failed: false))
        #expect(s.isIdle)
    }
}
