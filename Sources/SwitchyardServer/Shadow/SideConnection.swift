// One side connection of the shadow-read pool: a libpq connection whose every wait is bounded.
import CLibPQ
import Foundation
import SwitchyardConfig
import SwitchyardShadow

/// What one statement on a side connection gave.
enum SideAnswer {
    case result(QueryResult)
    /// The server refused or failed the statement; the connection stays usable.
    case failed(PathError)
    /// More rows or bytes than a comparison may hold. The rest of the answer was read and dropped, so the
    /// connection stays usable.
    case tooLarge
    /// The connection cannot be used any more: it broke, the server did not answer in time, or the reader
    /// is stopping in the middle of the statement.
    case lost(String)
    /// Not run: an earlier statement of the same pipeline failed, and the server skipped the rest.
    case aborted
}

/// One statement of a pipeline.
struct SideStatement {
    var sql: String
    var parameters: [ShadowParameter] = []
    /// Send a Flush after it: the server then writes its answer out at once instead of holding it until
    /// the Sync, so the arrival of the next answer marks how long the next statement ran.
    var flush = false
}

/// A pipelined statement's answer and when its last bytes were read.
struct TimedAnswer {
    var answer: SideAnswer
    var arrival: ContinuousClock.Instant
}

/// A libpq connection to the upstream, connected as ``ControlConnection`` connects, used by one
/// thread of the shadow-read pool. Statements are sent with the extended protocol and read in
/// single-row mode while polling the socket in short slices, so a statement is abandoned when the
/// server stays silent past its deadline or when the pool stops, and a huge answer is never held.
final class SideConnection {
    struct Limits {
        /// How long one statement may take before the connection is given up: the server's
        /// statement_timeout plus a grace for the error to arrive.
        var answerTimeout: Duration
        var maxRows: Int
        var maxBytes: Int
    }

    private let connection: ControlConnection
    private var conn: OpaquePointer { connection.conn }
    let limits: Limits
    /// When the last read from the socket returned: the arrival time of every answer it completed.
    private var lastInput = ContinuousClock.now

    /// Connects and sets the session's statement_timeout, so a slow shadow query ends on the server too.
    init(_ uri: UpstreamURI, statementTimeout: Duration, limits: Limits) throws(ControlError) {
        connection = try ControlConnection(uri, applicationName: "switchyard-shadow", purpose: "the upstream database")
        self.limits = limits
        let ms = max(1, statementTimeout / .milliseconds(1))
        // A transaction left open by a stuck job would hold its snapshot back from vacuum; the server ends it.
        // Every transaction is REPEATABLE READ and read-only: a pipeline's statements, up to its Sync,
        // are one implicit transaction reading one snapshot, with no BEGIN or COMMIT to run.
        try connection.executeScript(
            "SET statement_timeout = \(Int64(ms)); SET idle_in_transaction_session_timeout = \(Int64(ms) * 2 + 1000); "
                + "SET default_transaction_isolation = 'repeatable read'; SET default_transaction_read_only = on")
        // From here sending never blocks either: a query that cannot be written at once is flushed
        // between polls, under the same deadline as its answer.
        guard PQsetnonblocking(conn, 1) == 0 else { throw ControlError(message: "cannot make the side connection non-blocking") }
    }

    var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Runs one statement with text parameters (nil is NULL, type OID 0 lets the server infer it) and
    /// reads its answer in text format. `shouldStop` is checked between short polls.
    func run(_ sql: String, _ parameters: [ShadowParameter] = [], shouldStop: () -> Bool) -> SideAnswer {
        let deadline = ContinuousClock.now + limits.answerTimeout
        guard send(sql, parameters) else { return .lost(lastError) }
        if let failure = flush(until: deadline, shouldStop: shouldStop) { return failure }
        return readAnswer(until: deadline, shouldStop: shouldStop)
    }

