// A minimal libpq wrapper for tests that need more control than psql gives (cancel, big rows).
import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe except `cancel()`, which libpq allows from another thread.
final class PQConnection: @unchecked Sendable {
    let conn: OpaquePointer

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var sqlState: String?
        var description: String { "\(sqlState ?? "-----"): \(message)" }
    }

    init(_ conninfo: String) throws {
        guard let c = PQconnectdb(conninfo) else { throw Failure(message: "PQconnectdb returned nil") }
        // Check before storing: a class whose init throws after full initialization runs deinit,
        // which would PQfinish the connection a second time.
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            throw Failure(message: message)
        }
        conn = c
    }

    deinit { PQfinish(conn) }

    var backendPID: Int32 { PQbackendPID(conn) }

    /// Runs a query and returns its rows as text (nil for NULL). Throws the server's error with its SQLSTATE.
    @discardableResult
    func query(_ sql: String) throws -> [[String?]] {
        guard let res = PQexec(conn, sql) else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        return try rows(res)
    }

    /// Runs a query through the extended protocol (Parse/Bind/Execute) with text parameters.
    func query(_ sql: String, parameters: [String]) throws -> [[String?]] {
        var cStrings = parameters.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let res = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                PQexecParams(conn, sql, Int32(parameters.count), nil, $0, nil, nil, 0)
            }
        }
        guard let res else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        return try rows(res)
    }

    /// Runs a statement (simple protocol) and returns its command tag (`UPDATE 3`).
    func command(_ sql: String) throws -> String {
        guard let res = PQexec(conn, sql) else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        try check(res)
        return String(cString: PQcmdStatus(res))
    }

    /// Runs a statement through the extended protocol with text parameters; returns its command tag
    /// and the number of result columns its description has.
    func command(_ sql: String, parameters: [String]) throws -> (tag: String, columns: Int) {
        var cStrings = parameters.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let res = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
                PQexecParams(conn, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : $0, nil, nil, 0)
            }
        }
        guard let res else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        try check(res)
        return (String(cString: PQcmdStatus(res)), Int(PQnfields(res)))
    }

    /// Everything a statement answered: command tag, column names and rows (text). With
    /// `parameters` it goes through the extended protocol, else the simple one.
    func answer(_ sql: String, parameters: [String]? = nil) throws -> (tag: String, columns: [String], rows: [[String?]]) {
        let params = parameters ?? []
        var cStrings = params.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let res = cStrings.withUnsafeMutableBufferPointer { buffer -> OpaquePointer? in
            guard parameters != nil else { return PQexec(conn, sql) }
            return buffer.baseAddress.map { base in
                base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    PQexecParams(conn, sql, Int32(params.count), nil, $0, nil, nil, 0)
                }
            } ?? PQexecParams(conn, sql, 0, nil, nil, nil, nil, 0)
        }
        guard let res else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        let rows = try rows(res)
        let columns = (0..<PQnfields(res)).map { String(cString: PQfname(res, $0)) }
        return (String(cString: PQcmdStatus(res)), columns, rows)
    }

    /// Prepares a named statement (Parse, Sync), as drivers do for statements they reuse.
    func prepare(_ name: String, _ sql: String) throws {
        guard let res = PQprepare(conn, name, sql, 0, nil) else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        try check(res)
    }

    /// Runs a named prepared statement (Bind, Execute, Sync) with text parameters.
    func execute(prepared name: String, parameters: [String]) throws -> [[String?]] {
        var cStrings = parameters.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let res = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                PQexecPrepared(conn, name, Int32(parameters.count), $0, nil, nil, 0)
            }
        }
        guard let res else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        return try rows(res)
    }

    /// The byte length of each value in the first column (for huge values we do not want to copy).
    func valueLengths(_ sql: String) throws -> [Int] {
        guard let res = PQexec(conn, sql) else { throw Failure(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        try check(res)
        return (0..<PQntuples(res)).map { Int(PQgetlength(res, $0, 0)) }
    }

    private func check(_ res: OpaquePointer) throws {
        let status = PQresultStatus(res)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY else {
            let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            var message = String(cString: PQresultErrorMessage(res))
            // libpq's own errors (a broken protocol exchange) are on the connection.
            if message.isEmpty { message = "\(String(cString: PQresStatus(status))): " + String(cString: PQerrorMessage(conn)) }
            throw Failure(message: message, sqlState: state)
        }
    }

    private func rows(_ res: OpaquePointer) throws -> [[String?]] {
        try check(res)
        var out: [[String?]] = []
        for r in 0..<PQntuples(res) {
            out.append((0..<PQnfields(res)).map { c in
                PQgetisnull(res, r, c) == 1 ? nil : String(cString: PQgetvalue(res, r, c))
            })
        }
        return out
    }

    /// Sends a CancelRequest for whatever this connection is running (on a new connection, as libpq does).
    func cancel() -> Bool {
        guard let c = PQgetCancel(conn) else { return false }
        defer { PQfreeCancel(c) }
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(c, &buffer, 256) == 1
    }
}
