// Malformed input from one client gets an error or a closed connection, and no other session notices.
import Foundation
import Synchronization
import SwitchyardIO
import SwitchyardProtocol
import SwitchyardTestSupport
import Testing

@Suite("Malformed client input", .serialized)
struct RobustnessTests {
    /// Each case: bytes sent right after connecting, and whether they follow a valid startup.
    static let cases: [(name: String, afterStartup: Bool, bytes: [UInt8])] = {
        var rng = SplitMix64(seed: 42)
        let random = (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var truncatedQuery = FrontendMessage.query("select 1").encoded()
        truncatedQuery.removeLast(3)
        return [
            ("random bytes before startup", false, random),
            ("message before startup", false, FrontendMessage.query("select 1").encoded()),
            ("startup length below 8", false, [0, 0, 0, 4, 0, 3, 0, 0]),
            ("absurd startup length", false, [0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]),
            ("protocol 2.0", false, [0, 0, 0, 9, 0, 2, 0, 0, 0]),
            ("startup without user", false, StartupPacket.startup(StartupMessage(parameters: [("database", "postgres")])).encode()),
            ("absurd message length", true, [UInt8(ascii: "Q"), 0x7f, 0xff, 0xff, 0xf0] + Array("select 1".utf8)),
            ("negative message length", true, [UInt8(ascii: "Q"), 0xff, 0xff, 0xff, 0xff]),
            ("length below 4", true, [UInt8(ascii: "Q"), 0, 0, 0, 2]),
            ("unknown message type", true, [UInt8(ascii: "~"), 0, 0, 0, 8, 1, 2, 3, 4]),
            ("random bytes after startup", true, random),
            ("truncated query then close", true, truncatedQuery),
        ]
    }()

    @Test("each malformed input gets an ErrorResponse or a close, while other sessions keep working")
    func malformedInputIsContained() throws {
        try ProxyFixture.with(configure: { $0.maxMessageSize = 1 << 20 }) { proxy in
            // Busy sessions running throughout.
            let stop = Atomic<Bool>(false)
            let failures = Mutex<[String]>([])
            let completed = Atomic<Int>(0)
            let threads = (0..<3).map { i in
                Thread {
                    do {
                        let conn = try PQConnection(proxy.connectionString())
                        var n = 0
                        while !stop.load(ordering: .acquiring) && n < 100_000 {
                            let rows = try conn.query("select \(i) + \(n)")
                            if rows.first?.first ?? nil != "\(i + n)" { failures.withLock { $0.append("wrong answer \(rows)") } }
                            n += 1
                            completed.add(1, ordering: .relaxed)
                        }
                    } catch {
                        failures.withLock { $0.append("busy session \(i): \(error)") }
                    }
                }
            }
            threads.forEach { $0.start() }

            for c in Self.cases {
                let client = try RawClient(port: proxy.port, timeoutSeconds: 20)
                if c.afterStartup {
                    let ready = client.startup()
                    #expect(ready.contains(.readyForQuery(.idle)), "\(c.name): startup failed")
                }
                client.send(c.bytes)
                // End-of-file after the bad bytes: a proxy waiting for the rest of a message must close too.
                client.finishSending()
                let (bytes, closed) = client.receive()
                let errors = RawClient.errors(RawClient.messages(bytes))
                #expect(closed || !errors.isEmpty, "\(c.name): neither an error nor a close")
                for e in errors {
                    #expect(e.sqlState != nil, "\(c.name): error without SQLSTATE")
                }
            }
            // The proxy still serves new sessions after all that.
            #expect(try proxy.psql("select 'still here'") == "still here")
            stop.store(true, ordering: .releasing)
            let deadline = Date().addingTimeInterval(10)
            while completed.load(ordering: .relaxed) == 0 && Date() < deadline { usleep(10_000) }
            usleep(200_000)
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
            #expect(completed.load(ordering: .relaxed) > 0)
        }
    }

    @Test("a message over max_message_size gets SQLSTATE 54000 naming the limit")
    func maxMessageSize() throws {
        try ProxyFixture.with(configure: { $0.maxMessageSize = 64 * 1024 }) { proxy in
            let client = try RawClient(port: proxy.port)
            _ = client.startup()
            let small = client.query("select length(repeat('x', 100))")
            #expect(small.contains(.commandComplete(tag: "SELECT 1")))
            client.send(FrontendMessage.query("select '" + String(repeating: "x", count: 100_000) + "'").encoded())
            let (bytes, closed) = client.receive()
            let errors = RawClient.errors(RawClient.messages(bytes))
            #expect(errors.first?.sqlState == "54000")
            #expect(errors.first?.message?.contains("max_message_size") == true)
            #expect(closed)
        }
    }

    @Test("SSLRequest and GSSENCRequest are declined with N and the session carries on")
    func encryptionRequestsDeclined() throws {
        try ProxyFixture.with { proxy in
            let client = try RawClient(port: proxy.port)
            client.send(StartupPacket.gssEncRequest.encode())
            #expect(client.receive(until: { $0.count >= 1 }).bytes == [UInt8(ascii: "N")])
            client.send(StartupPacket.sslRequest.encode())
            #expect(client.receive(until: { $0.count >= 1 }).bytes == [UInt8(ascii: "N")])
            let ready = client.startup()
            #expect(ready.contains(.readyForQuery(.idle)))
            #expect(client.query("select 7").contains(.dataRow(DataRow(values: [Array("7".utf8)]))))
        }
    }

    @Test("a client that connects and sends nothing is dropped after startup_timeout")
    func startupTimeout() throws {
        try ProxyFixture.with(configure: { $0.startupTimeout = .milliseconds(300) }) { proxy in
            let client = try RawClient(port: proxy.port, timeoutSeconds: 5)
            let started = Date()
            let (_, closed) = client.receive()
            #expect(closed)
            #expect(Date().timeIntervalSince(started) < 4)
        }
    }

    @Test("client_idle_timeout closes an idle session with 57P05; idle_transaction_timeout closes one idle in a transaction with 25P03, rolling it back")
    func idleTimeouts() throws {
        let cluster = try PostgresCluster.shared()
        _ = try cluster.psql("create table if not exists sy_idle_probe (id int primary key); truncate sy_idle_probe")
        try ProxyFixture.with(configure: { $0.clientIdleTimeout = .milliseconds(400); $0.idleTransactionTimeout = .milliseconds(400) }) { proxy in
            // A busy session is not idle: queries 100 ms apart for a second keep it open.
            let busy = try RawClient(port: proxy.port, timeoutSeconds: 5)
            #expect(RawClient.errors(busy.startup()).isEmpty)
            for _ in 0..<10 {
                usleep(100_000)
                #expect(RawClient.errors(busy.query("select 1")).isEmpty)
            }
            // Idle outside a transaction: closed with 57P05, naming the setting.
            let started = Date()
            let (bytes, closed) = busy.receive()
            #expect(closed)
            let error = RawClient.errors(RawClient.messages(bytes)).first
            #expect(error?.sqlState == "57P05" && error?.message?.contains("client_idle_timeout") == true, "\(String(describing: error))")
            #expect(Date().timeIntervalSince(started) < 3)

            // Idle in a transaction: closed with 25P03, and the transaction's insert rolled back.
            let open = try RawClient(port: proxy.port, timeoutSeconds: 5)
            #expect(RawClient.errors(open.startup()).isEmpty)
            #expect(RawClient.errors(open.query("begin; insert into sy_idle_probe values (1)")).isEmpty)
            let (more, ended) = open.receive()
            #expect(ended)
            #expect(RawClient.errors(RawClient.messages(more)).first?.sqlState == "25P03")
            var rows = ""
            let deadline = ContinuousClock.now + .seconds(5)
            repeat {
                rows = try cluster.psql("select count(*) from pg_stat_activity where state like 'idle in transaction%' and query like '%sy_idle_probe%'")
                if rows == "0" { break }
                usleep(50_000)
            } while ContinuousClock.now < deadline
            #expect(rows == "0")
            #expect(try cluster.psql("select count(*) from sy_idle_probe") == "0")
        }
    }

    @Test("an upstream that closes during startup without a word gives the client SQLSTATE 08006, not a bare close")
    func upstreamClosesDuringStartup() throws {
        // A stand-in upstream (a server shutting down, say): it takes the startup message and hangs up.
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 4)
        defer { listener.close() }
        let done = Atomic<Bool>(false)
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 1024)
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, !done.load(ordering: .acquiring) {
                guard let peer = try? listener.accept() else { usleep(10_000); continue }
                usleep(50_000)
                _ = buffer.withUnsafeMutableBytes { try? peer.read(into: $0) }
                peer.close()
            }
        }
        thread.start()
        defer { done.store(true, ordering: .releasing) }
        try ProxyFixture.with(configure: { $0.upstream.port = listener.localPort }) { proxy in
            let client = try RawClient(port: proxy.port, timeoutSeconds: 5)
            let errors = RawClient.errors(client.startup())
            #expect(errors.first?.sqlState == "08006", "\(errors)")
            #expect(errors.first?.message?.contains("closed the connection during startup") == true, "\(errors)")
        }
    }

    @Test("an unreachable upstream gives SQLSTATE 08001 naming the address")
    func unreachableUpstream() throws {
        let deadPort = freeTCPPort()
        try ProxyFixture.with(configure: { $0.upstream.port = deadPort }) { proxy in
            let client = try RawClient(port: proxy.port)
            let errors = RawClient.errors(client.startup())
            #expect(errors.first?.sqlState == "08001")
            #expect(errors.first?.message?.contains("127.0.0.1:\(deadPort)") == true)
        }
    }
}
