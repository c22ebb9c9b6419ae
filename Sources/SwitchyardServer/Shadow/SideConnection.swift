// One side connection of the shadow-read pool: a libpq connection whose every wait is bounded.
import CLibPQ
import Foundation
import SwitchyardConfig
import SwitchyardShadow

/// What one statement on a side connection gave.
enum SideAnswer {
    case result(QueryResult)
    /// The server refused or failed the statement; the connection stays usable (after a ROLLBACK).
    case failed(PathError)
    /// More rows or bytes than a comparison may hold. The rest of the answer was read and dropped, so the
    /// connection stays usable.
    case tooLarge
    /// The connection cannot be used any more: it broke, the server did not answer in time, or the reader
    /// is stopping in the middle of the statement.
    case lost(String)
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

    /// Connects and sets the session's statement_timeout, so a slow shadow query ends on the server too.
    init(_ uri: UpstreamURI, statementTimeout: Duration, limits: Limits) throws(ControlError) {
        connection = try ControlConnection(uri, applicationName: "switchyard-shadow", purpose: "the upstream database")
        self.limits = limits
        let ms = max(1, statementTimeout / .milliseconds(1))
        // A transaction left open by a stuck job would hold its snapshot back from vacuum; the server ends it.
        try connection.executeScript(
            "SET statement_timeout = \(Int64(ms)); SET idle_in_transaction_session_timeout = \(Int64(ms) * 2 + 1000)")
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
        while true {
            let flushed = PQflush(conn)
            if flushed == 0 { break }
            if flushed < 0 { return .lost(lastError) }
            if let failure = wait(for: Int16(POLLOUT | POLLIN), until: deadline, shouldStop: shouldStop) { return failure }
        }
        // Row by row, so the rows past the limits are read and dropped rather than collected by libpq.
        _ = PQsetSingleRowMode(conn)
        var columns: [ResultColumn]?
        var rows: [[String?]] = []
        var bytes = 0
        var tooLarge = false
        var failure: PathError?
        var tag = ""
        while true {
            while PQisBusy(conn) == 1 {
                if let failure = wait(for: Int16(POLLIN), until: deadline, shouldStop: shouldStop) { return failure }
            }
            guard let res = PQgetResult(conn) else { break }
            defer { PQclear(res) }
            switch PQresultStatus(res) {
            case PGRES_SINGLE_TUPLE:
                if columns == nil { columns = Self.columns(res) }
                guard !tooLarge else { continue }
                let count = Int(PQnfields(res))
                var row: [String?] = []
                row.reserveCapacity(count)
                for c in 0..<Int32(count) {
                    if PQgetisnull(res, 0, c) == 1 {
                        row.append(nil)
                    } else {
                        bytes += Int(PQgetlength(res, 0, c))
                        row.append(String(cString: PQgetvalue(res, 0, c)))
                    }
                }
                rows.append(row)
                if rows.count > limits.maxRows || bytes > limits.maxBytes {
                    tooLarge = true
                    rows = []
                }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if columns == nil || PQnfields(res) > 0 { columns = Self.columns(res) }
                tag = String(cString: PQcmdStatus(res))
            default:
                if failure == nil {
                    let error = ControlConnection.error(res, conn)
                    failure = PathError(sqlState: error.sqlState, message: error.message)
                }
            }
        }
        guard isHealthy else { return .lost(lastError) }
        if let failure { return .failed(failure) }
        if tooLarge { return .tooLarge }
        return .result(QueryResult(columns: columns ?? [], rows: rows, commandTag: tag))
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
