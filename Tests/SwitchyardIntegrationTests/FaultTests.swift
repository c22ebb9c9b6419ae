// Faults survived with nothing lost: the upstream restarting, backends killed, clients vanishing or stalling, the control database gone, Switchyard itself killed.
import Foundation
import Glibc
import SwitchyardConfig
import SwitchyardProtocol
import SwitchyardTestSupport
import Testing

@Suite("Faults survived, nothing lost", .serialized, .timeLimit(.minutes(10)))
struct FaultTests {
    // MARK: - The upstream restarting

    @Test("the upstream restarting under pgbench: open sessions get 57P01 as from PostgreSQL, new ones get 08001 while it is down and work once it is back")
    func upstreamRestart() throws {
        // A cluster of its own: the shared one cannot restart under the other suites' feet.
        let cluster = try PostgresCluster.start()
        defer { cluster.stop() }
        let proxy = try ProxyFixture(cluster: cluster)
        defer { proxy.stop() }
        let adminPort = try #require(proxy.adminPort)

        let idle = try RawClient(port: proxy.port, timeoutSeconds: 15)
        #expect(idle.startup().contains(.readyForQuery(.idle)))
        let inTransaction = try PQConnection(proxy.connectionString())
        try inTransaction.query("begin; create table restart_probe (id int); insert into restart_probe values (1)")
        // The same, straight to PostgreSQL, for what libpq reports without a proxy in between.
        let directInTransaction = try PQConnection(cluster.connectionString() + " sslmode=disable")
        try directInTransaction.query("begin; create table restart_direct (id int)")
        #expect(try proxy.psql("show servers", database: "switchyard").split(separator: "\n").count == 2)
        // And under load: pgbench through the proxy, reading and writing in transactions.
        _ = try cluster.psql("create table restart_load (id int primary key, n int); insert into restart_load select g, 0 from generate_series(1, 100) g")
        let script = NSTemporaryDirectory() + "switchyard-faults-\(UUID().uuidString).sql"
        try """
            \\set id random(1, 100)
            BEGIN;
            UPDATE restart_load SET n = n + 1 WHERE id = :id;
            SELECT n FROM restart_load WHERE id = :id;
            COMMIT;

            """.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        let pgbenchArguments = ["-n", "-f", script, "-c", "4", "-j", "2", "-h", "127.0.0.1", "-p", String(proxy.port), "-U", "postgres", "postgres"]
        let bench = try ChildProcess.start(executable: try Self.pgbench(cluster), arguments: pgbenchArguments + ["-T", "30"],
                                           environment: ["PGCONNECT_TIMEOUT": "10"], stdoutPath: script + ".log")
        defer {
            bench.terminate(gracePeriod: .seconds(2))
            unlink(script + ".log")
        }
        #expect(try Self.eventually { try cluster.psql("select sum(n) >= 200 from restart_load") == "t" })

        try cluster.restart(mode: .fast)

        // The idle session is told why (the server's own FATAL, forwarded) and then closed.
        let (bytes, closed) = idle.receive()
        let errors = RawClient.errors(RawClient.messages(bytes))
        #expect(errors.map(\.sqlState) == ["57P01"], "\(errors)")
        #expect(errors.first?.severity == "FATAL")
        #expect(closed)
        // The session in a transaction gets the same error on its next statement, and its work is gone.
        let failure = Self.failure { try inTransaction.query("insert into restart_probe values (2)") }
        let direct = Self.failure { try directInTransaction.query("insert into restart_direct values (2)") }
        #expect(failure != nil)
        #expect(failure?.sqlState == direct?.sqlState)
        #expect(failure?.message == direct?.message, "\(String(describing: failure)) against \(String(describing: direct))")
        // pgbench's clients stop on their lost connections; the proxy carries on.
        let benchStatus = bench.waitForExit(timeout: .seconds(20))
        #expect(benchStatus != nil && benchStatus != 0, "pgbench status \(String(describing: benchStatus)): \(bench.outputTail())")
        #expect(bench.outputTail().contains("number of failed transactions: 0 "), "\(bench.outputTail())")
        #expect(try Self.eventually { try proxy.psql("show servers", database: "switchyard").isEmpty }, "sessions left after the restart")
        #expect(try proxy.psql("select to_regclass('restart_probe') is null") == "t")

        // While the upstream is down a new session gets a clean 08001 naming it; once back, it works.
        cluster.stopServer(mode: .fast)
        let refused = try RawClient(port: proxy.port, timeoutSeconds: 15)
        let refusal = RawClient.errors(refused.startup())
        #expect(refusal.map(\.sqlState) == ["08001"], "\(refusal)")
        #expect(refusal.first?.message?.contains("127.0.0.1:\(cluster.port)") == true, "\(refusal)")
        try cluster.startServer()
        #expect(try proxy.psql("select 'back'") == "back")
        let again = try runProcess(try Self.pgbench(cluster), pgbenchArguments + ["-t", "100"], environment: ["PGCONNECT_TIMEOUT": "10"], timeout: .seconds(60))
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("number of transactions actually processed: 400/400"), "\(again.stdout)")
        // Every session closed: the gauges are back at zero once the loops have seen pgbench's Terminates.
        func metrics() throws -> String { try httpGet(port: adminPort, path: "/metrics").body }
        #expect(try Self.eventually {
            try Self.metric("switchyard_clients_active", in: metrics()) == 0 && Self.metric("switchyard_servers_active", in: metrics()) == 0
        }, "\((try? metrics()) ?? "")")
        #expect(Self.metric("switchyard_server_connect_failures_total", in: try metrics()) == 1)
    }

    @Test("the upstream restarting under a migration at shadow: the control thread and the shadow reads reconnect, and writes stay mirrored")
    func upstreamRestartUnderMigration() throws {
        let cluster = try PostgresCluster.start()
        defer { cluster.stop() }
        let database = "sy_faults_restart"
        try Self.prepareUsers(cluster, database: database)
        let yaml = RoutingTests.yaml.replacingOccurrences(of: "    stage: canary\n", with: "    stage: shadow\n    shadow_sample: 1\n")
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: database, cluster: cluster) { proxy in
            let adminPort = try #require(proxy.adminPort)
            func flags() throws -> String { try proxy.psql("show flags", database: "switchyard") }
            func metrics() throws -> String { try httpGet(port: adminPort, path: "/metrics").body }
            func sameReads() throws -> Double { Self.metric("switchyard_shadow_reads_total{outcome=\"same\"}", in: try metrics()) ?? 0 }
            /// Reads through a new session until the shadow reads answered alike go past `count`.
            func shadowReadsResume(after count: Double) throws -> Bool {
                let conn = try PQConnection(proxy.connectionString(database: database))
                return try Self.eventually(.seconds(15)) {
                    #expect(try conn.query("select name from users where id = 7") == [["old-7"]])
                    return try sameReads() > count
                }
            }
            #expect(try Self.eventually { try flags().contains("|shared (control schema)|") }, "\((try? flags()) ?? "")")
            #expect(try shadowReadsResume(after: 0))

            try cluster.restart(mode: .fast)

            #expect(try Self.eventually(.seconds(15)) { try flags().contains("|shared (control schema)|") }, "\((try? flags()) ?? "")")
            #expect(Self.metric("switchyard_control_schema_reachable", in: try metrics()) == 1)
            #expect(try shadowReadsResume(after: try sameReads()), "\((try? metrics()) ?? "")")
            let conn = try PQConnection(proxy.connectionString(database: database))
            #expect(try conn.command("update users set name = 'after restart' where id = 5") == "UPDATE 1")
            #expect(try cluster.psql("select full_name from users_v2 where id = 5", database: database) == "after restart")
            try Self.expectUsersEqual(cluster, database: database)
            #expect(try proxy.psql("set flag users_v2 to canary 10", database: "switchyard").isEmpty)
            #expect(try Self.stage(flags()) == "canary")
        }
    }

    // MARK: - A backend killed mid-transaction

    @Test("a backend killed mid-transaction with pg_terminate_backend: its FATAL 57P01 reaches the client, the session is gone, its work rolled back")
    func backendTerminated() throws {
        let cluster = try PostgresCluster.shared()
        _ = try cluster.psql("drop table if exists fault_terminated; create table fault_terminated (id int)")
        defer { _ = try? cluster.psql("drop table if exists fault_terminated") }
        // What libpq reports without a proxy in between, for comparison.
        let direct = try Self.terminateMidTransaction(PQConnection(cluster.connectionString() + " sslmode=disable"), cluster: cluster)
        #expect(direct != nil)
        try ProxyFixture.with { proxy in
            let raw = try RawClient(port: proxy.port, timeoutSeconds: 15)
            #expect(raw.startup().contains(.readyForQuery(.idle)))
            let pid = try #require(Self.firstValue(raw.query("select pg_backend_pid()")))
            #expect(raw.query("begin; insert into fault_terminated values (1)").last == .readyForQuery(.inTransaction))
            #expect(try proxy.psql("show servers", database: "switchyard").contains("|\(pid)|"))
            #expect(try cluster.psql("select pg_terminate_backend(\(pid))") == "t")
            // The server's FATAL reaches the client as sent, then the proxy closes the session without
            // waiting for the client to speak.
            let (bytes, closed) = raw.receive()
            let errors = RawClient.errors(RawClient.messages(bytes))
            #expect(errors.map(\.sqlState) == ["57P01"], "\(errors)")
            #expect(errors.first?.message == "terminating connection due to administrator command")
            #expect(closed)
            #expect(try Self.eventually { try !proxy.psql("show servers", database: "switchyard").contains("|\(pid)|") })

            // A libpq client sees exactly what it sees talking to PostgreSQL directly.
            let viaProxy = try Self.terminateMidTransaction(PQConnection(proxy.connectionString()), cluster: cluster)
            #expect(viaProxy?.sqlState == direct?.sqlState)
            #expect(viaProxy?.message == direct?.message, "\(String(describing: viaProxy)) against \(String(describing: direct))")
            #expect(try Self.eventually { try Self.proxiedClients(proxy).isEmpty })
            #expect(try cluster.psql("select count(*) from fault_terminated") == "0")
            // A new session works.
            let again = try PQConnection(proxy.connectionString())
            #expect(try again.command("insert into fault_terminated values (3)") == "INSERT 0 1")
            #expect(try cluster.psql("select array_agg(id) from fault_terminated") == "{3}")
        }
    }

    // MARK: - Clients disconnecting mid-transaction and mid-COPY

    enum Disconnect: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Closes (FIN) inside a transaction holding a lock and an update of the migrated table.
        case inTransaction = "in a transaction"
        /// Resets (RST) in the middle of a COPY into a plain table.
        case midCopy = "mid-COPY"
        /// Resets in the middle of a COPY into the migrated table, mirrored through a staging table.
        case midMirroredCopy = "mid-COPY of a mirrored table"
        var description: String { rawValue }
    }

    @Test("a client vanishing leaves no transaction open upstream: no backend left, locks released, nothing written",
          arguments: Disconnect.allCases)
    func clientDisconnects(_ how: Disconnect) throws {
        let cluster = try PostgresCluster.shared()
        let database = "sy_faults_disconnect"
        try Self.prepareUsers(cluster, database: database)
        _ = try cluster.psql("drop table if exists fault_copy; create table fault_copy (id int, note text)", database: database)
        let yaml = DualWriteTests.yaml
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: database, cluster: cluster) { proxy in
            var pid = ""
            do {
                let client = try RawClient(port: proxy.port, timeoutSeconds: 15)
                #expect(client.startup(database: database).contains(.readyForQuery(.idle)))
                pid = try #require(Self.firstValue(client.query("select pg_backend_pid()")))
                switch how {
                case .inTransaction:
                    let answer = client.query("begin; lock table users in share row exclusive mode; update users set name = 'lost' where id = 1")
                    #expect(answer.contains(.commandComplete(tag: "UPDATE 1")))
                    #expect(answer.last == .readyForQuery(.inTransaction))
                case .midCopy, .midMirroredCopy:
                    let sql = how == .midCopy ? "copy fault_copy (id, note) from stdin" : "copy users (id, name, created) from stdin"
                    client.send(FrontendMessage.query(sql).encoded())
                    let started = RawClient.messages(client.receive(until: { RawClient.messages($0).contains { if case .copyInResponse = $0 { true } else { false } } }).bytes)
                    #expect(started.contains { if case .copyInResponse = $0 { true } else { false } }, "\(started)")
                    // Rows well past one read of the proxy, then the client is gone without CopyDone.
                    var rows = ""
                    for id in 1_000..<6_000 { rows += "\(id)\tcopied-\(id)\(how == .midCopy ? "" : "\t2025-01-01 00:00:00")\n" }
                    client.send(FrontendMessage.copyData(Array(rows.utf8)).encoded())
                    // The COPY is under way at the server when the client vanishes (the mirrored one into
                    // the staging table, which other sessions cannot see in the catalog yet).
                    let target = how == .midCopy ? "copy fault_copy" : "copy pg_temp.switchyard_copy"
                    let activity = "select state || ': ' || query from pg_stat_activity where pid = \(pid)"
                    #expect(try Self.eventually { try cluster.psql(activity).hasPrefix("active: ") && cluster.psql(activity).contains(target) },
                            "\((try? cluster.psql(activity)) ?? "")")
                    var reset = linger(l_onoff: 1, l_linger: 0)
                    setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                }
            }
            // The client's socket is closed here. Its backend ends within a bounded time and takes its
            // transaction, its locks and its rows with it.
            #expect(try Self.eventually { try cluster.psql("select count(*) from pg_stat_activity where pid = \(pid)") == "0" },
                    "backend \(pid) still there: \((try? cluster.psql("select state from pg_stat_activity where pid = \(pid)")) ?? "")")
            #expect(try Self.openTransactions(cluster, database: database) == "")
            #expect(try cluster.psql("select count(*) from pg_locks where pid = \(pid)") == "0")
            #expect(try cluster.psql("lock table users, users_v2, fault_copy in access exclusive mode nowait; select 'free'", database: database) == "free")
            #expect(try cluster.psql("select name from users where id = 1", database: database) == "old-1")
            #expect(try cluster.psql("select (select count(*) from fault_copy) + (select count(*) from users where id >= 1000) + (select count(*) from users_v2 where id >= 1000)",
                                     database: database) == "0")
            try Self.expectUsersEqual(cluster, database: database)
            // LOCK TABLE changes no rows: it is no write divergence.
            #expect(try !proxy.psql("show routing", database: "switchyard").contains("write not mirrored"))
            #expect(try Self.eventually { try Self.proxiedClients(proxy).isEmpty })
            // The proxy carries on: the same COPY from a client that finishes it goes through, mirrored.
            let conn = try PQConnection(proxy.connectionString(database: database))
            #expect(try conn.command("insert into users values (1000, 'after', now())") == "INSERT 0 1")
            try Self.expectUsersEqual(cluster, database: database)
        }
    }

    // MARK: - A stalled client

    enum Stall: String, CaseIterable, Sendable, CustomStringConvertible {
        /// A plain SELECT, passed through untouched.
        case select = "a SELECT"
        /// An INSERT … RETURNING into a migrated table at dual_write: sent mirrored, its answer
        /// fixed row by row on the way back.
        case mirroredReturning = "a mirrored INSERT … RETURNING"
        var description: String { rawValue }

        /// The statement that answers `rows` rows of about 1 kB, from `first` on.
        func statement(rows: Int, first: Int = 1) -> String {
            switch self {
            case .select: "select repeat('x', 1000) from generate_series(\(first), \(first + rows - 1))"
            case .mirroredReturning:
                "insert into stall_items select g, 'p' from generate_series(\(first), \(first + rows - 1)) g returning id, repeat('x', 1000)"
            }
        }

        func tag(rows: Int) -> String { self == .select ? "SELECT \(rows)" : "INSERT 0 \(rows)" }
    }

    @Test("a client that stops reading a large result holds the server back, not the proxy's memory, and other sessions answer promptly",
          arguments: Stall.allCases)
    func stalledClient(_ stall: Stall) throws {
        let cluster = try PostgresCluster.shared()
        let database = "sy_faults_stall"
        _ = try? cluster.psql("create database \(database)")
        _ = try cluster.psql("""
            drop table if exists stall_items, stall_items_v2;
            create table stall_items (id int primary key, payload text);
            create table stall_items_v2 (id bigint primary key, payload text);
            """, database: database)
        let proxy = try SwitchyardChild.dualWrite(cluster: cluster, database: database, table: "stall_items", columns: "{ id: id, payload: payload }")
        defer { proxy.stop() }
        let process = try proxy.start()
        let other = try PQConnection(proxy.connectionString(database: database))
        // Warm up: the proxy's buffers and allocator at their working size, one large result read in full.
        #expect(try other.valueLengths("select repeat('w', 1000) from generate_series(1, 5000)").count == 5_000)
        let baseline = try #require(process.residentKilobytes)

        // Four clients, each sent about 60 MB of rows it does not read.
        let rows = 60_000
        let stalled = try (0..<4).map { i in
            let client = try RawClient(port: proxy.port, timeoutSeconds: 20)
            #expect(client.startup(application: "stalled-\(i)", database: database).contains(.readyForQuery(.idle)))
            client.send(FrontendMessage.query(stall.statement(rows: rows, first: 1 + i * rows)).encoded())
            return client
        }
        // Backpressure reaches PostgreSQL: its backend waits to write to the proxy.
        #expect(try Self.eventually(.seconds(15)) {
            try cluster.psql("select count(*) from pg_stat_activity where application_name like 'stalled-_' and state = 'active' and wait_event = 'ClientWrite'") == "4"
        }, "the backends of the stalled sessions did not all wait on ClientWrite")

        var peak = baseline
        var slowest: Duration = .zero
        for i in 0..<20 {
            let started = ContinuousClock.now
            #expect(try other.query("select count(*) from generate_series(1, \(10_000 + i))") == [["\(10_000 + i)"]])
            #expect(try other.command("insert into stall_items values (\(-1 - i), 'other')") == "INSERT 0 1")
            slowest = max(slowest, ContinuousClock.now - started)
            peak = max(peak, process.residentKilobytes ?? 0)
            usleep(100_000)
        }
        let fresh = try PQConnection(proxy.connectionString(database: database))
        #expect(try fresh.query("select 'new session'") == [["new session"]])
        print("stalled client, \(stall): proxy RSS \(baseline) kB before, \(peak) kB at most while 4 × \(rows) rows of 1 kB waited; slowest other query \(slowest)")
        #expect(peak - baseline < 16 * 1024, "the proxy grew by \(peak - baseline) kB holding a result nobody reads")
        #expect(slowest < .seconds(1))

        // Nothing was lost: once the clients read again, every row arrives and each statement completes.
        for client in stalled {
            let (total, tail) = Self.drain(client, atMost: rows * 1_100)
            #expect(total > rows * 1_000)
            #expect(String(decoding: tail, as: UTF8.self).contains(stall.tag(rows: rows)))
        }
        #expect(process.isRunning)

        // A client that vanishes while stalled takes its backend with it.
        do {
            let gone = try RawClient(port: proxy.port, timeoutSeconds: 20)
            #expect(gone.startup(application: "stalled-gone", database: database).contains(.readyForQuery(.idle)))
            gone.send(FrontendMessage.query(stall.statement(rows: rows, first: 1_000_001)).encoded())
            #expect(try Self.eventually(.seconds(15)) {
                try cluster.psql("select wait_event from pg_stat_activity where application_name = 'stalled-gone' and state = 'active'") == "ClientWrite"
            })
            var reset = linger(l_onoff: 1, l_linger: 0)
            setsockopt(gone.fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        }
        #expect(try Self.eventually { try cluster.psql("select count(*) from pg_stat_activity where application_name = 'stalled-gone'") == "0" })
        #expect(process.isRunning)
        // Its statement never finished, so nothing of it stays; both tables hold the same rows.
        let expected = stall == .select ? "0|0|20|20" : "0|0|240020|240020"
        #expect(try cluster.psql("""
            select (select count(*) from stall_items where id > 1000000), (select count(*) from stall_items_v2 where id > 1000000),
                   (select count(*) from stall_items), (select count(*) from stall_items_v2)
            """, database: database) == expected)
        #expect(try cluster.psql("""
            select count(*) from ((table stall_items except select id::int, payload from stall_items_v2)
                                  union all (select id::int, payload from stall_items_v2 except table stall_items)) d
            """, database: database) == "0")
    }

    // MARK: - The control database unreachable

    @Test("the control database unreachable: routing keeps the last known flag state, SHOW FLAGS and /metrics say so, flips resume once it is back")
    func controlDatabaseUnreachable() throws {
        let cluster = try PostgresCluster.shared()
        let database = "sy_faults_control"
        try RoutingTests.prepare(cluster, database: database)
        // The control schema in a cluster of its own, which the test stops and starts again.
        let control = try PostgresCluster.start()
        defer { control.stop() }
        let schema = "sy_ctl_faults_\(UInt32.random(in: 0...UInt32.max))"
        let proxy = try ProxyFixture(configure: { c in
            RoutingTests.configure(&c, controlSchema: schema)
            c.upstream = try! UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(cluster.port)/\(database)")
            c.control.database = try! UpstreamURI.parse(control.connectionURI(user: "switchyard"))
        })
        defer { proxy.stop() }
        let adminPort = try #require(proxy.adminPort)
        func flags() throws -> String { try proxy.psql("show flags", database: "switchyard") }
        func reachable() throws -> Double? { Self.metric("switchyard_control_schema_reachable", in: try httpGet(port: adminPort, path: "/metrics").body) }
        let outside = "/*cohort='\(RoutingTests.outside)'*/ select name from users where id = 3"

        #expect(try Self.eventually { try flags().contains("|shared (control schema)|") }, "\((try? flags()) ?? "")")
        #expect(try reachable() == 1)
        #expect(try proxy.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
        let conn = try PQConnection(proxy.connectionString(database: database))
        #expect(try conn.query(outside) == [["new-3"]])

        control.stopServer(mode: .fast)
        #expect(try Self.eventually { try flags().contains("control schema unreachable: cannot connect to the control database at postgresql://switchyard@127.0.0.1:\(control.port)/postgres") },
                "\((try? flags()) ?? "")")
        #expect(try reachable() == 0)
        // Fail-static: the last known stage (live), not the config's seed (canary 50%), for open and new sessions.
        #expect(try Self.stage(flags()) == "live")
        #expect(try conn.query(outside) == [["new-3"]])
        #expect(try PQConnection(proxy.connectionString(database: database)).query(outside) == [["new-3"]])
        do {
            _ = try proxy.psql("set flag users_v2 to off", database: "switchyard")
            Issue.record("SET FLAG succeeded without a control database")
        } catch {
            #expect("\(error)".contains("cannot connect to the control database"), "\(error)")
        }
        #expect(try conn.query(outside) == [["new-3"]])

        // Back: the control thread reconnects (its backoff is at most 5 s) and flips apply again.
        try control.startServer()
        #expect(try Self.eventually(.seconds(15)) { try flags().contains("|shared (control schema)|") }, "\((try? flags()) ?? "")")
        #expect(try reachable() == 1)
        // Reconnecting reads the stored state back; the config's seed does not overwrite it.
        #expect(try Self.stage(flags()) == "live")
        #expect(try conn.query(outside) == [["new-3"]])
        #expect(try proxy.psql("set flag users_v2 to off", database: "switchyard").isEmpty)
        #expect(try conn.query(outside) == [["old-3"]])
        #expect(try control.psql("select to_stage from \(schema).flag_history order by id desc limit 1") == "off")
    }

    // MARK: - Switchyard killed during dual-write

    @Test("switchyard killed with SIGKILL during dual-write under pgbench: no transaction left open, and after a restart verify finds both tables equal",
          arguments: ["simple", "prepared"])
    func killedDuringDualWrite(queryMode: String) throws {
        let cluster = try PostgresCluster.shared()
        let database = "sy_faults_kill"
        _ = try? cluster.psql("create database \(database)")
        _ = try cluster.psql("""
            drop table if exists items, items_v2;
            create table items (id int primary key, val int not null, note text);
            create table items_v2 (id bigint primary key, value bigint not null, note text);
            insert into items select g, g, 'seed' from generate_series(1, 2000) g;
            insert into items_v2 select id, val, note from items;
            """, database: database)
        let proxy = try SwitchyardChild.dualWrite(cluster: cluster, database: database, table: "items", columns: """
            { id: id, val: { new: value, forward: "val::bigint", inverse: "value::int" }, note: note }
            """)
        defer { proxy.stop() }
        // Each transaction touches one key (so no deadlocks): an upsert and an update, then a delete of its neighbour.
        let script = NSTemporaryDirectory() + "switchyard-faults-\(UUID().uuidString).sql"
        try """
            \\set id random(1, 3000)
            \\set v random(1, 1000000)
            BEGIN;
            INSERT INTO items (id, val, note) VALUES (:id, :v, 'inserted') ON CONFLICT (id) DO UPDATE SET val = excluded.val, note = 'upserted';
            UPDATE items SET val = val + 1 WHERE id = :id;
            COMMIT;
            DELETE FROM items WHERE id = :id + 1;

            """.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        let pgbench = try Self.pgbench(cluster)
        func pgbenchArguments(_ run: [String]) -> [String] {
            ["-n", "-f", script, "-c", "4", "-j", "2", "-M", queryMode] + run + ["-h", "127.0.0.1", "-p", String(proxy.port), "-U", "postgres", database]
        }

        let first = try proxy.start()
        let benchLog = script + ".log"
        defer { unlink(benchLog) }
        let bench = try ChildProcess.start(executable: pgbench, arguments: pgbenchArguments(["-T", "30"]), environment: ["PGCONNECT_TIMEOUT": "10"],
                                           stdoutPath: benchLog)
        defer { bench.terminate(gracePeriod: .seconds(2)) }
        // Under load: the workload has changed a thousand rows.
        #expect(try Self.eventually(.seconds(20)) { try cluster.psql("select count(*) >= 1000 from items where note <> 'seed'", database: database) == "t" })
        let changed = try cluster.psql("select count(*) from items where note <> 'seed'", database: database)
        #expect(first.sendSignal(SIGKILL))
        #expect(first.waitForExit(timeout: .seconds(10)) == 128 + SIGKILL)
        // pgbench loses every connection and stops with an error, long before its 30 s.
        let benchStatus = bench.waitForExit(timeout: .seconds(20))
        #expect(benchStatus != nil && benchStatus != 0, "pgbench status \(String(describing: benchStatus)): \(bench.outputTail())")
        // Its clients stopped on the lost connection, and not one statement failed before that.
        #expect(bench.outputTail().contains("perhaps the backend died while processing"), "\(bench.outputTail())")
        #expect(bench.outputTail().contains("number of failed transactions: 0 "), "\(bench.outputTail())")
        print("switchyard killed after \(changed) rows changed; pgbench (status \(String(describing: benchStatus))):\n\(bench.outputTail(maxBytes: 1_500))")

        // The server rolled back whatever the killed sessions had open: no backend of theirs is left.
        #expect(try Self.eventually { try cluster.psql("select count(*) from pg_stat_activity where datname = '\(database)' and application_name = 'pgbench'") == "0" },
                "\((try? cluster.psql("select pid, state, query from pg_stat_activity where datname = '\(database)'")) ?? "")")
        #expect(try Self.openTransactions(cluster, database: database) == "")
        #expect(try cluster.psql("select count(*) from pg_prepared_xacts") == "0")

        // Restarted, it serves at dual_write again (the stage is kept in the control schema) and verify proves it.
        _ = try proxy.start()
        let again = try runProcess(pgbench, pgbenchArguments(["-t", "50"]), environment: ["PGCONNECT_TIMEOUT": "10"], timeout: .seconds(60))
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("number of failed transactions: 0 "), "\(again.stdout)")
        let verify = try runProcess(try switchyardBinaryPath, ["verify", "items", "--config", proxy.configPath], timeout: .seconds(60))
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.hasPrefix("verify items: EQUAL: "), "\(verify.stdout)")
        print(verify.stdout)
        #expect(try cluster.psql("""
            select count(*) from ((select id, val::bigint, note from items except select id, value, note from items_v2)
                                  union all (select id, value, note from items_v2 except select id, val::bigint, note from items)) d
            """, database: database) == "0")
        #expect(try Self.openTransactions(cluster, database: database) == "")
    }
}

// MARK: - Helpers

extension FaultTests {
    /// Polls `condition` every 50 ms until it holds or `timeout` passes; whether it held.
    static func eventually(_ timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            usleep(50_000)
        }
    }

    /// The libpq failure `body` throws, nil if it succeeds.
    static func failure(_ body: () throws -> Void) -> PQConnection.Failure? {
        do {
            try body()
            return nil
        } catch let failure as PQConnection.Failure {
            return failure
        } catch {
            return PQConnection.Failure(message: "\(error)")
        }
    }

    /// Opens a transaction on `conn`, has the server terminate its backend, waits until the backend
    /// is gone, and returns what the next statement fails with.
    static func terminateMidTransaction(_ conn: PQConnection, cluster: PostgresCluster) throws -> PQConnection.Failure? {
        let pid = try #require(try conn.query("select pg_backend_pid()").first?.first ?? nil)
        try conn.query("begin; insert into fault_terminated values (1)")
        #expect(try cluster.psql("select pg_terminate_backend(\(pid))") == "t")
        #expect(try eventually { try cluster.psql("select count(*) from pg_stat_activity where pid = \(pid)") == "0" })
        return failure { try conn.query("insert into fault_terminated values (2)") }
    }

    /// Client backends of `database` idle in an open transaction (Switchyard's own side connections,
    /// which may be caught between two statements of a short one, left out): pid, application, state.
    static func openTransactions(_ cluster: PostgresCluster, database: String) throws -> String {
        try cluster.psql("""
            select pid, application_name, state from pg_stat_activity
            where datname = '\(database)' and state like 'idle in transaction%' and application_name not like 'switchyard-%'
            """)
    }

    /// SHOW CLIENTS without the admin console's own sessions.
    static func proxiedClients(_ proxy: ProxyFixture) throws -> [String] {
        try proxy.psql("show clients", database: "switchyard").split(separator: "\n").map(String.init)
            .filter { $0.split(separator: "|", omittingEmptySubsequences: false).dropFirst(2).first != "switchyard" }
    }

    /// pgbench of the server's own version, else the one on PATH.
    static func pgbench(_ cluster: PostgresCluster) throws -> String {
        access(cluster.binDirectory + "/pgbench", X_OK) == 0 ? cluster.binDirectory + "/pgbench" : try findExecutable("pgbench")
    }

    /// The value of an unlabelled series in /metrics text.
    static func metric(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// The first column of the first DataRow.
    static func firstValue(_ messages: [BackendMessage]) -> String? {
        for case let .dataRow(row) in messages {
            return row.values.first.flatMap { $0.map { String(decoding: $0, as: UTF8.self) } }
        }
        return nil
    }

    /// The stage column of SHOW FLAGS' first row.
    static func stage(_ flags: String) -> String {
        flags.split(separator: "|").dropFirst(2).first.map(String.init) ?? ""
    }

    /// Reads until ReadyForQuery (or `atMost` bytes) without keeping what passed: the byte count and
    /// the last bytes.
    static func drain(_ client: RawClient, atMost: Int) -> (total: Int, tail: [UInt8]) {
        var total = 0
        var tail: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let ready: [UInt8] = [UInt8(ascii: "Z"), 0, 0, 0, 5, UInt8(ascii: "I")]
        while !tail.ends(with: ready) && total <= atMost {
            let n = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            total += n
            tail = Array((tail + buffer[0..<n]).suffix(256))
        }
        return (total, tail)
    }

    /// The users tables of the routing tests, with the new one holding exactly the old rows.
    static func prepareUsers(_ cluster: PostgresCluster, database: String) throws {
        try RoutingTests.prepare(cluster, database: database)
        _ = try cluster.psql("update users_v2 n set full_name = o.name from users o where o.id = n.id", database: database)
        try expectUsersEqual(cluster, database: database)
    }

    /// users and users_v2 agree through the forward mapping.
    static func expectUsersEqual(_ cluster: PostgresCluster, database: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let differences = try cluster.psql("""
            (select id, name, created AT TIME ZONE 'UTC' from users except select id, full_name, created_at from users_v2)
            union all
            (select id, full_name, created_at from users_v2 except select id, name, created AT TIME ZONE 'UTC' from users)
            """, database: database)
        #expect(differences == "", "rows that differ:\n\(differences)", sourceLocation: sourceLocation)
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

extension RawClient {
    /// Startup with an application_name, so the server's pg_stat_activity can find the session.
    func startup(application: String, database: String = "postgres") -> [BackendMessage] {
        send(StartupPacket.startup(StartupMessage(parameters: [("user", "postgres"), ("database", database), ("application_name", application)])).encode())
        return Self.messages(receive(until: Self.endsWithReadyForQuery).bytes)
    }
}

/// `switchyard serve` as a child process with a config file of its own, for the faults that need its
/// pid (its memory, SIGKILL). Started again on the same ports after it is killed.
final class SwitchyardChild {
    let port = freeTCPPort()
    let adminPort = freeTCPPort()
    let configPath = NSTemporaryDirectory() + "switchyard-faults-\(UUID().uuidString).yaml"
    var logPath: String { configPath + ".log" }
    private var process: ChildProcess?
    private let cleanup: () -> Void

    /// `body` holds everything but the listen addresses; `cleanup` runs on `stop()`.
    init(_ body: String, cleanup: @escaping () -> Void = {}) throws {
        self.cleanup = cleanup
        try ("listen: 127.0.0.1:\(port)\nadmin_listen: 127.0.0.1:\(adminPort)\nshutdown_timeout: 2s\n" + body)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// A proxy in front of `database` whose one migration, named `table`, moves `table` to
    /// `<table>_v2` with the `columns` mapping (YAML), its flag at dual_write and unmirrored forms
    /// refused, with a control schema of its own that `stop()` drops.
    static func dualWrite(cluster: PostgresCluster, database: String, table: String, columns: String) throws -> SwitchyardChild {
        let schema = "sy_ctl_\(table)_\(UInt32.random(in: 0...UInt32.max))"
        return try SwitchyardChild("""
            upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/\(database)
            migrations:
              - name: \(table)
                old: public.\(table)
                new: public.\(table)_v2
                key: [id]
                columns: \(columns)
                unmirrored_writes: refuse
            flags:
              - name: \(table)
                migration: \(table)
                stage: dual_write
            control:
              schema: \(schema)

            """, cleanup: { _ = try? cluster.psql("drop schema if exists \(schema) cascade", database: database) })
    }

    /// Starts the process and waits until it accepts connections.
    func start() throws -> ChildProcess {
        let started = try ChildProcess.start(executable: try switchyardBinaryPath, arguments: ["serve", "--config", configPath], stdoutPath: logPath)
        process = started
        do {
            try waitForTCPPort(port, timeout: .seconds(20))
        } catch {
            throw HarnessError("\(error); switchyard's log:\n\(started.outputTail())")
        }
        return started
    }

    func connectionString(database: String = "postgres") -> String {
        "host=127.0.0.1 port=\(port) user=postgres dbname=\(database) connect_timeout=10 sslmode=disable"
    }

    /// Stops the process (SIGTERM, then SIGKILL) and removes its files.
    func stop() {
        process?.terminate(gracePeriod: .seconds(5))
        cleanup()
        unlink(configPath)
        unlink(logPath)
    }
}
