// One client connection and its upstream connection: reads, forwards, and feeds the state machine.
import Glibc
import Logging
import SwitchyardConfig
import SwitchyardIO
import SwitchyardProtocol
import SwitchyardRouting
import SwitchyardShadow
import SwitchyardSQL

/// The I/O shell around `SessionStateMachine`. Each read is scanned for message
/// boundaries and forwarded as the bytes it arrived in; the state machine only
/// watches. Confined to its event loop once registered.
final class ProxySession: EventHandler, TickHandler, ShutdownTarget, @unchecked Sendable {
    let context: ServerContext
    let settings: SessionSettings
    let info: SessionInfo
    private(set) var client: Link
    private(set) var upstream: Link?
    unowned let loop: EventLoop

    private var state: SessionStateMachine
    /// `state.isIdle` and `state.outstandingRequests`, read in place. Read directly, a computed
    /// property of a struct kept in a class's property is read from a copy of the whole struct,
    /// made first; the session asks these for every message.
    private var stateIsIdle: Bool { Self.inPlace(&state) { $0.isIdle } }
    private var outstandingRequests: Int { Self.inPlace(&state) { $0.outstandingRequests } }
    @inline(__always) private static func inPlace<T>(_ state: inout SessionStateMachine, _ read: (inout SessionStateMachine) -> T) -> T {
        read(&state)
    }
    private var startupReader = StartupPacketReader()
    private var clientScanner: MessageScanner
    /// Present when flags are configured: holds Query and Parse messages for the router.
    private var splicer: MessageSplicer?
    private var router: SessionRouter?
    /// Whether the session was between transactions when the held message began.
    private var heldStartedIdle = true
    /// Whether the transaction in progress has had its cohorts recorded (SHOW COHORTS): by its
    /// first statement the router looked at, which is not its first when that one (a BEGIN)
    /// concerned no flag.
    private var transactionCohortsRecorded = false
    /// Answers to statements the proxy injected (SET search_path, re-prepared statements),
    /// dropped before the client sees them.
    private var skipper = ResponseSkipper(isStale: ProxySession.isStalePreparedRead)
    /// What each injected exchange was, in the order the server answers them.
    private enum InjectedExchange {
        case searchPath
        case reprepare(PreparedStatements.Swap)
        case deallocate
    }
    private var injected: [InjectedExchange] = []
    /// Errors among the answers of the injected exchange being skipped.
    private var injectedErrors: [ErrorFields] = []
    /// The session's named prepared statements and the text the server holds for each.
    private var prepared = PreparedStatements()
    /// The router generation the prepared statements were last checked at.
    private var preparedGeneration: UInt64 = 0
    /// Mirrored writes: the statements and portals that answer with the marker row, the fixer
    /// that restores the original answers, and the server-side splicer it works through (both
    /// present when flags are configured; the splicer holds messages only while the fixer watches).
    private var mirroredStatements: Set<String> = []
    /// Mirrored statements with RETURNING: they return two more leading columns than the client's.
    private var mirroredReturning: Set<String> = []
    private var mirroredPortals: Set<String> = []
    /// Mirrored writes in the tag form whose tag the fixer renames: the verb per statement and portal.
    private var renamedStatements: [String: String] = [:]
    private var renamedPortals: [String: String] = [:]
    /// Executes since the last Sync or Query: which completion of its request the next one is.
    private var executesSinceSync = 0
    private var fixer: MirrorResponseFixer?
    private var serverSplicer: MessageSplicer?
    /// The autocommit mirrored write that is sent again alone if the new table rejects its mirror.
    private struct PendingRetry {
        var query: [UInt8]
        var sql: String
        var fingerprint: String
        var migrations: [String]
        var error: ErrorFields?
    }
    private var pendingRetry: PendingRetry?
    /// Latency per flag, cohort and path: a label per client request, in the state machine's
    /// request order (nil for requests that read no migrated relation), the label of each prepared
    /// statement, and the label the next Sync's request takes.
    private var requestLabels: [LatencyLabel?] = []
    /// What routed statements add to SHOW COHORTS and the routed-read counters, counted once the
    /// event's I/O is done: a statement goes to the server first, and its answer, which cannot
    /// come back before, reaches the client after the counts (over TLS too: after the send, the
    /// event reads only what OpenSSL already holds decrypted).
    private var pendingCohorts: [CohortAssignment] = []
    /// The digit runs of the last routed text (see ``QueryInfoCache/info(for:runs:)``): kept so that
    /// its storage serves the next one.
    private var runScratch: [Range<Int>] = []
    private var pendingRewrites: [[String]] = []
    /// The last routed message's analysis and decoded form, freed once the event's I/O is done
    /// rather than before the statement goes out.
    /// (Two optionals rather than an optional pair, which is destroyed through the run time's
    /// generic witnesses.)
    private var retiredInfo: QueryInfo?
    private var retiredMessage: FrontendMessage?
    private var labelHead = 0
    private var querySlot: Int?
    /// Requests answered since the session began: the one at `labelHead` has this number.
    private var requestsAnswered = 0
    /// The SQL-prepared writes each request's statements forgot (DEALLOCATE, DISCARD ALL, Close,
    /// PREPARE over the name), given back to the router if the request fails: they may not have run.
    private var forgottenByRequest: [(request: Int, writes: [SessionRouter.SQLPreparedWrite])] = []
    private var statementLabels: [String: LatencyLabel] = [:]
    /// The routed reads prepared on the server connection (`prepare_routed_reads`), and the
    /// router's ``SessionRouter/deallocations`` they were last checked against.
    private var preparedReads: PreparedReads
    private var preparedReadsChecked: UInt64 = 0
    /// What the answer to the Query in flight begins with, when it runs a prepared read: the
    /// PREPARE's CommandCompletes, or (for an EXECUTE alone) perhaps an error saying the statement
    /// must be prepared again, in which case the session does so and runs it again (``readWatchEnded``).
    private enum ReadWatch {
        case prepare
        case execute(PreparedRead, name: String, message: [UInt8])
    }
    private var readWatch: ReadWatch?
    /// A read that shadow reads may replay: its text, flag, route and what the record says of it.
    private struct ShadowCandidate {
        var sql: String
        var flag: String
        var route: ReadRoute
        var cohortKey: String?
        var searchPath: String?
        var fingerprint: String
        var normalizedQuery: String
        var ordered: Bool
        var parameterTypes: [Int32] = []
    }
    /// Prepared reads, replayed at Bind with their parameters.
    private var shadowStatements: [String: ShadowCandidate] = [:]
    /// Prepared statements that call `set_config`, with their declared parameter types: the
    /// setting changes at each Bind, with its values.
    private var configStatements: [String: (calls: [ConfigCall], parameterTypes: [Int32])] = [:]
    /// Whether some flag samples shadow reads under the flag table of that version.
    private var shadowPossible = false
    private var shadowCheckedVersion: UInt64 = .max
    private var syncLabel: LatencyLabel?
    private var serverScanner: MessageScanner
    private var toServer = OutputBuffer()
    private var toClient = OutputBuffer()
    private var connecting = false
    /// What each socket is registered for, cached so the hot path needs no lookups.
    private var clientInterest: Interest = .readable
    private var serverInterest: Interest = .writable
    private var closed = false
    private var closeWhenIdleRequested = false
    /// Close once `toClient` drains (after a FATAL error we wrote ourselves).
    private var closeAfterClientFlush = false
    private let createdAt: UInt64
    /// The server sent a FATAL error (it closes the connection next).
    private var serverSentFatal = false
    /// When the client last sent bytes: the idle timeouts count from here.
    private var lastClientRead: UInt64
    private var connectStartedAt: UInt64 = 0
    private var logger: Logger
    /// While the client's TLS handshake is under way: the readiness it waits for.
    private var clientHandshake: Interest?
    /// Whether and how the upstream link is encrypted (server_tls.sslmode), and the step it is at
    /// between the TCP connection and the startup message.
    private var negotiation: UpstreamNegotiation
    private enum UpstreamStep {
        case sslResponse
        case handshake(Interest)
    }
    private var upstreamStep: UpstreamStep?
    /// The startup message, kept for a second attempt when sslmode is allow.
    private var startupBytes: [UInt8] = []
    /// Present while the upstream link is TLS and its first answer has not gone by: removes the
    /// channel-binding mechanism from the SASL offer.
    private var saslFilter: SASLOfferFilter?
    /// The offer lost its channel-binding mechanism: the client's answer is checked before it goes on.
    private var checkSASLAnswer = false

    init(context: ServerContext, client: Socket, loop: EventLoop) {
        self.context = context
        self.settings = context.settings
        self.client = Link(client)
        self.loop = loop
        self.info = SessionInfo(id: context.registry.makeID(), clientAddress: client.peerDescription, loopIndex: loop.index)
        let maxSize = settings.config.maxMessageSize
        self.state = SessionStateMachine(encryption: settings.tls.clientPolicy)
        self.negotiation = UpstreamNegotiation(mode: settings.tls.upstreamMode)
        self.clientScanner = MessageScanner(maxMessageSize: maxSize, inspect: [])
        self.preparedReads = PreparedReads(session: "\(PreparedReads.processToken)_\(info.id)")
        if context.routing.hasFlags.load(ordering: .acquiring) {
            splicer = MessageSplicer(maxMessageSize: maxSize, hold: [
                FrontendMessageID.query.rawValue, FrontendMessageID.parse.rawValue,
                FrontendMessageID.bind.rawValue, FrontendMessageID.close.rawValue,
                FrontendMessageID.describe.rawValue, FrontendMessageID.execute.rawValue,
            ])
        }
        // Server messages are trusted to be well-formed; a DataRow may legitimately exceed the client limit.
        self.serverScanner = MessageScanner(maxMessageSize: Int(Int32.max), inspect: SessionStateMachine.inspectedServerMessages)
        self.createdAt = loop.clock.monotonicNanoseconds()
        self.lastClientRead = createdAt
        var logger = context.logger
        logger[metadataKey: "session"] = "\(info.id)"
        logger[metadataKey: "client"] = "\(info.clientAddress)"
        self.logger = logger
    }

