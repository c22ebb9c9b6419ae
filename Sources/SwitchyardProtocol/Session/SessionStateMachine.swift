// The state of one proxied client session, advanced by the messages seen in each direction.

/// A pure state machine for one client session: startup negotiation, authentication
/// pass-through, then the request/response cycle. It never touches a socket or a
/// clock: the I/O layer feeds it what it read (with a timestamp) and acts on what it returns.
public struct SessionStateMachine: Sendable {
    public enum Phase: Sendable, Equatable {
        /// Waiting for the client's StartupMessage (SSL/GSS requests may come first).
        case awaitingStartup
        /// Connecting to the upstream on the client's behalf.
        case connecting
        /// Authentication messages flow through untouched until ReadyForQuery.
        case authenticating
        /// Normal operation.
        case ready
        case closed
    }

    /// What to do with a startup-phase packet.
    public enum StartupAction: Sendable, Equatable {
        /// Answer SSLRequest or GSSENCRequest with the single byte 'N'.
        case declineEncryption
        /// Answer SSLRequest with 'S' and accept a TLS handshake; call `tlsEstablished` once it is done.
        case acceptEncryption
        /// Open a connection to the upstream and send it these exact bytes.
        case connectUpstream(StartupMessage)
        /// The client asked for the admin console database.
        case openAdminConsole(StartupMessage)
        /// A CancelRequest: route it to the session that owns this key, then close.
        case forwardCancel(BackendKey)
        /// Send this error and close.
        case reject(ErrorFields)
    }

    /// What a server message meant for the session.
    public enum ServerEvent: Sendable, Equatable {
        case none
        /// A Query, Sync or FunctionCall was answered by ReadyForQuery after this many nanoseconds.
        /// `failed`: the server sent an ErrorResponse while answering it.
        case requestCompleted(nanoseconds: UInt64, failed: Bool)
        /// The Sync that followed an extended-protocol COPY's Execute reached the server in copy-in
        /// mode, which ignores it: its request ends with no answer.
        case requestIgnored
        /// Authentication finished: the first ReadyForQuery.
        case sessionEstablished
        /// The server reported a FATAL or PANIC error; it will close the connection.
        case fatalError(ErrorFields)
    }

    public enum ClientEvent: Sendable, Equatable {
        case none
        /// The client sent Terminate: forward it and close once written.
        case terminate
    }

    /// The admin console's database name, as PgBouncer's `pgbouncer` database.
    public let adminDatabase: String
    /// What the client's transport must be (client_tls.mode).
    public let encryption: ClientEncryptionPolicy
    /// The client's TLS identity once its handshake is done; nil while the connection is plaintext.
    public private(set) var tls: ClientTLSIdentity?
    /// An SSLRequest was answered 'S' and the handshake is not done yet.
    private var encryptionAccepted = false

    public private(set) var phase: Phase = .awaitingStartup
    public private(set) var startup: StartupMessage?
    public private(set) var transactionStatus: TransactionStatus = .idle
    /// Whether the transaction that last ended (at a ReadyForQuery 'I') was rolled back by an
    /// error: it was in a failed state, or an error came since the previous ReadyForQuery.
    /// An explicit ROLLBACK of a healthy transaction is not seen here.
    public private(set) var lastTransactionFailed = false
    private var errorSinceReady = false
    public private(set) var backendKey: BackendKey?
    public private(set) var serverParameters: [String: String] = [:]
    public private(set) var statementCount: UInt64 = 0
    public private(set) var transactionCount: UInt64 = 0
    public private(set) var requestCount: UInt64 = 0
    /// Whether the client's last request stream left the server inside a transaction or with work pending.
    /// (The three below are visible to inlined code only: a session asks ``isIdle`` and
    /// ``outstandingRequests`` for every message, and a call the compiler cannot see into copies
    /// the whole machine first.)
    @usableFromInline internal private(set) var requestStarts: [Request] = []
    @usableFromInline internal private(set) var requestHead = 0
    /// Between the server's CopyInResponse and the client's CopyDone/CopyFail the
    /// server ignores Sync, so such a Sync earns no ReadyForQuery.
    @usableFromInline internal private(set) var copyInActive = false

