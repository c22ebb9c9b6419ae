// A CancelRequest arrives on a new connection and must reach the backend of the session it names.
import Foundation
import SwitchyardTestSupport
import Testing

@Suite("Cancel requests")
struct CancelTests {
    @Test("libpq's PQcancel through the proxy cancels the running query with 57014")
    func cancelRunningQuery() throws {
        try ProxyFixture.with { proxy in
            let conn = try PQConnection(proxy.connectionString())
            let other = try PQConnection(proxy.connectionString())
            let started = Date()
            let canceller = Thread {
                usleep(500_000)
                _ = conn.cancel()
            }
            canceller.start()
            var caught: PQConnection.Failure?
            do {
                try conn.query("select pg_sleep(30)")
            } catch let e as PQConnection.Failure {
                caught = e
            }
            #expect(caught?.sqlState == "57014", "\(String(describing: caught))")
            #expect(Date().timeIntervalSince(started) < 10)
            // Only the named session was cancelled, and both still work.
            #expect(try conn.query("select 1") == [["1"]])
            #expect(try other.query("select 2") == [["2"]])
            // SHOW STATS counts the one cancel that reached a backend (column cancels_forwarded).
            let stats = try proxy.psql("show stats", database: "switchyard").split(separator: "|")
            #expect(stats.count > 12 && stats[12] == "1", "\(stats)")
        }
    }

    @Test("a cancel with an unknown key is dropped and cancels nothing")
    func unknownKeyIgnored() throws {
        try ProxyFixture.with { proxy in
            let conn = try PQConnection(proxy.connectionString())
            let pid = conn.backendPID
            let client = try RawClient(port: proxy.port)
            // Right pid, wrong secret: PostgreSQL would ignore it, so must we.
            client.send([0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e] + withUnsafeBytes(of: pid.bigEndian, Array.init) + [0, 0, 0, 1])
            let (_, closed) = client.receive()
            #expect(closed)
            #expect(try conn.query("select pg_sleep(0.3), 5")[0][1] == "5")
        }
    }
}