    /// Called on the loop thread right after accept.
    func start() {
        let keepalive = settings.config.tcpKeepalive
        client.setNoDelay()
        if keepalive.enabled {
            client.setKeepalive(idleSeconds: Int(keepalive.idle.components.seconds), intervalSeconds: Int(keepalive.interval.components.seconds), count: keepalive.count)
        }
        do {
            try loop.register(fd: client.fd, interest: .readable, handler: self)
        } catch {
            logger.error("could not register client socket", metadata: ["error": "\(error)"])
            client.close()
            return
        }
        context.registry.add(info, loop: loop, target: self)
        context.stats.clientsActive.add(1, ordering: .relaxed)
        loop.addTicker(self)
    }

    // MARK: Events

    func handle(fd: Int32, readiness: Readiness, loop: EventLoop) {
        guard !closed else { return }
        defer { afterIO() }
        do {
            if fd == client.fd {
                if clientHandshake != nil {
                    try continueClientHandshake()
                } else {
                    // A TLS read or write can wait on the other direction (Link.extraInterest).
                    if readiness.isWritable || (readiness.isReadable && client.extraInterest.contains(.readable)) { try flushToClient() }
                    if readiness.isReadable || readiness.isErrorOrHangup || (readiness.isWritable && client.extraInterest.contains(.writable)), !closed,
                       clientInterest.contains(.readable) || readiness.isErrorOrHangup {
                        try readClient()
                    }
                }
            } else if let upstream, fd == upstream.fd {
                if connecting {
                    if upstreamStep != nil {
                        continueUpstreamNegotiation()
                    } else if readiness.isWritable || readiness.isErrorOrHangup {
                        finishConnect()
                    }
                } else {
                    if readiness.isWritable || (readiness.isReadable && upstream.extraInterest.contains(.readable)) { try flushToServer() }
                    if readiness.isReadable || readiness.isErrorOrHangup || (readiness.isWritable && upstream.extraInterest.contains(.writable)), !closed,
                       serverInterest.contains(.readable) || readiness.isErrorOrHangup {
                        try readServer()
                    }
                }
            }
            if !closed && (client.isTLS || upstream?.isTLS == true) {
                updateInterests()
                try drainDecryptedBytes()
            }
        } catch {
            close(reason: "\(error)")
            return
        }
        if !closed { updateInterests() }
    }


