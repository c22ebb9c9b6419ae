// The admin console: Switchyard plays the server for clients that ask for the `switchyard` database.
import COpenSSL
import Foundation
import Logging
import SwitchyardIO
import SwitchyardConfig
import SwitchyardProtocol

/// Speaks the server side of the protocol for `psql -p PORT switchyard`, as
/// PgBouncer's `pgbouncer` database does. Simple query only. Access: the user
/// must be listed in `admin_console.users`; with `admin_console.password` set,
/// the client must also answer an MD5 password challenge.
final class AdminConsoleSession: EventHandler, ShutdownTarget, @unchecked Sendable {
    let context: ServerContext
    let client: Link
    unowned let loop: EventLoop
    let startup: StartupMessage
    let info: SessionInfo
    private var scanner: MessageScanner
    private var output = OutputBuffer()
    private var awaitingPassword: [UInt8]?   // the salt, while waiting for the answer
    private var authenticated = false
    private var closed = false
    private var closeAfterFlush = false
    private var skipUntilSync = false
    private var queue: [ScannedMessage] = []
    /// A command is running in the background; its answer comes before anything queued.
    private var busy = false

    static let inspected: Set<UInt8> = [
        FrontendMessageID.query.rawValue, FrontendMessageID.password.rawValue,
    ]

