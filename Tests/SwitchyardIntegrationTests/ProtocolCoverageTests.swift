// Protocol paths no everyday client takes: FunctionCall (large objects) and CopyBoth (replication).
import CLibPQ
import Foundation
import SwitchyardProtocol
import SwitchyardTestSupport
import Testing

@Suite("FunctionCall and CopyBoth pass through")
struct ProtocolCoverageTests {
    /// libpq's large-object API uses the FunctionCall ('F') message for every call.
    static func largeObjectRoundTrip(_ conninfo: String) throws -> [UInt8] {
        let conn = try PQConnection(conninfo)
        try conn.query("begin")
        let oid = lo_creat(conn.conn, 0x20000 | 0x40000)  // INV_WRITE | INV_READ
        #expect(oid != 0)
        let fd = lo_open(conn.conn, oid, 0x20000 | 0x40000)
        #expect(fd >= 0)
        let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let written = payload.withUnsafeBytes { lo_write(conn.conn, fd, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        #expect(written == payload.count)
        #expect(lo_lseek(conn.conn, fd, 0, SEEK_SET) == 0)
        var back = [CChar](repeating: 0, count: payload.count)
        let read = lo_read(conn.conn, fd, &back, back.count)
        #expect(read == payload.count)
        #expect(lo_close(conn.conn, fd) == 0)
        #expect(lo_unlink(conn.conn, oid) == 1)
        try conn.query("commit")
        return back.map { UInt8(bitPattern: $0) }
    }

    @Test("large objects (FunctionCall) give the same bytes through the proxy as directly")
    func functionCall() throws {
        let cluster = try PostgresCluster.shared()
        try ProxyFixture.with { proxy in
            let direct = try Self.largeObjectRoundTrip("host=127.0.0.1 port=\(cluster.port) user=postgres dbname=postgres sslmode=disable")
            let proxied = try Self.largeObjectRoundTrip(proxy.connectionString())
            #expect(direct == proxied)
            #expect(proxied.count == 5000)
        }
    }

    @Test("pg_receivewal streams WAL over CopyBoth through the proxy")
    func copyBoth() throws {
        let cluster = try PostgresCluster.shared()
        try ProxyFixture.with { proxy in
            let directory = NSTemporaryDirectory() + "switchyard-wal-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let receiver = try ChildProcess.start(
                executable: cluster.binDirectory + "/pg_receivewal",
                arguments: ["-h", "127.0.0.1", "-p", "\(proxy.port)", "-U", "postgres", "-D", directory, "--no-loop", "-w"],
                stdoutPath: directory + ".log")
            defer { _ = receiver.terminate(); unlink(directory + ".log") }
            // Generate WAL while it streams.
            _ = try cluster.psql("create table if not exists walgen (x int); insert into walgen select generate_series(1, 20000); drop table walgen")
            var partial: String?
            let deadline = Date().addingTimeInterval(20)
            while partial == nil && Date() < deadline {
                let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                partial = files.first { $0.hasSuffix(".partial") }
                if partial == nil { usleep(100_000) }
            }
            #expect(partial != nil, "no WAL received: \(receiver.outputTail())")
            #expect(receiver.isRunning, "pg_receivewal stopped: \(receiver.outputTail())")
            // The replication session shows in the console like any other.
            let clients = try proxy.psql("show clients", database: "switchyard")
            #expect(clients.contains("pg_receivewal"), "\(clients)")
        }
    }

    @Test("a 3.1 startup with a _pq_ option gets the server's NegotiateProtocolVersion, passed through")
    func negotiateProtocolVersion() throws {
        try ProxyFixture.with { proxy in
            let client = try RawClient(port: proxy.port)
            let startup = StartupMessage(protocolVersion: StartupRequestCode.protocol3 | 1,
                                         parameters: [("user", "postgres"), ("database", "postgres"), ("_pq_.switchyard_test", "1")])
            client.send(StartupPacket.startup(startup).encode())
            let messages = RawClient.messages(client.receive(until: RawClient.endsWithReadyForQuery).bytes)
            // PostgreSQL 15 puts the whole version number (3.0 = 196608) in the "newest minor version" field.
            #expect(messages.first == .negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: 196_608, unrecognizedOptions: ["_pq_.switchyard_test"])))
            #expect(messages.contains(.authentication(.ok)))
            #expect(messages.last == .readyForQuery(.idle))
            #expect(client.query("select 41 + 1").contains(.dataRow(DataRow(values: [Array("42".utf8)]))))
        }
    }
}