    private func readClient() throws(SocketError) {
        switch try client.read(into: loop.scratch) {
        case .wouldBlock: return
        case .endOfFile:
            close(reason: "client closed the connection")
            return
        case let .bytes(n):
            let chunk = UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n])
            context.stats.bytesFromClients.add(UInt64(n), ordering: .relaxed)
            lastClientRead = loop.clock.monotonicNanoseconds()
            info.bytesIn.add(UInt64(n), ordering: .relaxed)
            if state.phase == .awaitingStartup {
                try handleStartupBytes(chunk)
            } else if checkSASLAnswer, let refusal = channelBindingRefusal(chunk) {
                sendFatalAndClose(refusal)
            } else {
                try forwardClientBytes(chunk)
            }
        }
    }

    private func forwardClientBytes(_ chunk: UnsafeRawBufferPointer) throws(SocketError) {
        guard let upstream else { return }
        var output = SplicedOutput(of: chunk)
        let terminate = scanClientBytes(chunk) { output.emit($0) }
        // A protocol error met in the chunk has closed the session: what came before it goes nowhere.
        if closed { return }
        if connecting {
            output.append(to: &toServer)
        } else {
            try output.send(to: upstream, queue: &toServer)
        }
        if terminate {
            // Let the Terminate reach the server, then close both sides.
            _ = try? toServer.flush(to: upstream)
            close(reason: "client sent Terminate")
        }
    }

    /// Feeds client bytes to the state machine and, when flags are configured, lets the
    /// router replace Query and Parse messages. Returns whether the client sent Terminate.
    private func scanClientBytes(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) -> Bool {
        let now = loop.clock.monotonicNanoseconds()
        var terminate = false
        var statements: UInt64 = 0
        // A nested function, passed only where it cannot escape: its context and the two counters
        // it updates stay on the stack (a closure value would put all three on the heap per read).
        func onMessage(_ message: ScannedMessage) {
            if message.id == FrontendMessageID.query.rawValue || message.id == FrontendMessageID.parse.rawValue
                || message.id == FrontendMessageID.bind.rawValue || message.id == FrontendMessageID.close.rawValue
                || message.id == FrontendMessageID.describe.rawValue || message.id == FrontendMessageID.execute.rawValue {
                self.heldStartedIdle = self.stateIsIdle
            }
            if message.id == FrontendMessageID.query.rawValue || message.id == FrontendMessageID.sync.rawValue {
                self.fixer?.requestSent()
                self.executesSinceSync = 0
            } else if message.id == FrontendMessageID.execute.rawValue {
                self.executesSinceSync += 1
            }
            let before = self.state.statementCount
            let requestsBefore = self.outstandingRequests
            if self.state.clientMessage(message, now: now) == .terminate { terminate = true }
            statements += self.state.statementCount - before
            if self.router != nil, self.outstandingRequests > requestsBefore {
                // Its answer would come before a second try of the EXECUTE in flight: a stale
                // error there is the client's.
                if case .execute = self.readWatch {
                    self.skipper.keepStaleErrors()
                    if self.skipper.takeOutcome() != nil { self.readWatch = nil }
                }
                // A Query's label is known once the whole message is routed; a Sync takes the label
                // of the prepared statements bound since the last one.
                if message.id == FrontendMessageID.query.rawValue {
                    self.querySlot = self.requestLabels.count
                    self.requestLabels.append(nil)
                } else {
                    // What the Parses and Closes since the last Sync forgot belongs to this request.
                    self.noteForgotten(slot: self.requestLabels.count)
                    self.requestLabels.append(message.id == FrontendMessageID.sync.rawValue ? self.syncLabel : nil)
                    self.syncLabel = nil
                }
            }
        }
        do {
            if splicer != nil {
                // Describe and Execute only matter while some statement answers with the marker row.
                try splicer!.process(chunk, onMessage: onMessage, onHeld: { id, body in self.routeHeld(id: id, raw: body) },
                                     holding: { id in
                                         !self.mirroredStatements.isEmpty || !self.renamedStatements.isEmpty
                                             || (id != FrontendMessageID.describe.rawValue && id != FrontendMessageID.execute.rawValue)
                                     },
                                     emit: emit)
            } else {
                try clientScanner.scan(chunk, onMessage: onMessage)
                emit(chunk)
            }
        } catch {
            context.stats.protocolErrors.add(1, ordering: .relaxed)
            rejectAndClose(protocolError: error)
            return false
        }
        if statements > 0 {
            context.stats.statements.add(statements, ordering: .relaxed)
            info.statements.add(statements, ordering: .relaxed)
            info.state.store(2, ordering: .relaxed)
        }
        return terminate
    }

    /// A read the shadow samplers may compare on both paths: nil when no flag at shadow or later
    /// covers it. Cheap: the new path's text is only made for a sampled read.
    private func shadowCandidate(sql: String, info: QueryInfo) -> ShadowCandidate? {
        // `router!` rather than a local, and `shadowTarget` is mutating: either way round, the whole
        // router would be copied for every read.
        guard shadowSampling(),
              let target = router!.shadowTarget(statements: info.statements, commentTags: info.commentTags),
              let statement = info.statements.first else { return nil }
        return ShadowCandidate(sql: sql, flag: target.flag, route: target.route, cohortKey: target.cohortKey, searchPath: target.searchPath,
                               fingerprint: statement.fingerprint, normalizedQuery: statement.normalizedText, ordered: statement.hasOrderBy)
    }

    /// Whether some flag samples shadow reads now: worked out once per flag table.
    private func shadowSampling() -> Bool {
        guard router != nil else { return false }
        if shadowCheckedVersion != router!.table.version {
            shadowCheckedVersion = router!.table.version
            let sampling = Set(context.settings.config.flags.filter { $0.shadow.samplePercentBasisPoints > 0 }.map(\.name))
            shadowPossible = context.shadow.withLock({ $0 }) != nil
                && router!.table.flags.contains { sampling.contains($0.name) && $0.stage >= .shadow && $0.stage < .complete }
        }
        return shadowPossible
    }

    /// Samples a read for shadowing; the pool answers it off this thread, or drops it when full.
    /// `info`: the text's analysis when the caller has it (a prepared read's is looked up again at Bind).
    private func submitShadow(_ c: ShadowCandidate, info: QueryInfo? = nil, parameters makeParameters: () -> [ShadowParameter]?) {
        guard let shadow = context.shadow.withLock({ $0 }),
              case let .sample(calibrate) = shadow.samplers.decide(flag: c.flag, fingerprint: c.fingerprint),
              let parameters = makeParameters() else { return }
        enqueueShadow(c, info: info, calibrate: calibrate, parameters: parameters, shadow: shadow)
    }

    /// A read the samplers took: its new-path text made, and the job queued.
    private func enqueueShadow(_ c: ShadowCandidate, info: QueryInfo?, calibrate: Bool, parameters: [ShadowParameter], shadow: ShadowReads) {
        let cache = context.routing.cache(loop: loop.index)
        guard case let .rewritten(newSQL) = cache.rewrite(c.sql, info: info ?? cache.info(for: c.sql), routes: [c.route]) else { return }
        let redact = context.settings.config.flags.first { $0.name == c.flag }?.shadow.redactParameters ?? false
        let job = ShadowJob(flag: c.flag, cohort: c.cohortKey, fingerprint: c.fingerprint, normalizedQuery: c.normalizedQuery,
                            oldSQL: c.sql, newSQL: newSQL, parameters: parameters, ordered: c.ordered, calibrate: calibrate,
                            redactParameters: redact, settings: c.searchPath.map { ["search_path": $0] } ?? [:])
        _ = shadow.reader.submit(job)
    }

    /// A prepared read is bound: its text parameters make it replayable (binary ones are not sampled).
    private func shadowBound(_ candidate: ShadowCandidate, id: UInt8, body: [UInt8]) {
        submitShadow(candidate) {
            guard case let .bind(bind)? = try? FrontendMessage.decode(id: id, body: body),
                  bind.parameterFormats.allSatisfy({ $0 == 0 }) else { return nil }
            return bind.parameters.enumerated().map { i, value in
                ShadowParameter(value.map { String(decoding: $0, as: UTF8.self) },
                                typeOID: i < candidate.parameterTypes.count ? UInt32(bitPattern: candidate.parameterTypes[i]) : 0)
            }
        }
    }

    /// The server messages the session state machine needs whole, by id.
    static let inspectedByState: [Bool] = (0..<256).map { SessionStateMachine.inspectedServerMessages.contains(UInt8($0)) }

    static func makeFixer(marker: String) -> MirrorResponseFixer {
        MirrorResponseFixer(marker: marker, simpleColumn: WriteMirror.Wire.simple.rawValue, extendedColumn: WriteMirror.Wire.extended.rawValue,
                            returningColumn: WriteMirror.returningColumn)
    }

    /// The first `count` NUL-terminated strings of a message body (Bind, Execute, Describe's name).
    static func leadingCStrings(_ body: [UInt8], count: Int) -> [String]? {
        var out: [String] = []
        var start = 0
        while out.count < count {
            guard let end = body[start...].firstIndex(of: 0) else { return nil }
            out.append(String(decoding: body[start..<end], as: UTF8.self))
            start = end + 1
        }
        return out
    }

    /// A Query, or a Parse of statement `statementName`, that concerns no flag goes on as it came:
    /// nothing about it is kept.
    private func passedUnconcerned(statementName: String?) {
        if heldStartedIdle { transactionCohortsRecorded = false }
        if let name = statementName {
            statementLabels.removeValue(forKey: name)
            shadowStatements.removeValue(forKey: name)
            configStatements.removeValue(forKey: name)
        }
        querySlot = nil
    }

    /// Whether the router may have something to do with query text `sql`: most statements name no
    /// migrated relation (old or new), change no setting (a cohort setting for later), close no
    /// statement while some are tracked and roll back no SET. Bytes rule those out (see
    /// ``TextPrefilter``), and they cost no analysis.
    private func mayConcernRouting(_ sql: String) -> Bool {
        var text = sql
        return text.withUTF8 { mayConcernRouting($0) }
    }

    /// A Query's text: the body up to its one NUL, which ends it (nil for a malformed body).
    private static func queryText(_ body: UnsafeBufferPointer<UInt8>) -> String? {
        guard let end = firstNUL(body), end == body.count - 1 else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: body[..<end]), as: UTF8.self)
    }

    /// Where the first NUL of `body` is: `memchr`, where `firstIndex(of:)` compares byte by byte
    /// (both run on every Query of a session with flags).
    private static func firstNUL(_ body: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = body.baseAddress, let hit = memchr(base, 0, body.count) else { return nil }
        return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
    }

    /// ``mayConcernRouting(_:)-String`` on the text's bytes.
    private func mayConcernRouting(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // The likeliest "yes" first: a text that names a migrated relation needs nothing more.
        if (router!.routesReads || router!.mirrorsWrites) && router!.table.mentions.mayMention(bytes) { return true }
        if TextPrefilter.mayChangeSetting(bytes) { return true }
        // DISCARD ALL closes prepared statements and resets settings.
        if (!prepared.isEmpty || !configStatements.isEmpty || router!.holdsSettings || router!.hasSQLPreparedWrites || preparedReads.count > 0)
            && TextPrefilter.mayDeallocate(bytes) { return true }
        // A write prepared with SQL PREPARE is followed whatever it names, so that its EXECUTEs are.
        if TextPrefilter.mayPrepare(bytes) || (router!.hasSQLPreparedWrites && TextPrefilter.mayExecute(bytes)) { return true }
        return router!.watchesForRollback
            && (TextPrefilter.mayRollBack(bytes) || TextPrefilter.mayChain(bytes) || TextPrefilter.mayMarkSavepoint(bytes))
    }

    /// A whole Query, Parse, Bind or Close: the router decides whether it goes out as it came,
    /// rewritten, or after statements of Switchyard's own (a search_path for the cohort,
    /// prepared statements re-prepared for the path the session is now on).
    /// `raw` is the message's body, valid during the call: a Query that concerns no flag is ruled
    /// out on it without a copy, and the other paths read a copy (`body`), made when first read.
    private func routeHeld(id: UInt8, raw: UnsafeRawBufferPointer) -> [UInt8]? {
        guard router != nil else { return nil }
        lazy var body = [UInt8](raw)
        /// A Query's text found of the cache's last masked key, runs in `runScratch`.
        var matched: MaskedMatch?
        let rawBytes = raw.assumingMemoryBound(to: UInt8.self)
        // The table is copied only when its version moved: no lock on the common path.
        if context.routing.currentVersion != router!.table.version {
            router!.offer(context.routing.current, idle: heldStartedIdle)
        }
        let cache = context.routing.cache(loop: loop.index)
        // Between transactions, statements prepared earlier follow the session's path.
        var prefix = heldStartedIdle ? reprepareStatements(cache: cache) : []
        func prefixed(_ message: [UInt8]?) -> [UInt8]? {
            if prefix.isEmpty { return message }
            return prefix + (message ?? FrontendMessage.wholeMessage(id: id, body: body))
        }
        switch id {
        case FrontendMessageID.bind.rawValue:
            // Bind: portal name, then statement name.
            if let names = Self.leadingCStrings(body, count: 2) {
                if let label = statementLabels[names[1]] { syncLabel = label }
                if let statement = configStatements[names[1]], case let .bind(bind)? = try? FrontendMessage.decode(id: id, body: body) {
                    router!.settingsChanged(ConfigCall.changes(statement.calls, parameters: bind.parameters, formats: bind.parameterFormats,
                                                               types: statement.parameterTypes))
                }
                if let candidate = shadowStatements[names[1]] { shadowBound(candidate, id: id, body: body) }
                if mirroredStatements.contains(names[1]) { mirroredPortals.insert(names[0]) } else { mirroredPortals.remove(names[0]) }
                renamedPortals[names[0]] = renamedStatements[names[1]]
                // Per-column result formats must cover the two leading columns the client does not see.
                if mirroredReturning.contains(names[1]), case var .bind(bind)? = try? FrontendMessage.decode(id: id, body: body),
                   bind.resultFormats.count > 1 {
                    bind.resultFormats.insert(contentsOf: [0, 0], at: 0)
                    return prefixed(FrontendMessage.bind(bind).encoded())
                }
            }
            return prefixed(nil)
        case FrontendMessageID.describe.rawValue:
            if body.count >= 2, let name = Self.leadingCStrings(Array(body[1...]), count: 1)?.first {
                let mirrored = body[0] == StatementOrPortal.statement.rawValue ? mirroredStatements.contains(name) : mirroredPortals.contains(name)
                if mirrored { fixer?.mirroredExtendedSent() }
            }
            return prefixed(nil)
        case FrontendMessageID.execute.rawValue:
            if let portal = Self.leadingCStrings(body, count: 1)?.first {
                if mirroredPortals.contains(portal) { fixer?.mirroredExtendedSent() }
                if let verb = renamedPortals[portal] { fixer?.renameExpected(extended: true, ordinal: executesSinceSync - 1, verb: verb) }
            }
            return prefixed(nil)
        case FrontendMessageID.query.rawValue:
            if !router!.hasSearchPathFlags, let end = Self.firstNUL(rawBytes) {
                let text = UnsafeBufferPointer(rebasing: rawBytes[..<end])
                // A text of the masked key routed last is decided on its bytes, with no analysis
                // to look up (see SessionRouter.routeMatched); it comes back here otherwise.
                if end == rawBytes.count - 1 {
                    matched = cache.matchLast(text, runs: &runScratch)
                    let preparing = settings.config.prepareRoutedReads && matched?.isPreparable == true
                    if let match = matched, let routed = router!.routeMatched(match, text: text, runs: runScratch, cache: cache,
                                                                              front: FrontendMessage.headerLength, preparing: preparing) {
                        labelQuery(router!.lastLatencyLabel)
                        noteCohorts()
                        // A flag samples shadow reads: this read is offered to its samplers, as any read
                        // is, and only a sampled one has its text and analysis made.
                        if shadowSampling(), let offered = router!.matchedShadowFlag, let shadow = context.shadow.withLock({ $0 }),
                           case let .sample(calibrate) = shadow.samplers.decide(flag: offered.flag, fingerprint: offered.fingerprint) {
                            let sql = String(decoding: text, as: UTF8.self)
                            let info = cache.info(match, sql: sql, runs: runScratch)
                            if let candidate = shadowCandidate(sql: sql, info: info) {
                                enqueueShadow(candidate, info: info, calibrate: calibrate, parameters: [], shadow: shadow)
                            }
                        }
                        var message: [UInt8]
                        switch routed {
                        case .forward:
                            guard preparing, let prepared = cache.preparedRead(match, routes: nil) else { return prefixed(nil) }
                            return prefixed(preparedReadMessage(prepared, match: match, text: text, cache: cache))
                        case let .rewritten(body, flags):
                            pendingRewrites.append(flags)
                            message = body
                        case let .prepared(prepared, routes, flags):
                            pendingRewrites.append(flags)
                            if let prepared = preparedReadMessage(prepared, match: match, text: text, cache: cache) { return prefixed(prepared) }
                            guard let body = cache.rewrittenBody(match, text: text, runs: runScratch, routes: routes,
                                                                 front: FrontendMessage.headerLength) else { return prefixed(nil) }
                            message = body
                        }
                        FrontendMessage.writeHeader(id: id, into: &message)
                        return prefixed(message)
                    }
                }
                // Most statements concern no flag (see mayConcernRouting): a Query is ruled out on
                // its bytes, its text never decoded.
                if !mayConcernRouting(text) {
                    passedUnconcerned(statementName: nil)
                    return prefixed(nil)
                }
            }
        default:
            break
        }
        // A Query is its text and a NUL: read in place, as decode would, for every routed statement.
        let decoded = id == FrontendMessageID.query.rawValue ? Self.queryText(rawBytes).map(FrontendMessage.query)
            : try? FrontendMessage.decode(id: id, body: body)
        let sql: String
        switch decoded {
        case let .query(text): sql = text
        case let .parse(parse): sql = parse.query
        case let .close(close):
            if close.target == .statement {
                prepared.closed(name: close.name)
                configStatements[close.name] = nil
                router!.statementClosed(close.name)
                setMirrored(close.name, text: "")
            } else {
                mirroredPortals.remove(close.name)
                renamedPortals[close.name] = nil
            }
            return prefixed(nil)
        default: return prefixed(nil)
        }
        var sentText = sql
        var mirrored = false
        /// The mirrored write is a COPY through the staging table (looked for once per text).
        var mirroredCopy = false
        defer {
            if case let .parse(parse) = decoded {
                prepared.parsed(name: parse.statementName, sql: sql, parameterTypes: parse.parameterTypes, sentText: sentText)
                setMirrored(parse.statementName, text: sentText)
            } else if mirrored {
                if mirroredCopy {
                    fixer?.mirroredCopySent()
                } else {
                    fixer?.mirroredQuerySent(retryable: pendingRetry != nil)
                    if let verb = WriteMirror.renamedVerb(sentText, tagComment: context.routing.updateTagComment) {
                        fixer?.renameExpected(extended: false, ordinal: 0, verb: verb)
                    }
                }
            }
        }
        // A Parse's text is ruled out here (a Query's was, above, before it was decoded).
        if case let .parse(parse) = decoded, !router!.hasSearchPathFlags, !mayConcernRouting(sql) {
            passedUnconcerned(statementName: parse.statementName)
            return prefixed(nil)
        }
        let info = matched.map { cache.info($0, sql: sql, runs: runScratch) } ?? cache.info(for: sql, runs: &runScratch)
        defer {
            retiredInfo = info
            retiredMessage = decoded
        }
        if !prepared.isEmpty || !configStatements.isEmpty, case .query = decoded {
            for statement in info.statements {
                switch PreparedStatements.deallocation(statement) {
                case .all?:
                    prepared.closedAll()
                    configStatements.removeAll()
                case let .named(name)?:
                    prepared.closed(name: name)
                    configStatements[name] = nil
                case nil: break
                }
            }
        }
        // A search_path flag moves the session between schemas at transaction boundaries,
        // with a statement of Switchyard's own sent ahead of the client's.
        if heldStartedIdle, let set = router!.searchPathStatement(info: info) {
            prefix += FrontendMessage.query(set).encoded()
            skipper.expectAnswer()
            injected.append(.searchPath)
            logger.debug("session moved by a search_path flag", metadata: ["statement": "\(set)"])
        }
        let wire: WriteMirror.Wire
        if case .parse = decoded { wire = .extended } else { wire = .simple }
        let decision = router!.route(sql: sql, info: info, cache: cache, wire: wire)
        let label = router!.lastLatencyLabel
        if var candidate = shadowCandidate(sql: sql, info: info) {
            if case let .parse(parse) = decoded {
                candidate.parameterTypes = parse.parameterTypes
                shadowStatements[parse.statementName] = candidate
            } else {
                submitShadow(candidate, info: info, parameters: { [] })
            }
        } else if case let .parse(parse) = decoded {
            shadowStatements.removeValue(forKey: parse.statementName)
        }
        switch decoded {
        case let .parse(parse):
            statementLabels[parse.statementName] = label
            let calls = router!.lastPreparedConfigCalls
            configStatements[parse.statementName] = calls.isEmpty ? nil : (calls, parse.parameterTypes)
        default:
            labelQuery(label)
        }
        noteCohorts()
        /// The held Query or Parse with another text.
        func replaced(by text: String) -> [UInt8] {
            sentText = text
            if case let .parse(parse) = decoded {
                var rewritten = parse
                rewritten.query = text
                return FrontendMessage.parse(rewritten).encoded()
            }
            return FrontendMessage.query(text).encoded()
        }
        let message: [UInt8]?
        switch decision {
        case .forward:
            message = nil
        case let .rewritten(text, flags):
            pendingRewrites.append(flags)
            message = replaced(by: text)
        case let .keptOnOldPath(fingerprint, reason):
            context.routing.recordFallback(fingerprint: fingerprint, reason: reason, query: sql)
            message = nil
        case let .mirrored(text, migrations):
            mirrored = true
            mirroredCopy = WriteMirror.isMirroredCopy(text)
            message = replaced(by: text)
            // Not strict: an autocommit write whose mirror fails is retried alone (not with
            // RETURNING, whose row description has already gone to the client by then).
            // (Nor a COPY: its data has gone to the server already.)
            if case .query = decoded, heldStartedIdle, state.transactionStatus == .idle, info.statements.count == 1,
               !WriteMirror.returnsRows(text), !mirroredCopy,
               migrations.allSatisfy({ m in router!.table.flags.first { $0.migration == m }?.mirror?.strict == false }) {
                pendingRetry = PendingRetry(query: FrontendMessage.wholeMessage(id: id, body: body), sql: sql,
                                            fingerprint: info.statements.first?.fingerprint ?? "", migrations: migrations)
            } else {
                pendingRetry = nil
            }
        case let .writeNotMirrored(fingerprint, migration, reason):
            if router!.table.flags.first(where: { $0.migration == migration })?.mirror?.refusesUnmirrored == true {
                // Refused: a statement that fails with the reason runs in its place, so the client
                // gets the error where it expects an answer and nothing of its text runs.
                context.routing.recordFallback(fingerprint: fingerprint, reason: "write refused (\(migration)): \(reason)", query: sql)
                logger.warning("a write to a migrated table was refused", metadata: ["migration": "\(migration)", "reason": "\(reason)"])
                let refusal = WriteMirror.refusal(migration: migration, reason: reason)
                if case let .parse(parse) = decoded {
                    // Typed parameters, as many as the client's text uses, so its Bind still fits.
                    let types = WriteMirror.refusalParameterTypes(declared: parse.parameterTypes, sql: sql)
                    sentText = refusal
                    message = FrontendMessage.parse(Parse(statementName: parse.statementName, query: refusal, parameterTypes: types)).encoded()
                } else {
                    message = replaced(by: refusal)
                }
            } else {
                context.routing.recordFallback(fingerprint: fingerprint, reason: "write not mirrored (\(migration)): \(reason)", query: sql)
                context.routing.recordWriteDivergence(migration: migration, fingerprint: fingerprint, reason: reason, query: sql)
                logger.warning("a write to a migrated table was not mirrored", metadata: ["migration": "\(migration)", "reason": "\(reason)"])
                message = nil
            }
        }
        return prefixed(message)
    }

    /// The Query message that runs `prepared` for `text` (its runs in `runScratch`): an EXECUTE of
    /// the session's statement, prepared first in the same Query when it is not yet. nil when the
    /// Query is to go as a text: in a transaction block (a statement prepared again after a
    /// change to a table's columns could not be run again there), or with other requests in flight
    /// (the answer's first messages are told apart by being its first).
    private func preparedReadMessage(_ prepared: PreparedRead, match: MaskedMatch, text: UnsafeBufferPointer<UInt8>,
                                     cache: QueryInfoCache) -> [UInt8]? {
        // The answer's first message must be the first the server sends after the injected answers:
        // nothing of an earlier message (a notification) is still to come.
        guard heldStartedIdle, state.transactionStatus == .idle, outstandingRequests == 1, readWatch == nil,
              serverScanner.isAtMessageBoundary, serverSplicer?.isAtMessageBoundary ?? true else { return nil }
        if router!.deallocations != preparedReadsChecked {
            preparedReadsChecked = router!.deallocations
            preparedReads.forgetAll()
        }
        guard let plan = preparedReads.plan(for: prepared.id, canPrepare: true) else { return nil }
        let name: String, head: [UInt8], prepare: Bool, deallocating: String?
        switch plan {
        case let .execute(n, h): (name, head, prepare, deallocating) = (n, h, false, nil)
        case let .prepare(n, d): (name, head, prepare, deallocating) = (n, PreparedReads.executeHead(n), true, d)
        }
        guard var message = cache.executeBody(match, prepared: prepared, head: head,
                                              prepareStatement: prepare ? prepared.prepareStatement(name: name) : nil,
                                              text: text, runs: runScratch, front: FrontendMessage.headerLength) else {
            // Not sent: a statement the eviction would have made room for is not prepared either.
            if prepare { preparedReads.prepareEnded(succeeded: false) }
            return nil
        }
        FrontendMessage.writeHeader(id: FrontendMessageID.query.rawValue, into: &message)
        context.stats.preparedReads.add(1, ordering: .relaxed)
        if prepare {
            readWatch = .prepare
            skipper.expectLeading(.completions(1))
        } else {
            readWatch = .execute(prepared, name: name, message: message)
            skipper.expectLeading(.staleError)
        }
        guard let deallocating else { return message }
        return deallocation(deallocating) + message
    }

    /// `DEALLOCATE name` as a Query of the session's own, its answer dropped (an error only logged):
    /// a statement the client's Query must not fail for.
    private func deallocation(_ name: String) -> [UInt8] {
        injected.append(.deallocate)
        skipper.expectAnswer()
        return FrontendMessage.query("DEALLOCATE \(name)").encoded()
    }

    /// An error that says a statement the session prepared must be prepared again: a table it
    /// reads changed its columns (PostgreSQL will not change a prepared statement's result type),
    /// or it is gone (deallocated in a way the session did not see).
    static func isStalePreparedRead(_ error: ErrorFields) -> Bool {
        switch error.sqlState {
        case SQLState.featureNotSupported?: return error[.routine] == "RevalidateCachedQuery"
        case SQLState.invalidSQLStatementName?: return error.message?.contains(PreparedReads.namePrefix) == true
        default: return false
        }
    }

    /// The start of the answer to a prepared read has been seen (see ``ReadWatch``).
    private func readWatchEnded(_ outcome: ResponseSkipper.LeadingOutcome) throws(SocketError) {
        guard let watch = readWatch else { return }
        readWatch = nil
        switch watch {
        case .prepare:
            preparedReads.prepareEnded(succeeded: outcome == .completionsDropped)
            if outcome == .completionsDropped { context.stats.preparedReadStatements.add(1, ordering: .relaxed) }
        case let .execute(prepared, name, message):
            guard case let .stale(error) = outcome, let upstream else { return }
            // The EXECUTE failed before it ran, in a transaction of its own: it is prepared under
            // a new name and run again, and the client sees only that answer.
            let stillThere = error.sqlState == SQLState.featureNotSupported
            if stillThere {
                preparedReads.discard(prepared.id)
            } else {
                // Whatever dropped it (a reset the session did not see, a pooler between Switchyard
                // and PostgreSQL) dropped the others too.
                preparedReads.forgetAll()
                preparedReads.noteMissing()
                if preparedReads.isOff {
                    logger.warning("prepared reads keep disappearing on this session's server connection (a transaction-pooling PgBouncer in front of PostgreSQL?): its routed reads go as texts from now on; prepare_routed_reads: false sends them as texts everywhere")
                }
            }
            // The client's answer was dropped: the read is run again, whatever the session does after.
            guard case let .prepare(newName, deallocating)? = preparedReads.plan(for: prepared.id, canPrepare: true, evenIfOff: true) else {
                close(reason: "a prepared read could not be run again")
                return
            }
            var retry = [stillThere ? name : nil, deallocating].compactMap { $0 }.flatMap(deallocation)
            var query = [UInt8](repeating: 0, count: FrontendMessage.headerLength)
            query += prepared.prepareStatement(name: newName)
            query += PreparedReads.executeHead(newName)
            query += message[(FrontendMessage.headerLength + PreparedReads.executeHead(name).count)...]
            FrontendMessage.writeHeader(id: FrontendMessageID.query.rawValue, into: &query)
            retry += query
            readWatch = .prepare
            skipper.expectLeading(.completions(1))
            context.stats.preparedReadsPreparedAgain.add(1, ordering: .relaxed)
            logger.info("a prepared read is prepared again", metadata: ["sqlstate": "\(error.sqlState ?? "")", "message": "\(error.message ?? "")"])
            let sent = retry.withUnsafeBytes { raw in Result { () throws(SocketError) in try forward(raw, to: upstream, queue: &toServer) } }
            try sent.get()
        }
    }

    /// The held Query's latency label, in the slot its request took.
    private func labelQuery(_ label: LatencyLabel?) {
        if let slot = querySlot, slot < requestLabels.count {
            requestLabels[slot] = label
            noteForgotten(slot: slot)
        }
        querySlot = nil
    }

    /// Which cohort each canary flag put this transaction in, for SHOW COHORTS.
    private func noteCohorts() {
        if heldStartedIdle || !transactionCohortsRecorded {
            transactionCohortsRecorded = true
            pendingCohorts += router!.lastCohorts
        }
    }

    /// When the session's path may have moved since the last check (a flip, a cohort setting),
    /// the messages that re-prepare each named statement whose text for the current path differs
    /// from what the server holds. Each swap is its own Sync-terminated exchange, checked first:
    /// Describe fails on a statement the server does not have (then nothing is created), and the
    /// new text is prepared under a scratch name before the statement is replaced, so a text that
    /// does not prepare leaves the old statement in place. The answers are dropped by the skipper.
    private func reprepareStatements(cache: QueryInfoCache) -> [UInt8] {
        // Runs before every statement between transactions: the router (a large value) is only
        // copied when there is something to re-prepare.
        guard let generation = router?.generation, generation != preparedGeneration else { return [] }
        preparedGeneration = generation
        guard !prepared.isEmpty, let router else { return [] }
        let swaps = prepared.swaps { sql in
            switch router.decision(sql: sql, info: cache.info(for: sql), cache: cache, wire: .extended) {
            case let .rewritten(text, _), let .mirrored(text, _): return text
            case let .writeNotMirrored(_, migration, reason):
                let refuses = router.table.flags.first { $0.migration == migration }?.mirror?.refusesUnmirrored == true
                return refuses ? WriteMirror.refusal(migration: migration, reason: reason) : sql
            case .forward, .keptOnOldPath: return sql
            }
        }
        var out: [UInt8] = []
        let scratch = "switchyard_reprepare"
        for swap in swaps {
            setMirrored(swap.name, text: swap.text)
            out += FrontendMessage.describe(Describe(target: .statement, name: swap.name)).encoded()
            out += FrontendMessage.parse(Parse(statementName: scratch, query: swap.text, parameterTypes: swap.parameterTypes)).encoded()
            out += FrontendMessage.close(Close(target: .statement, name: swap.name)).encoded()
            out += FrontendMessage.parse(Parse(statementName: swap.name, query: swap.text, parameterTypes: swap.parameterTypes)).encoded()
            out += FrontendMessage.close(Close(target: .statement, name: scratch)).encoded()
            out += FrontendMessage.sync.encoded()
            skipper.expectAnswer()
            injected.append(.reprepare(swap))
        }
        if !swaps.isEmpty {
            logger.debug("re-preparing statements for the session's path", metadata: ["statements": "\(swaps.map(\.name))"])
        }
        return out
    }

    /// A mirrored autocommit write failed: send the client's statement alone (its answer is the one
    /// the client gets), unless the migration is strict.
    private func retryAlone(after error: ErrorFields) throws(SocketError) {
        guard let upstream, var retry = pendingRetry else { return }
        retry.error = error
        pendingRetry = retry
        fixer?.retrySent()
        // The state machine counts the retry as a request of its own, so the session is not idle
        // until it is answered.
        _ = state.clientMessage(ScannedMessage(id: FrontendMessageID.query.rawValue, bodyLength: retry.query.count - 5, body: nil),
                                now: loop.clock.monotonicNanoseconds())
        requestLabels.append(nil)
        let sent = retry.query.withUnsafeBytes { raw in Result { () throws(SocketError) in try forward(raw, to: upstream, queue: &toServer) } }
        try sent.get()
    }

    /// The oldest request in flight has ended: answered after `nanoseconds`, or ignored by the
    /// server (nil). Its latency label and what its statements forgot are settled.
    private func requestAnswered(nanoseconds: UInt64?, failed: Bool) {
        guard labelHead < requestLabels.count else { return }
        let answered = requestsAnswered
        requestsAnswered += 1
        while let first = forgottenByRequest.first, first.request <= answered {
            forgottenByRequest.removeFirst()
            if failed && first.request == answered { router?.restoreSQLPrepared(first.writes) }
        }
        if let nanoseconds, let label = requestLabels[labelHead] {
            context.routing.recordLatency(loop: loop.index, label: label, nanoseconds: nanoseconds, failed: failed)
        }
        labelHead += 1
        if labelHead == requestLabels.count {
            requestLabels.removeAllKeepingStorage()
            labelHead = 0
            querySlot = nil
        } else if labelHead >= 1024 {
            // A client that always keeps requests in flight: drop the answered ones.
            requestLabels.removeFirst(labelHead)
            querySlot = querySlot.map { $0 - labelHead }
            labelHead = 0
        }
    }

    /// Keeps what the router's statements forgot of the session's SQL-prepared writes since the
    /// last request, for the request whose label is at `slot` of `requestLabels`.
    private func noteForgotten(slot: Int) {
        guard router != nil else { return }
        let writes = router!.takeForgottenSQLPrepared()
        if !writes.isEmpty { forgottenByRequest.append((requestsAnswered + slot - labelHead, writes)) }
    }

    /// Whether statement `name`, prepared as `text`, is a mirrored write, and in which form: it
    /// answers with the marker row, with RETURNING rows behind it, or with a tag to rename.
    private func setMirrored(_ name: String, text: String) {
        let mirrored = WriteMirror.mayBeMirrored(text)
        if mirrored && WriteMirror.isMirrored(text) { mirroredStatements.insert(name) } else { mirroredStatements.remove(name) }
        renamedStatements[name] = mirrored ? WriteMirror.renamedVerb(text, tagComment: context.routing.updateTagComment) : nil
        if mirrored && WriteMirror.returnsRows(text) { mirroredReturning.insert(name) } else { mirroredReturning.remove(name) }
    }

    /// The end of one injected exchange: what its errors mean for the session's bookkeeping.
    private func injectedExchangeEnded(errors: [ErrorFields]) {
        guard !injected.isEmpty else { return }
        let exchange = injected.removeFirst()
        switch exchange {
        case .deallocate:
            for error in errors {
                logger.debug("a prepared read's DEALLOCATE failed", metadata: ["error": "\(error.message ?? "")"])
            }
        case .searchPath:
            for error in errors {
                logger.warning("a statement Switchyard sent for routing failed", metadata: ["error": "\(error.message ?? "")"])
            }
        case let .reprepare(swap):
            guard let error = errors.first else {
                prepared.finished(swap, outcome: .done)
                return
            }
            if error.sqlState == SQLState.invalidSQLStatementName {
                prepared.finished(swap, outcome: .statementMissing)
            } else {
                prepared.finished(swap, outcome: .failed)
                setMirrored(swap.name, text: swap.previous)
                logger.warning("a prepared statement could not be moved to the session's path; it keeps the previous one",
                               metadata: ["statement": "\(swap.name)", "error": "\(error.message ?? "")"])
            }
        }
    }

    private func rejectAndClose(protocolError error: ProtocolError) {
        let sqlState: String
        switch error {
        case .messageTooLarge: sqlState = SQLState.programLimitExceeded
        default: sqlState = SQLState.protocolViolation
        }
        logger.warning("closing session after a protocol error from the client", metadata: ["error": "\(error)"])
        sendFatalAndClose(ErrorFields(severity: "FATAL", sqlState: sqlState, message: "switchyard: \(error)"))
    }

    private func readServer() throws(SocketError) {
        guard let upstream else { return }
        let read = saslFilter == nil && !negotiation.watchingFirstAnswer
            ? try upstream.read(into: loop.scratch) : try readServerAuthenticating(upstream)
        switch read {
        case .wouldBlock: return
        case .endOfFile:
            if state.phase == .authenticating && !serverSentFatal {
                // Closed before the session began and without a word (a server shutting down): the
                // client gets an error it can act on rather than a bare close.
                let fields = ErrorFields(severity: "FATAL", sqlState: SQLState.connectionFailure,
                                         message: "the upstream server at \(settings.upstreamAddress) closed the connection during startup")
                toClient.append(BackendMessage.errorResponse(fields).encoded())
            }
            // Deliver what the server said last (often a FATAL error) before closing.
            _ = try? toClient.flush(to: client)
            close(reason: "server closed the connection")
            return
        case let .bytes(n):
            var chunk = UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n])
            context.stats.bytesFromServers.add(UInt64(n), ordering: .relaxed)
            info.bytesOut.add(UInt64(n), ordering: .relaxed)
            while skipper.isActive && !chunk.isEmpty {
                let consumed: Int
                do {
                    consumed = try skipper.consume(chunk, onError: { injectedErrors.append($0) }, onReady: {
                        let errors = injectedErrors
                        injectedErrors = []
                        injectedExchangeEnded(errors: errors)
                    })
                } catch {
                    close(reason: "malformed server message")
                    return
                }
                chunk = UnsafeRawBufferPointer(rebasing: chunk[consumed...])
                if let outcome = skipper.takeOutcome() { try readWatchEnded(outcome) }
                // A message read whole at the start of an answer that is the client's after all (a
                // notice, or an error that is not stale) goes first; the skipper looks at the rest.
                if let returned = skipper.takeReturned() {
                    let forwarded = returned.withUnsafeBytes { whole in Result { () throws(SocketError) in try forwardServerBytes(whole) } }
                    try forwarded.get()
                    if closed { return }
                    continue
                }
                if consumed == 0 { break }
            }
            if chunk.isEmpty { return }
            try forwardServerBytes(chunk)
        }
    }

    /// The server's bytes after the skipper: through the state machine (and the fixer, for
    /// mirrored writes) to the client.
    private func forwardServerBytes(_ chunk: UnsafeRawBufferPointer) throws(SocketError) {
        let now = loop.clock.monotonicNanoseconds()
        let transactionsBefore = state.transactionCount
        defer {
            if state.transactionCount > transactionsBefore {
                context.stats.transactions.add(state.transactionCount - transactionsBefore, ordering: .relaxed)
            }
        }
        // Untouched traffic comes out as the chunk itself and is forwarded without a copy.
        var output = SplicedOutput(of: chunk)
        var retryAfter: ErrorFields?
        do {
            // The scanner reads the stream while nothing on it is to change: always in sessions
            // without flags, and in the others while the fixer has nothing in flight (it only
            // counts headers then). At a message boundary the splicer takes over when the fixer
            // has work: answers to mirrored writes are restored on the way.
            var rest = chunk
            if serverSplicer != nil && !serverScanner.isAtMessageBoundary {
                // The end of a message the scanner began, which answers a request sent before the fixer had work.
                let done = try serverScanner.finishMessage(rest) { message in
                    fixer?.sawHeader(message.id)
                    handleServerEvent(state.serverMessage(message, now: now))
                }
                output.emit(UnsafeRawBufferPointer(rebasing: rest[..<done]))
                rest = UnsafeRawBufferPointer(rebasing: rest[done...])
            }
            if serverSplicer == nil || (fixer?.isIdle ?? true) && serverSplicer!.isAtMessageBoundary {
                let counting = fixer != nil
                try serverScanner.scan(rest) { message in
                    if counting { fixer?.sawHeader(message.id) }
                    handleServerEvent(state.serverMessage(message, now: now))
                }
                if !rest.isEmpty { output.emit(rest) }
            } else if !rest.isEmpty {
                // One pass over the server's stream: the messages the state machine reads are held
                // whole (small: ReadyForQuery, errors, parameters) and the fixer's while it watches.
                try serverSplicer!.process(rest, onMessage: { fixer?.sawHeader($0.id) }, onHeld: { id, raw in
                    let body = [UInt8](raw)
                    if Self.inspectedByState[Int(id)] {
                        handleServerEvent(state.serverMessage(ScannedMessage(id: id, bodyLength: body.count, body: body), now: now))
                    }
                    switch fixer?.process(id: id, body: body) ?? .pass {
                    case .pass: return nil
                    case .drop: return []
                    case let .replace(bytes): return bytes
                    case let .retry(error):
                        retryAfter = error
                        return []
                    }
                }, holding: { id in Self.inspectedByState[Int(id)] || (fixer?.holds(id) ?? false) }, emit: { output.emit($0) })
            }
        } catch {
            logger.error("malformed message from the server", metadata: ["error": "\(error)"])
            context.stats.protocolErrors.add(1, ordering: .relaxed)
            close(reason: "malformed server message")
            return
        }
        if closed { return }
        try output.send(to: client, queue: &toClient)
        if let error = retryAfter { try retryAlone(after: error) }
        if let succeeded = fixer?.takeRetryOutcome(), let retry = pendingRetry {
            pendingRetry = nil
            if succeeded {
                let reason = "the new table rejected the mirrored write: \(retry.error?.message ?? "error") (\(retry.error?.sqlState ?? "-----"))"
                for migration in retry.migrations {
                    context.routing.recordWriteDivergence(migration: migration, fingerprint: retry.fingerprint, reason: reason, query: retry.sql)
                }
                logger.warning("a mirrored write failed on the new table; the client's write was applied alone",
                               metadata: ["migrations": "\(retry.migrations)", "error": "\(retry.error?.message ?? "")"])
            }
        }
        if closeWhenIdleRequested && stateIsIdle && toClient.isEmpty {
            closeForShutdown()
        }
    }

    private func handleServerEvent(_ event: SessionStateMachine.ServerEvent) {
        switch event {
        case .none:
            break
        case let .requestCompleted(nanoseconds, failed):
            context.stats.recordRequest(nanoseconds: nanoseconds, loop: loop.index)
            requestAnswered(nanoseconds: nanoseconds, failed: failed)
            if state.transactionStatus == .idle { router?.transactionEnded(failed: state.lastTransactionFailed) }
            updateStateGauge()
        case .requestIgnored:
            requestAnswered(nanoseconds: nil, failed: false)
        case .sessionEstablished:
            if let key = state.backendKey {
                context.registry.setBackendKey(key, for: info.id)
                info.details.withLock { $0.backendKey = key }
            }
            updateStateGauge()
            logger.debug("session established")
        case let .fatalError(fields):
            serverSentFatal = true
            logger.info("server reported a fatal error", metadata: ["sqlstate": "\(fields.sqlState ?? "")", "message": "\(fields.message ?? "")"])
        }
    }

    /// What waits for the end of the event's I/O: the routed statements' counts, and freeing what
    /// routing them made.
    private func afterIO() {
        retiredInfo = nil
        retiredMessage = nil
        guard !pendingCohorts.isEmpty || !pendingRewrites.isEmpty else { return }
        for c in pendingCohorts {
            context.routing.recordCohort(loop: loop.index, flag: c.flag, key: c.key, bucket: c.bucket, path: c.path)
        }
        for flags in pendingRewrites { context.routing.recordRewrite(loop: loop.index, flags: flags) }
        pendingCohorts.removeAllKeepingStorage()
        pendingRewrites.removeAllKeepingStorage()
    }

    private func updateStateGauge() {
        let value: Int
        if outstandingRequests > 0 || !stateIsIdle && state.transactionStatus == .idle {
            value = 2
        } else {
            switch state.transactionStatus {
            case .idle: value = 1
            case .inTransaction: value = 3
            case .failed: value = 4
            }
        }
        info.state.store(value, ordering: .relaxed)
    }

    // MARK: Startup

    private func handleStartupBytes(_ chunk: UnsafeRawBufferPointer) throws(SocketError) {
        var result: StartupPacketReader.Result
        do {
            result = try startupReader.feed(chunk)
        } catch {
            context.stats.protocolErrors.add(1, ordering: .relaxed)
            sendFatalAndClose(state.startupFailed(error))
            return
        }
        while case let .packet(bytes, leftover) = result {
            let packet: StartupPacket
            do {
                packet = try StartupPacket.decode(bytes)
            } catch {
                context.stats.protocolErrors.add(1, ordering: .relaxed)
                sendFatalAndClose(state.startupFailed(error))
                return
            }
            switch state.startupPacketReceived(packet) {
            case .acceptEncryption:
                acceptEncryption(leftover: leftover)
                return
            case .declineEncryption:
                try client.writeAll([UInt8(ascii: "N")])
                guard !leftover.isEmpty else { return }
                let next = leftover.withUnsafeBytes { raw in
                    Result { () throws(ProtocolError) -> StartupPacketReader.Result in try startupReader.feed(raw) }
                }
                switch next {
                case let .success(r): result = r
                case let .failure(error):
                    sendFatalAndClose(state.startupFailed(error))
                    return
                }
            case let .connectUpstream(message):
                info.details.withLock {
                    $0.user = message.user ?? ""
                    $0.database = message.database ?? ""
                    $0.applicationName = message.parameter("application_name") ?? ""
                    $0.upstream = settings.upstreamAddress.description
                    $0.upstreamAddress = settings.upstreamAddress
                }
                toServer.append(bytes)
                if negotiation.mode == .allow { startupBytes = bytes }
                var startup: [String: String] = [:]
                for (k, v) in message.parameters { startup[k] = v }
                // PostgreSQL's default database is the user's name.
                let user = startup["user"] ?? ""
                let database = startup["database"] ?? user
                // The migrations are the upstream database's (its catalog is the one read and checked):
                // a session in another database of the cluster passes through unrouted.
                if splicer != nil, settings.config.upstream.database.map({ $0 == database }) ?? true {
                    router = SessionRouter(startupParameters: startup, clientAddress: info.clientAddress,
                                           roleSettings: context.routing.roleSettings(role: user, database: database),
                                           userSchema: context.routing.userSchema(role: user))
                    router!.mirrorMarker = context.routing.mirrorMarker
                    fixer = Self.makeFixer(marker: context.routing.mirrorMarker)
                    serverSplicer = MessageSplicer(
                        maxMessageSize: Int(Int32.max),
                        hold: MirrorResponseFixer.watchedMessages.union(MirrorResponseFixer.retryMessages).union(SessionStateMachine.inspectedServerMessages))
                } else {
                    // Nothing to route: messages pass as they come, none held (no client bytes
                    // have gone through the splicer yet; the leftover below is the first).
                    splicer = nil
                }
                if !leftover.isEmpty {
                    leftover.withUnsafeBytes { forwardClientBytesBeforeConnect($0) }
                    if closed || closeAfterClientFlush { return }
                }
                startConnect()
                return
            case let .openAdminConsole(message):
                handOffToAdminConsole(message, leftover: leftover)
                return
            case let .forwardCancel(key):
                // Read nothing more; close once the server has taken the request.
                closeAfterClientFlush = true
                loop.setInterest(fd: client.fd, [])
                clientInterest = []
                let loop = self.loop
                CancelForwarder.forward(key: key, context: context, logger: logger) {
                    loop.execute { self.close(reason: "cancel request forwarded") }
                }
                return
            case let .reject(fields):
                sendFatalAndClose(fields)
                return
            }
        }
    }

    private func forwardClientBytesBeforeConnect(_ raw: UnsafeRawBufferPointer) {
        _ = scanClientBytes(raw) { toServer.append($0) }
    }

    private func startConnect() {
        if context.shuttingDown.load(ordering: .relaxed) {
            sendFatalAndClose(ErrorFields(severity: "FATAL", sqlState: SQLState.cannotConnectNow, message: "switchyard is shutting down"))
            return
        }
        do {
            let (socket, connected) = try Socket.connect(to: settings.upstreamAddress)
            upstream = Link(socket)
            connecting = !connected
            connectStartedAt = loop.clock.monotonicNanoseconds()
            try loop.register(fd: socket.fd, interest: .writable, handler: self)
            context.stats.serversActive.add(1, ordering: .relaxed)
            if connected { finishConnect() }
        } catch {
            failConnect(reason: error.reason)
        }
    }

    private func finishConnect() {
        guard let upstream else { return }
        if let error = upstream.connectResult() {
            failConnect(reason: error.reason)
            return
        }
        if settings.upstreamAddress.family != AF_UNIX {
            upstream.setNoDelay()
            let keepalive = settings.config.tcpKeepalive
            if keepalive.enabled {
                upstream.setKeepalive(idleSeconds: Int(keepalive.idle.components.seconds), intervalSeconds: Int(keepalive.interval.components.seconds), count: keepalive.count)
            }
        }
        if negotiation.mode == .disable {
            upstreamReady()
        } else {
            negotiate(negotiation.connected())
        }
    }

    /// The upstream link is ready for the startup message and what follows it.
    private func upstreamReady() {
        connecting = false
        upstreamStep = nil
        state.upstreamConnected()
        if negotiation.isTLS { saslFilter = SASLOfferFilter() }
        do {
            try flushToServer()
        } catch {
            close(reason: "\(error)")
            return
        }
        updateInterests()
    }

    private func failConnect(reason: String) {
        context.stats.serverConnectFailures.add(1, ordering: .relaxed)
        logger.warning("could not connect to the upstream", metadata: ["upstream": "\(settings.upstreamAddress)", "error": "\(reason)"])
        sendFatalAndClose(state.upstreamConnectFailed(address: settings.upstreamAddress.description, reason: reason))
    }

    private func handOffToAdminConsole(_ message: StartupMessage, leftover: [UInt8]) {
        loop.deregister(fd: client.fd)
        loop.removeTicker(self)
        context.stats.clientsActive.subtract(1, ordering: .relaxed)
        context.registry.remove(info.id, key: nil)
        closed = true
        let console = AdminConsoleSession(context: context, client: client, loop: loop, startup: message, info: info)
        console.start(leftover: leftover)
    }

    // MARK: TLS

    /// SSLRequest answered 'S': the client's TLS handshake comes next.
    private func acceptEncryption(leftover: [UInt8]) {
        guard leftover.isEmpty else {
            context.stats.protocolErrors.add(1, ordering: .relaxed)
            sendFatalAndClose(state.plaintextAfterSSLRequest())
            return
        }
        guard let tls = settings.tls.client else {
            close(reason: "TLS accepted without a TLS context")
            return
        }
        do {
            try client.writeAll([UInt8(ascii: "S")])
            client.startTLS(try tls.accepting(client.socket))
        } catch {
            close(reason: "could not start TLS: \(error)")
            return
        }
        clientHandshake = .readable
        do { try continueClientHandshake() } catch { close(reason: "\(error)") }
    }

    private func continueClientHandshake() throws(SocketError) {
        guard let stream = client.tls else { return }
        let progress: TLSStream.HandshakeProgress
        do {
            progress = try stream.handshake()
        } catch {
            // Nothing can be said to the client in the clear once TLS has begun, as PostgreSQL does.
            logger.info("client TLS handshake failed", metadata: ["error": "\(error.reason)"])
            close(reason: "TLS handshake failed: \(error.reason)")
            return
        }
        switch progress {
        case .wantRead: clientHandshake = .readable
        case .wantWrite: clientHandshake = .writable
        case .done:
            clientHandshake = nil
            state.tlsEstablished(ClientTLSIdentity(hasCertificate: stream.hasPeerCertificate, commonName: stream.peerCommonName))
            logger.debug("client TLS established", metadata: ["protocol": "\(stream.protocolVersion)"])
        }
    }

    /// Carries out a step of the upstream's sslmode negotiation.
    private func negotiate(_ action: UpstreamNegotiation.Action) {
        guard let upstream else { return }
        switch action {
        case .sendStartup:
            upstreamReady()
        case .sendSSLRequest:
            do {
                // Eight bytes on a connection that has sent nothing yet: the socket takes them at once.
                try upstream.writeAll(StartupPacket.sslRequest.encode(), timeoutMs: 100)
            } catch {
                failConnect(reason: "sending the SSL request: \(error.reason)")
                return
            }
            upstreamStep = .sslResponse
        case .startTLS:
            guard let tls = settings.tls.server else {
                failConnect(reason: "TLS is not configured (server_tls)")
                return
            }
            do {
                self.upstream?.startTLS(try tls.connecting(upstream.socket, host: settings.config.upstream.host))
            } catch {
                failConnect(reason: "\(error)")
                return
            }
            upstreamStep = .handshake(.writable)
            continueUpstreamNegotiation()
        case .reconnect:
            // allow: the server refused the plaintext attempt before authenticating; once more with TLS.
            loop.deregister(fd: upstream.fd)
            upstream.close()
            self.upstream = nil
            context.stats.serversActive.subtract(1, ordering: .relaxed)
            toServer = OutputBuffer()
            toServer.append(startupBytes)
            upstreamStep = nil
            logger.debug("upstream refused a plaintext connection; connecting again with TLS (server_tls.sslmode allow)")
            startConnect()
        case let .fail(reason):
            failConnect(reason: reason)
        }
    }

    /// Readiness on the upstream while it answers the SSLRequest or runs the handshake.
    private func continueUpstreamNegotiation() {
        guard let upstream, let step = upstreamStep else { return }
        switch step {
        case .sslResponse:
            // One byte exactly: what follows an 'S' belongs to the TLS handshake.
            let result: ReadResult
            do {
                result = try upstream.socket.read(into: UnsafeMutableRawBufferPointer(rebasing: loop.scratch[0..<1]))
            } catch {
                failConnect(reason: "reading the answer to the SSL request: \(error.reason)")
                return
            }
            switch result {
            case .wouldBlock: return
            case .endOfFile: failConnect(reason: "the server closed the connection after the SSL request")
            case .bytes: negotiate(negotiation.sslResponse(loop.scratch.load(as: UInt8.self)))
            }
        case .handshake:
            guard let stream = upstream.tls else { return }
            do {
                switch try stream.handshake() {
                case .wantRead: upstreamStep = .handshake(.readable)
                case .wantWrite: upstreamStep = .handshake(.writable)
                case .done:
                    logger.debug("upstream TLS established", metadata: ["protocol": "\(stream.protocolVersion)"])
                    negotiate(negotiation.tlsEstablished())
                }
            } catch {
                failConnect(reason: "TLS with the upstream failed: \(error.reason)")
            }
        }
    }

    /// A server read while its first answer still matters: whether allow must retry with TLS, and the
    /// SASL offer without channel binding. The bytes to process are left at the start of the scratch
    /// buffer; `.wouldBlock` when there are none yet.
    private func readServerAuthenticating(_ upstream: Link) throws(SocketError) -> ReadResult {
        // Room is left for a held incomplete first message, so the filtered bytes fit back in the buffer.
        let room = EventLoop.scratchSize - SASLOfferFilter.maximumFirstMessage
        let result = try upstream.read(into: UnsafeMutableRawBufferPointer(rebasing: loop.scratch[0..<room]))
        guard case let .bytes(n) = result else { return result }
        let chunk = UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n])
        if let action = negotiation.firstAnswer(isError: chunk[0] == BackendMessageID.errorResponse.rawValue) {
            negotiate(action)
            return .wouldBlock
        }
        guard saslFilter != nil else { return result }
        let passed: [UInt8]
        do {
            passed = try saslFilter!.process(chunk)
        } catch {
            throw SocketError("read", errno: EPROTO, detail: "malformed authentication message from the server: \(error)")
        }
        if !saslFilter!.isActive {
            checkSASLAnswer = saslFilter!.removedChannelBinding
            saslFilter = nil
        }
        if passed.isEmpty { return .wouldBlock }
        passed.withUnsafeBytes { loop.scratch.copyMemory(from: $0) }
        return .bytes(passed.count)
    }

    /// The refusal for a client's SASL answer that asks for channel binding the upstream would reject.
    private func channelBindingRefusal(_ chunk: UnsafeRawBufferPointer) -> ErrorFields? {
        checkSASLAnswer = false
        guard let refusal = SASLOfferFilter.refusal(forClientBytes: chunk) else { return nil }
        logger.info("client asked for SCRAM channel binding through the proxy; refused with a hint")
        return refusal
    }

    /// Reads what OpenSSL already holds decrypted: the socket will not signal those bytes again.
    /// Bounded; whatever is left after that is picked up on the loop's next turn.
    private func drainDecryptedBytes() throws(SocketError) {
        for _ in 0..<16 {
            if closed { return }
            if clientHandshake == nil && client.hasBufferedBytes && clientInterest.contains(.readable) {
                try readClient()
            } else if !connecting, let upstream, upstream.hasBufferedBytes, serverInterest.contains(.readable) {
                try readServer()
            } else {
                return
            }
            if !closed { updateInterests() }
        }
        if !closed && (client.hasBufferedBytes || upstream?.hasBufferedBytes == true) {
            loop.execute { [self] in
                guard !closed else { return }
                defer { afterIO() }
                do { try drainDecryptedBytes() } catch { close(reason: "\(error)") }
                if !closed { updateInterests() }
            }
        }
    }

    // MARK: Flushing and interest

    private func flushToClient() throws(SocketError) {
        if try toClient.flush(to: client) {
            if closeAfterClientFlush {
                close(reason: "error sent")
            } else if closeWhenIdleRequested && stateIsIdle {
                closeForShutdown()
            }
        }
    }

    private func flushToServer() throws(SocketError) {
        guard let upstream, !connecting else { return }
        _ = try toServer.flush(to: upstream)
    }

    /// Reading from one side stops while the other side's queue is non-empty.
    private func updateInterests() {
        var wantClient: Interest = []
        if !toClient.isEmpty { wantClient.insert(.writable) }
        let upstreamReady = upstream != nil && !connecting
        if !closeAfterClientFlush && (state.phase == .awaitingStartup || (upstreamReady && toServer.isEmpty)) {
            wantClient.insert(.readable)
        }
        if let clientHandshake {
            wantClient = clientHandshake
        } else if client.isTLS {
            wantClient.formUnion(client.extraInterest)
        }
        if wantClient != clientInterest {
            clientInterest = wantClient
            loop.setInterest(fd: client.fd, wantClient)
        }
        if let upstream {
            var wantServer: Interest = []
            if connecting || !toServer.isEmpty { wantServer.insert(.writable) }
            if !connecting && toClient.isEmpty { wantServer.insert(.readable) }
            switch upstreamStep {
            case .sslResponse: wantServer = .readable
            case let .handshake(interest): wantServer = interest
            case nil: if upstream.isTLS { wantServer.formUnion(upstream.extraInterest) }
            }
            if wantServer != serverInterest {
                serverInterest = wantServer
                loop.setInterest(fd: upstream.fd, wantServer)
            }
        }
    }

    // MARK: Timeouts and shutdown

    func tick(now: UInt64, loop: EventLoop) {
        guard !closed else { return }
        let config = settings.config
        if state.phase == .awaitingStartup, now &- createdAt > UInt64(config.startupTimeout.nanoseconds) {
            close(reason: "no startup message within startup_timeout")
        } else if connecting, now &- connectStartedAt > UInt64(config.connectTimeout.nanoseconds) {
            failConnect(reason: "timed out after \(config.connectTimeout) (connect_timeout)")
        } else if state.phase == .ready, toClient.isEmpty, outstandingRequests == 0 {
            // Waiting on the client alone: the idle timeouts apply.
            let idle = now &- lastClientRead
            let inTransaction = state.transactionStatus != .idle
            let limit = inTransaction ? config.idleTransactionTimeout : config.clientIdleTimeout
            guard limit > .zero, idle > UInt64(limit.nanoseconds) else { return }
            let (key, code) = inTransaction
                ? ("idle_transaction_timeout", SQLState.idleInTransactionSessionTimeout) : ("client_idle_timeout", SQLState.idleSessionTimeout)
            let what = inTransaction ? "idle in a transaction" : "idle"
            sendFatalAndClose(ErrorFields(severity: "FATAL", sqlState: code,
                                          message: "terminating connection: \(what) for longer than \(key) (\(ConfigValues.describe(duration: limit)))"))
            if !closed { close(reason: "\(what) for longer than \(key)") }
        }
    }

    func closeWhenIdle() {
        guard !closed else { return }
        closeWhenIdleRequested = true
        if stateIsIdle && toClient.isEmpty && !connecting { closeForShutdown() }
    }

    func forceClose(reason: String) {
        guard !closed else { return }
        sendFatalAndClose(ErrorFields(severity: "FATAL", sqlState: SQLState.adminShutdown, message: "terminating connection: \(reason)"))
        if !closed { close(reason: reason) }
    }

    private func closeForShutdown() {
        if let upstream, state.phase == .ready {
            var w = ByteWriter()
            FrontendMessage.terminate.encode(into: &w)
            _ = try? upstream.write(w.bytes.withUnsafeBytes { $0 })
        }
        let fields = ErrorFields(severity: "FATAL", sqlState: SQLState.adminShutdown, message: "terminating connection because switchyard is shutting down")
        _ = try? client.writeAll(BackendMessage.errorResponse(fields).encoded(), timeoutMs: 100)
        close(reason: "shutdown")
    }

    /// Sends a FATAL ErrorResponse to the client, then closes once it is written.
    private func sendFatalAndClose(_ fields: ErrorFields) {
        toClient.append(BackendMessage.errorResponse(fields).encoded())
        closeAfterClientFlush = true
        if let upstream { loop.deregister(fd: upstream.fd); upstream.close(); self.upstream = nil; context.stats.serversActive.subtract(1, ordering: .relaxed) }
        do {
            if try toClient.flush(to: client) { close(reason: fields.message ?? "error"); return }
        } catch {
            close(reason: "\(error)")
            return
        }
        updateInterests()
    }

    private func close(reason: String) {
        guard !closed else { return }
        closed = true
        state.closed()
        loop.removeTicker(self)
        loop.deregister(fd: client.fd)
        client.close()
        if let upstream {
            loop.deregister(fd: upstream.fd)
            upstream.close()
            context.stats.serversActive.subtract(1, ordering: .relaxed)
        }
        upstream = nil
        context.stats.clientsActive.subtract(1, ordering: .relaxed)
        context.registry.remove(info.id, key: state.backendKey)
        logger.debug("session closed", metadata: ["reason": "\(reason)"])
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