    /// Sends every statement at once in libpq's pipeline mode, then a Sync, and reads the answers in
    /// order: one round trip for the lot. The server runs them one after the other; after a failure it
    /// skips the rest up to the Sync (they come back ``SideAnswer/aborted``). The statements up to the
    /// Sync are one implicit transaction, which the Sync ends (rolled back after a failure).
    /// Each answer has the deadline a lone statement has, counted from the arrival of the previous one.
    /// Returns one answer per statement; from a lost connection on, every answer is `.lost`.
    /// https://www.postgresql.org/docs/current/libpq-pipeline-mode.html
    func pipeline(_ statements: [SideStatement], shouldStop: () -> Bool) -> [TimedAnswer] {
        let start = ContinuousClock.now
        var answers: [TimedAnswer] = []
        answers.reserveCapacity(statements.count)
        func lostFromHere(_ failure: SideAnswer) -> [TimedAnswer] {
            let now = ContinuousClock.now
            while answers.count < statements.count { answers.append(TimedAnswer(answer: failure, arrival: now)) }
            return answers
        }
        guard PQenterPipelineMode(conn) == 1 else { return lostFromHere(.lost(lastError)) }
        for statement in statements {
            guard send(statement.sql, statement.parameters) else { return lostFromHere(.lost(lastError)) }
            if statement.flush && PQsendFlushRequest(conn) != 1 { return lostFromHere(.lost(lastError)) }
        }
        guard PQpipelineSync(conn) == 1 else { return lostFromHere(.lost(lastError)) }
        lastInput = start
        if let failure = flush(until: start + limits.answerTimeout, shouldStop: shouldStop) { return lostFromHere(failure) }
        var previous = start
        for _ in statements {
            let answer = readAnswer(until: previous + limits.answerTimeout, shouldStop: shouldStop)
            if case .lost = answer { return lostFromHere(answer) }
            // The answer was complete when the read that brought its last bytes returned.
            previous = lastInput
            answers.append(TimedAnswer(answer: answer, arrival: previous))
        }
        // The Sync's own result, and nothing after it, before the connection leaves pipeline mode.
        let deadline = previous + limits.answerTimeout
        while PQisBusy(conn) == 1 {
            if let failure = wait(for: Int16(POLLIN), until: deadline, shouldStop: shouldStop) { return lostFromHere(failure) }
        }
        guard let sync = PQgetResult(conn) else { return lostFromHere(.lost("no Sync answer after the pipeline")) }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced, PQexitPipelineMode(conn) == 1 else { return lostFromHere(.lost("the pipeline did not end at its Sync: \(lastError)")) }
        return answers
    }

