// The proxy holds 1,000 concurrent sessions on a fixed set of threads.
import Foundation
import SwitchyardTestSupport
import Testing

@Suite("Many concurrent sessions")
struct ManySessionsTests {
    static func threadCount() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
        }
        return -1
    }

    @Test("1,000 sessions open at once each run a query, with no thread per session")
    func thousandSessions() throws {
        try ProxyFixture.with(configure: { $0.workers = 2; $0.maxClientConnections = 1100 }) { proxy in
            let threadsBefore = Self.threadCount()
            var connections: [PQConnection] = []
            connections.reserveCapacity(1000)
            for _ in 0..<1000 {
                connections.append(try PQConnection(proxy.connectionString()))
            }
            #expect(proxy.server.context.stats.clientsActive.load(ordering: .relaxed) == 1000)
            for (i, conn) in connections.enumerated() {
                #expect(try conn.query("select \(i)") == [["\(i)"]])
            }
            // The proxy's threads did not grow with the sessions (libpq in this test makes none).
            #expect(Self.threadCount() - threadsBefore < 8)
            let clients = try proxy.psql("select 1", database: "postgres")
            #expect(clients == "1")
            connections.removeAll()
            let deadline = Date().addingTimeInterval(10)
            while proxy.server.context.stats.clientsActive.load(ordering: .relaxed) > 0 && Date() < deadline { usleep(20_000) }
            #expect(proxy.server.context.stats.clientsActive.load(ordering: .relaxed) == 0)
        }
    }

    @Test("sessions beyond max_client_connections get SQLSTATE 53300")
    func connectionLimit() throws {
        try ProxyFixture.with(configure: { $0.maxClientConnections = 3 }) { proxy in
            let held = try (0..<3).map { _ in try PQConnection(proxy.connectionString()) }
            #expect(held.count == 3)
            #expect(throws: PQConnection.Failure.self) { try PQConnection(proxy.connectionString()) }
            do {
                _ = try PQConnection(proxy.connectionString())
            } catch let e as PQConnection.Failure {
                #expect(e.message.contains("too many clients"))
            }
        }
    }
}