    init(context: ServerContext, client: Link, loop: EventLoop, startup: StartupMessage, info: SessionInfo) {
        self.context = context
        self.client = client
        self.loop = loop
        self.startup = startup
        self.info = info
        scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: Self.inspected)
    }

    func start(leftover: [UInt8]) {
        info.details.withLock {
            $0.user = startup.user ?? ""
            $0.database = startup.database ?? ""
            $0.applicationName = startup.parameter("application_name") ?? ""
            $0.isAdminConsole = true
        }
        do {
            try loop.register(fd: client.fd, interest: .readable, handler: self)
        } catch {
            client.close()
            return
        }
        context.registry.add(info, loop: loop, target: self)
        let settings = context.settings.config.adminConsole
        let user = startup.user ?? ""
        guard settings.users.contains(user) else {
            context.logger.warning("admin console access refused", metadata: ["user": "\(user)", "client": "\(info.clientAddress)"])
            fatal(SQLState.invalidAuthorizationSpecification,
                  "user \"\(user)\" is not allowed to use the Switchyard admin console",
                  hint: "List the user under admin_console.users in the Switchyard config.")
            return
        }
        if settings.password == nil && !Self.isLocal(info.clientAddress) {
            context.logger.warning("admin console access refused: no password and a remote client", metadata: ["user": "\(user)", "client": "\(info.clientAddress)"])
            fatal(SQLState.invalidAuthorizationSpecification,
                  "the Switchyard admin console takes connections from other hosts only with a password",
                  hint: "Set admin_console.password in the Switchyard config, or connect from this host.")
            return
        }
        if settings.password != nil {
            var salt = [UInt8](repeating: 0, count: 4)
            _ = RAND_bytes(&salt, 4)
            awaitingPassword = salt
            send(.authentication(.md5Password(salt: salt)))
        } else {
            completeLogin()
        }
        if !leftover.isEmpty { leftover.withUnsafeBytes { consume($0) } }
        flush()
    }

    /// Whether a client address ("127.0.0.1:5432", "::1:5432", "unix") is this machine.
    static func isLocal(_ address: String) -> Bool {
        if address == "unix" { return true }
        guard let colon = address.lastIndex(of: ":") else { return false }
        return HostPort.isLoopback(String(address[..<colon]))
    }

    private func completeLogin() {
        authenticated = true
        info.state.store(1, ordering: .relaxed)
        send(.authentication(.ok))
        for (name, value) in [
            ("server_version", "15.0 (Switchyard \(SwitchyardVersion.string))"),
            ("server_encoding", "UTF8"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
            ("application_name", startup.parameter("application_name") ?? ""),
        ] {
            send(.parameterStatus(name: name, value: value))
        }
        var key = [Int32](repeating: 0, count: 2)
        _ = key.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }
        send(.backendKeyData(BackendKey(processID: key[0] & 0x7fff_ffff, secretKey: key[1])))
        send(.readyForQuery(.idle))
    }

    func handle(fd: Int32, readiness: Readiness, loop: EventLoop) {
        guard !closed else { return }
        if readiness.isWritable { flush() }
        guard !closed, readiness.isReadable || readiness.isErrorOrHangup else { return }
        do {
            // Over TLS, bytes OpenSSL already decrypted do not wake the loop again: read them now (bounded).
            for _ in 0..<16 {
                switch try client.read(into: loop.scratch) {
                case .wouldBlock: break
                case .endOfFile: close(); return
                case let .bytes(n): consume(UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n]))
                }
                if closed || !client.hasBufferedBytes { break }
            }
        } catch {
            close()
            return
        }
        flush()
    }

    private func consume(_ chunk: UnsafeRawBufferPointer) {
        var messages: [ScannedMessage] = []
        do {
            try scanner.scan(chunk) { messages.append($0) }
        } catch {
            fatal(SQLState.protocolViolation, "switchyard admin console: \(error)")
            return
        }
        queue.append(contentsOf: messages)
        drain()
    }

    /// Handles queued messages until one starts background work.
    private func drain() {
        while !busy, !closed, !closeAfterFlush, !queue.isEmpty {
            handleMessage(queue.removeFirst())
        }
    }

    private func handleMessage(_ m: ScannedMessage) {
        if let salt = awaitingPassword {
            guard m.id == FrontendMessageID.password.rawValue, let body = m.body else {
                fatal(SQLState.protocolViolation, "expected a password message")
                return
            }
            let answer = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
            let expected = Self.md5Answer(password: context.settings.config.adminConsole.password ?? "", user: startup.user ?? "", salt: salt)
            guard answer == expected else {
                fatal(SQLState.invalidPassword, "password authentication failed for user \"\(startup.user ?? "")\"")
                return
            }
            awaitingPassword = nil
            completeLogin()
            return
        }
        switch m.id {
        case FrontendMessageID.query.rawValue:
            let text = m.body.map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } ?? ""
            runQuery(text)
        case FrontendMessageID.terminate.rawValue:
            close()
        case FrontendMessageID.sync.rawValue:
            if skipUntilSync {
                skipUntilSync = false
                send(.readyForQuery(.idle))
            }
        case FrontendMessageID.flush.rawValue:
            break
        default:
            if !skipUntilSync {
                skipUntilSync = true
                send(.errorResponse(ErrorFields(severity: "ERROR", sqlState: SQLState.featureNotSupported,
                                                message: "the Switchyard admin console supports the simple query protocol only")))
            }
        }
    }

    private func runQuery(_ text: String) {
        info.statements.add(1, ordering: .relaxed)
        do {
            let command = try AdminCommand.parse(text)
            switch command {
            case .empty:
                send(.emptyQueryResponse)
            case let .setFlag(name, stageText, percentText):
                let stage: FlagStage
                let percent: Int?
                do {
                    stage = try FlagStage.parse(stageText)
                    percent = try percentText.map { text throws(ConfigError) in try ConfigValues.percentBasisPoints(text, key: "percent") }
                } catch {
                    send(.errorResponse(ErrorFields(severity: "ERROR", sqlState: "22023", message: error.message)))
                    break
                }
                setFlagInBackground(name: name, stage: stage, percent: percent)
                return
            case .reload:
                let outcome = context.reload()
                switch outcome {
                case let .success(message):
                    send(.noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: message)))
                    send(.commandComplete(tag: "RELOAD"))
                case let .failure(error):
                    send(.errorResponse(ErrorFields(severity: "ERROR", sqlState: "F0000", message: error.message)))
                }
            default:
                sendResult(result(for: command))
            }
        } catch {
            send(.errorResponse(ErrorFields(severity: "ERROR", sqlState: SQLState.syntaxError, message: error.description)))
        }
        send(.readyForQuery(.idle))
    }

    /// Writing a flip to the control database blocks on the network, so it runs on a
    /// thread of its own; the console reads nothing more until the answer is sent.
    private func setFlagInBackground(name: String, stage: FlagStage, percent: Int?) {
        busy = true
        let context = self.context
        let by = "\(startup.user ?? "")@\(info.clientAddress) (admin console)"
        let thread = Thread {
            let outcome = Result { () throws(ControlError) -> String in
                try context.changeFlag(name, stage: stage, percentBasisPoints: percent, by: by, why: "SET FLAG from the admin console")
            }
            self.loop.execute { self.finishSetFlag(outcome) }
        }
        thread.start()
    }

    private func finishSetFlag(_ outcome: Result<String, ControlError>) {
        guard !closed else { return }
        switch outcome {
        case let .success(message):
            send(.noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: message)))
            send(.commandComplete(tag: "SET FLAG"))
        case let .failure(error):
            send(.errorResponse(ErrorFields(severity: "ERROR", sqlState: error.sqlState ?? "42704", message: error.message)))
        }
        send(.readyForQuery(.idle))
        busy = false
        drain()
        flush()
    }

    private func result(for command: AdminCommand) -> AdminResult {
        switch command {
        case .showClients: return AdminReports.clients(context.registry.all())
        case .showServers: return AdminReports.servers(context.registry.all())
        case .showStats:
            let latency = context.stats.latencySummary()
            return AdminReports.stats(context.stats.snapshot(), p50Micros: latency.p50Micros, p99Micros: latency.p99Micros)
        case .showConfig: return AdminReports.config(context.settings.config)
        case .showVersion: return AdminReports.version()
        case .showHelp: return AdminReports.help()
        case .showFlags:
            let control: String
            if let sync = context.control.withLock({ $0 }) {
                control = sync.healthy.load(ordering: .relaxed) ? "shared (control schema)"
                    : "last known state; control schema unreachable: \(sync.lastError.withLock { $0 } ?? "connecting")"
            } else {
                control = "this instance only"
            }
            return AdminReports.flags(context.routing.current, routed: context.routing.routedReads, control: control,
                                      lastChanges: context.routing.lastChanges)
        case .showRouting: return AdminReports.routing(context.routing.fallbackList)
        case .showCohorts: return AdminReports.cohorts(context.routing.cohortList, table: context.routing.current)
        case .showDivergences:
            return AdminReports.divergences(context.routing.divergenceList, reads: context.shadow.withLock { $0 }?.reader.divergences ?? [])
        case .showLatency: return AdminReports.latency(context.routing.latencySeries)
        case .reload, .empty, .setFlag: return AdminResult(columns: [], rows: [])
        }
    }

    private func sendResult(_ r: AdminResult) {
        send(.rowDescription(RowDescription(columns: r.columns.map { ColumnDescription(name: $0, typeOID: 25) })))
        for row in r.rows {
            send(.dataRow(DataRow(values: row.map { $0.map { Array($0.utf8) } })))
        }
        send(.commandComplete(tag: r.tag == "SHOW" ? "SHOW" : "\(r.tag) \(r.rows.count)"))
    }

    /// md5 password answer: "md5" + md5(md5(password + user) + salt), as PostgreSQL computes it.
    static func md5Answer(password: String, user: String, salt: [UInt8]) -> String {
        let inner = md5Hex(Array(password.utf8) + Array(user.utf8))
        return "md5" + md5Hex(Array(inner.utf8) + salt)
    }

    static func md5Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        bytes.withUnsafeBytes { raw in
            _ = EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_md5(), nil)
        }
        return digest.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    private func send(_ message: BackendMessage) {
        output.append(message.encoded())
    }

    private func fatal(_ sqlState: String, _ message: String, hint: String? = nil) {
        send(.errorResponse(ErrorFields(severity: "FATAL", sqlState: sqlState, message: message, hint: hint)))
        closeAfterFlush = true
        flush()
    }

    private func flush() {
        guard !closed else { return }
        do {
            let done = try output.flush(to: client)
            if done && closeAfterFlush { close(); return }
            loop.setInterest(fd: client.fd, done ? (closeAfterFlush || busy ? [] : .readable) : .writable)
        } catch {
            close()
        }
    }

    func closeWhenIdle() { forceClose(reason: "shutdown") }

    func forceClose(reason: String) {
        guard !closed else { return }
        send(.errorResponse(ErrorFields(severity: "FATAL", sqlState: SQLState.adminShutdown, message: "terminating connection because switchyard is shutting down")))
        _ = try? output.flush(to: client)
        close()
    }

    private func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(fd: client.fd)
        client.close()
        context.registry.remove(info.id, key: nil)
    }
}