    /// Whether the connection is out of any transaction, so fit for the next job; a transaction still
    /// open (a statement that began one explicitly) is rolled back first.
    func endTransaction(shouldStop: () -> Bool) -> Bool {
        guard isHealthy else { return false }
        if PQtransactionStatus(conn) == PQTRANS_IDLE { return true }
        guard case .result = run("ROLLBACK", shouldStop: shouldStop) else { return false }
        return PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// Writes out what libpq holds, polling while the socket is full.
    private func flush(until deadline: ContinuousClock.Instant, shouldStop: () -> Bool) -> SideAnswer? {
        while true {
            let flushed = PQflush(conn)
            if flushed == 0 { return nil }
            if flushed < 0 { return .lost(lastError) }
            if let failure = wait(for: Int16(POLLOUT | POLLIN), until: deadline, shouldStop: shouldStop) { return failure }
        }
    }

    /// Reads the answer of the statement at the head of libpq's queue, up to the NULL that ends it.
    private func readAnswer(until deadline: ContinuousClock.Instant, shouldStop: () -> Bool) -> SideAnswer {
        // Row by row, so the rows past the limits are read and dropped rather than collected by libpq.
        // In pipeline mode this is asked again for each statement, before its first result is read.
        _ = PQsetSingleRowMode(conn)
        var columns: [ResultColumn]?
        var rows: [[String?]] = []
        var bytes = 0
        var tooLarge = false
        var aborted = false
        var failure: PathError?
        var tag = ""
        while true {
            while PQisBusy(conn) == 1 {
                if let failure = wait(for: Int16(POLLIN), until: deadline, shouldStop: shouldStop) { return failure }
            }
            guard let res = PQgetResult(conn) else { break }
            defer { PQclear(res) }
            switch PQresultStatus(res) {
            case PGRES_SINGLE_TUPLE, PGRES_TUPLES_OK:
                // Every result of one statement carries its row description: read it once.
                if columns == nil { columns = Self.columns(res) }
                // A whole result (single-row mode refused) is read the same way, row by row.
                if !tooLarge { collect(res, into: &rows, bytes: &bytes) }
                if rows.count > limits.maxRows || bytes > limits.maxBytes {
                    tooLarge = true
                    rows = []
                }
                if PQresultStatus(res) == PGRES_TUPLES_OK { tag = String(cString: PQcmdStatus(res)) }
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if columns == nil || PQnfields(res) > 0 { columns = Self.columns(res) }
                tag = String(cString: PQcmdStatus(res))
            case PGRES_PIPELINE_ABORTED:
                aborted = true
            default:
                if failure == nil {
                    let error = ControlConnection.error(res, conn)
                    failure = PathError(sqlState: error.sqlState, message: error.message)
                }
            }
        }
        guard isHealthy else { return .lost(lastError) }
        if let failure { return .failed(failure) }
        if aborted { return .aborted }
        if tooLarge { return .tooLarge }
        return .result(QueryResult(columns: columns ?? [], rows: rows, commandTag: tag))
    }

    /// Appends a result's rows as text, counting their bytes.
    private func collect(_ res: OpaquePointer, into rows: inout [[String?]], bytes: inout Int) {
        let count = PQnfields(res)
        for r in 0..<PQntuples(res) {
            var row: [String?] = []
            row.reserveCapacity(Int(count))
            for c in 0..<count {
                if PQgetisnull(res, r, c) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(res, r, c))
                    bytes += length
                    row.append(Self.text(PQgetvalue(res, r, c), length: length))
                }
            }
            rows.append(row)
        }
    }

    /// Polls the socket for at most 100 ms (less when the deadline is nearer) and reads what arrived.
    /// Returns why the statement must be abandoned, or nil to carry on.
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant, shouldStop: () -> Bool) -> SideAnswer? {
        if shouldStop() { return .lost("stopping") }
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return .lost("no answer within \(limits.answerTimeout)") }
        var p = pollfd(fd: PQsocket(conn), events: events, revents: 0)
        let slice = Int32(min(100, max(1, remaining / .milliseconds(1))))
        if poll(&p, 1, slice) < 0 && errno != EINTR { return .lost("poll: \(String(cString: strerror(errno)))") }
        guard PQconsumeInput(conn) == 1 else { return .lost(lastError) }
        lastInput = ContinuousClock.now
        return nil
    }

    private func send(_ sql: String, _ parameters: [ShadowParameter]) -> Bool {
        guard !parameters.isEmpty else { return PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1 }
        var values = parameters.map { $0.value.map { strdup($0) } ?? nil }
        defer { values.forEach { free($0) } }
        let types = parameters.map { Oid($0.typeOID) }
        let sent = types.withUnsafeBufferPointer { typeBuffer in
            values.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    PQsendQueryParams(
                        conn, sql, Int32(parameters.count), typeBuffer.baseAddress, $0, nil, nil, 0)
                }
            }
        }
        return sent == 1
    }

    /// A value's text, `length` bytes long (libpq counts them, so no scan for the terminating NUL).
    private static func text(_ value: UnsafeMutablePointer<CChar>, length: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: value, count: length), as: UTF8.self)
    }

    private static func columns(_ res: OpaquePointer) -> [ResultColumn] {
        (0..<PQnfields(res)).map { i in
            ResultColumn(name: String(cString: PQfname(res, i)), typeOID: UInt32(PQftype(res, i)), typmod: PQfmod(res, i))
        }
    }

    private var lastError: String {
        let text = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "connection lost" : text
    }
}
