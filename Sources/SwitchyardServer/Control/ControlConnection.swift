// A libpq connection to the control database, for Switchyard's own side work (flags, history).
import CLibPQ
import Foundation
import SwitchyardConfig

/// Errors from the control database, with the server's message and SQLSTATE when there is one.
public struct ControlError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var sqlState: String?
    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One blocking libpq connection. Used from a thread of its own or from the CLI, never
/// from an event loop.
final class ControlConnection: @unchecked Sendable {
    let conn: OpaquePointer

    /// Connects with the URI's host, port, user, password and database (Switchyard's own). `purpose`
    /// names the database in the error when the connection fails.
    init(_ uri: UpstreamURI, applicationName: String = "switchyard-control", purpose: String = "the control database") throws(ControlError) {
        var params: [(String, String)] = [
            ("host", uri.host), ("port", String(uri.port)), ("connect_timeout", "5"),
            ("application_name", applicationName),
        ]
        if let u = uri.user { params.append(("user", u)) }
        if let p = uri.password { params.append(("password", p)) }
        if let d = uri.database { params.append(("dbname", d)) }
        for (k, v) in uri.parameters where !["application_name", "connect_timeout"].contains(k) { params.append((k, v)) }
        let keys = params.map { strdup($0.0) } + [nil]
        let values = params.map { strdup($0.1) } + [nil]
        defer { (keys + values).forEach { free($0) } }
        let c = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 0)
            }
        }
        guard let c else { throw ControlError(message: "libpq could not allocate a connection") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(c)
            throw ControlError(message: "cannot connect to \(purpose) at \(uri.redacted): \(message)")
        }
        conn = c
    }

    deinit { PQfinish(conn) }

    /// Runs SQL with text parameters and returns the rows as text.
    @discardableResult
    func execute(_ sql: String, _ parameters: [String?] = []) throws(ControlError) -> [[String?]] {
        var cValues = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cValues.forEach { free($0) } }
        let res = cValues.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
                PQexecParams(conn, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : $0, nil, nil, 0)
            }
        }
        guard let res else { throw ControlError(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        let status = PQresultStatus(res)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else { throw Self.error(res, conn) }
        var rows: [[String?]] = []
        for r in 0..<PQntuples(res) {
            rows.append((0..<PQnfields(res)).map { c in PQgetisnull(res, r, c) == 1 ? nil : String(cString: PQgetvalue(res, r, c)) })
        }
        return rows
    }

    /// The result columns of `sql` as PostgreSQL types them (name, type as format_type
    /// prints it), by preparing the statement without running it. Throws the server's
    /// error when the statement does not type-check.
    func describe(_ sql: String) throws(ControlError) -> [(name: String, type: String)] {
        let name = "switchyard_check_\(UInt32.random(in: 0...UInt32.max))"
        guard let prepared = PQprepare(conn, name, sql, 0, nil) else { throw ControlError(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(prepared) }
        guard PQresultStatus(prepared) == PGRES_COMMAND_OK else { throw Self.error(prepared, conn) }
        defer { _ = try? executeScript("DEALLOCATE \(name)") }
        guard let description = PQdescribePrepared(conn, name) else { throw ControlError(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(description) }
        var columns: [(String, String)] = []
        for i in 0..<PQnfields(description) {
            let type = try execute("SELECT format_type($1::oid, $2::int)", [String(PQftype(description, i)), String(PQfmod(description, i))])
            columns.append((String(cString: PQfname(description, i)), type.first?.first.flatMap { $0 } ?? "?"))
        }
        return columns
    }

    /// Simple-protocol execution, for several statements at once (DDL, LISTEN).
    func executeScript(_ sql: String) throws(ControlError) {
        guard let res = PQexec(conn, sql) else { throw ControlError(message: String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        let status = PQresultStatus(res)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else { throw Self.error(res, conn) }
    }

    /// The server's primary message and SQLSTATE (without libpq's "ERROR:" prefix).
    static func error(_ res: OpaquePointer, _ conn: OpaquePointer) -> ControlError {
        let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let primary = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
        let message = primary ?? String(cString: PQresultErrorMessage(res)).trimmingCharacters(in: .whitespacesAndNewlines)
        return ControlError(message: message.isEmpty ? String(cString: PQerrorMessage(conn)) : message, sqlState: state)
    }

    /// Waits up to `timeoutMs` for NOTIFY messages; returns their channels (empty on timeout).
    /// Throws when the connection is lost.
    func waitForNotifications(timeoutMs: Int32) throws(ControlError) -> [String] {
        var channels = drainNotifications()
        if !channels.isEmpty { return channels }
        var p = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, timeoutMs)
        if rc > 0 {
            guard PQconsumeInput(conn) == 1 else {
                throw ControlError(message: "control connection lost: " + String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            channels = drainNotifications()
        }
        if PQstatus(conn) != CONNECTION_OK { throw ControlError(message: "control connection lost") }
        return channels
    }

    private func drainNotifications() -> [String] {
        var out: [String] = []
        while let n = PQnotifies(conn) {
            out.append(String(cString: n.pointee.relname))
            PQfreemem(n)
        }
        return out
    }
}