    @usableFromInline struct Request: Sendable {
        var start: UInt64
        var isSync: Bool
    }

    public init(adminDatabase: String = "switchyard", encryption: ClientEncryptionPolicy = .plaintextOnly) {
        self.adminDatabase = adminDatabase
        self.encryption = encryption
    }

    /// Requests sent by the client and not yet answered by ReadyForQuery.
    @inlinable @inline(__always) public var outstandingRequests: Int { requestStarts.count - requestHead }

    /// True when closing the session now would interrupt nothing: no transaction open, nothing in flight.
    @inlinable @inline(__always) public var isIdle: Bool {
        switch phase {
        case .ready: transactionStatus == .idle && outstandingRequests == 0 && !copyInActive
        case .awaitingStartup, .closed: true
        case .connecting, .authenticating: false
        }
    }

    // MARK: Startup

    public mutating func startupPacketReceived(_ packet: StartupPacket) -> StartupAction {
        switch packet {
        case .sslRequest:
            if tls != nil || encryptionAccepted {
                phase = .closed
                return .reject(ErrorFields(severity: "FATAL", sqlState: SQLState.protocolViolation,
                                           message: "SSLRequest on a connection that is already encrypted"))
            }
            guard encryption.offersTLS else { return .declineEncryption }
            encryptionAccepted = true
            return .acceptEncryption
        case .gssEncRequest:
            return .declineEncryption
        case let .cancel(key):
            phase = .closed
            return .forwardCancel(key)
        case let .startup(message):
            guard let user = message.user, !user.isEmpty else {
                phase = .closed
                return .reject(ErrorFields(severity: "FATAL", sqlState: SQLState.invalidAuthorizationSpecification,
                                           message: "no PostgreSQL user name specified in startup packet"))
            }
            if let refusal = encryption.refusal(user: user, tls: tls) {
                phase = .closed
                return .reject(refusal)
            }
            startup = message
            if message.database == adminDatabase {
                phase = .ready
                return .openAdminConsole(message)
            }
            phase = .connecting
            return .connectUpstream(message)
        }
    }

    /// The TLS handshake that followed `acceptEncryption` is done; the startup message comes next, encrypted.
    public mutating func tlsEstablished(_ identity: ClientTLSIdentity) {
        encryptionAccepted = false
        tls = identity
    }

    /// Bytes that came after an SSLRequest answered 'S' but before the handshake: they were sent in the
    /// clear where only TLS may follow, so they cannot be trusted as part of the encrypted session.
    public mutating func plaintextAfterSSLRequest() -> ErrorFields {
        phase = .closed
        return ErrorFields(severity: "FATAL", sqlState: SQLState.protocolViolation,
                           message: "received unencrypted data after SSL request")
    }

    /// A startup packet that could not be decoded.
    public mutating func startupFailed(_ error: ProtocolError) -> ErrorFields {
        phase = .closed
        switch error {
        case .unsupportedProtocolVersion:
            return ErrorFields(severity: "FATAL", sqlState: SQLState.featureNotSupported, message: error.description)
        default:
            return ErrorFields(severity: "FATAL", sqlState: SQLState.protocolViolation, message: error.description)
        }
    }

    public mutating func upstreamConnected() {
        phase = .authenticating
    }

    public mutating func upstreamConnectFailed(address: String, reason: String) -> ErrorFields {
        phase = .closed
        return ErrorFields(severity: "FATAL", sqlState: SQLState.unableToConnect,
                           message: "switchyard could not connect to the upstream server at \(address): \(reason)",
                           hint: "Check that PostgreSQL is running and that `upstream` in the Switchyard config points at it.")
    }

    // MARK: Traffic

    /// The message ids whose bodies the session must see from the server.
    public static let inspectedServerMessages: Set<UInt8> = [
        BackendMessageID.authentication.rawValue,
        BackendMessageID.backendKeyData.rawValue,
        BackendMessageID.parameterStatus.rawValue,
        BackendMessageID.readyForQuery.rawValue,
        BackendMessageID.errorResponse.rawValue,
        BackendMessageID.copyInResponse.rawValue,
        BackendMessageID.copyBothResponse.rawValue,
    ]

    public mutating func clientMessage(_ message: ScannedMessage, now: UInt64) -> ClientEvent {
        switch message.id {
        case FrontendMessageID.query.rawValue:
            statementCount += 1
            pushRequest(now, isSync: false)
        case FrontendMessageID.sync.rawValue:
            if !copyInActive { pushRequest(now, isSync: true) }
        case FrontendMessageID.functionCall.rawValue:
            pushRequest(now, isSync: false)
        case FrontendMessageID.copyDone.rawValue, FrontendMessageID.copyFail.rawValue:
            copyInActive = false
        case FrontendMessageID.execute.rawValue:
            statementCount += 1
        case FrontendMessageID.terminate.rawValue:
            phase = .closed
            return .terminate
        default:
            break
        }
        return .none
    }

    public mutating func serverMessage(_ message: ScannedMessage, now: UInt64) -> ServerEvent {
        guard let body = message.body else { return .none }
        // ReadyForQuery ends every request: decode it without the general decoder.
        if message.id == BackendMessageID.readyForQuery.rawValue, body.count == 1,
           let status = TransactionStatus(rawValue: body[0]) {
            return readyForQuery(status, now: now)
        }
        guard let decoded = try? BackendMessage.decode(id: message.id, body: body) else { return .none }
        switch decoded {
        case let .backendKeyData(key):
            backendKey = key
        case let .parameterStatus(name, value):
            serverParameters[name] = value
        case .copyInResponse, .copyBothResponse:
            copyInActive = true
            // In the extended protocol the Sync that followed the COPY's Execute
            // reached the server in copy-in mode and was ignored: it gets no answer.
            if requestHead < requestStarts.count, requestStarts[requestHead].isSync {
                _ = popRequest()
                return .requestIgnored
            }
        case let .errorResponse(fields):
            errorSinceReady = true
            if let severity = fields.severity, severity == "FATAL" || severity == "PANIC" {
                return .fatalError(fields)
            }
        case let .readyForQuery(status):
            return readyForQuery(status, now: now)
        default:
            break
        }
        return .none
    }

    private mutating func readyForQuery(_ status: TransactionStatus, now: UInt64) -> ServerEvent {
        // The server sends ReadyForQuery only outside copy mode; after an error during
        // COPY the client may never send CopyDone, so this is where copy-in ends for sure.
        copyInActive = false
        let previous = transactionStatus
        transactionStatus = status
        if status == .idle { lastTransactionFailed = previous == .failed || errorSinceReady }
        let failed = errorSinceReady
        errorSinceReady = false
        if phase == .authenticating {
            phase = .ready
            return .sessionEstablished
        }
        if status == .idle && (previous != .idle || outstandingRequests > 0) {
            transactionCount += 1
        }
        if let request = popRequest() {
            requestCount += 1
            return .requestCompleted(nanoseconds: now >= request.start ? now - request.start : 0, failed: failed)
        }
        return .none
    }

    public mutating func closed() {
        phase = .closed
    }

    private mutating func pushRequest(_ now: UInt64, isSync: Bool) {
        if requestHead > 64 && requestHead * 2 > requestStarts.count {
            requestStarts.removeFirst(requestHead)
            requestHead = 0
        }
        requestStarts.append(Request(start: now, isSync: isSync))
    }

    private mutating func popRequest() -> Request? {
        guard requestHead < requestStarts.count else { return nil }
        let v = requestStarts[requestHead]
        requestHead += 1
        if requestHead == requestStarts.count {
            requestStarts.removeAll(keepingCapacity: true)
            requestHead = 0
        }
        return v
    }
}
