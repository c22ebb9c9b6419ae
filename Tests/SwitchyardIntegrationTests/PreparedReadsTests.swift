// Reads a flag routes run as statements the session prepared on its server connection, and answer
// exactly as their texts would.
import Foundation
import SwitchyardConfig
import SwitchyardProtocol
import SwitchyardRouting
import SwitchyardTestSupport
import Testing

@Suite("Routed reads as prepared statements", .serialized)
struct PreparedReadsTests {
    static let database = "sy_prepared_reads"

    /// RoutingTests' tables in this suite's database, and the new table under the old names as
    /// a view: what a canary read must answer.
    static func prepare(_ cluster: PostgresCluster) throws {
        // The view holds on to the tables the routing fixture drops and makes again.
        _ = try? cluster.psql("drop view if exists users_as_new", database: Self.database)
        try RoutingTests.prepare(cluster, database: Self.database)
        _ = try cluster.psql("""
            create or replace view users_as_new as
                select id, full_name as name, created_at at time zone 'UTC' as created from users_v2
            """, database: Self.database)
    }

    static func withProxy(prepare: Bool = true, _ body: (ProxyFixture, PostgresCluster) throws -> Void) throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try ProxyFixture.with(configure: { c in
            RoutingTests.configure(&c, controlSchema: "sy_ctl_\(UInt32.random(in: 0...UInt32.max))", database: Self.database)
            c.prepareRoutedReads = prepare
        }) { try body($0, cluster) }
    }

    /// What `sql` answers on PostgreSQL itself, on the new path (through the view) or the old.
    static func expected(_ direct: PQConnection, _ sql: String, onNew: Bool) throws -> [[String?]] {
        try direct.query(onNew ? sql.replacingOccurrences(of: "from users", with: "from users_as_new") : sql)
    }

    static func preparedNames(_ conn: PQConnection) throws -> [String] {
        try conn.query("select name from pg_prepared_statements where name like 'switchyard_r%' order by name").map { $0[0] ?? "" }
    }

    static let shapes: [@Sendable (Int) -> String] = [
        { "select name from users where id = \($0)" },
        { "select id, name from users where id in (\($0), \($0 + 1), 40) order by id" },
        { "select count(*), min(name) from users where id between \($0) and \($0 + 5)" },
        { "select name from users where id > \($0) order by id limit 3 offset 1" },
        { "select * from users u where u.id = \($0) and u.id < 100" },
    ]

    @Test("reads of one shape are prepared once per path, and every one answers as its text does on that path")
    func answers() throws {
        try Self.withProxy { proxy, cluster in
            let direct = try PQConnection(cluster.connectionString(database: Self.database))
            for (cohort, onNew) in [(RoutingTests.inside, true), (RoutingTests.outside, false)] {
                let conn = try PQConnection(proxy.connectionString(database: Self.database))
                for shape in Self.shapes {
                    for k in 1...6 {
                        let sql = "/*cohort='\(cohort)'*/ " + shape(k * 3)
                        #expect(try conn.query(sql) == Self.expected(direct, sql, onNew: onNew), "\(sql)")
                    }
                }
                // One statement per shape, not per text. On the new path a second one per shape when the
                // control thread's first catalog read (column types) changes the route during the test.
                let prepared = try Self.preparedNames(conn).count
                if onNew {
                    #expect(prepared >= Self.shapes.count && prepared <= 2 * Self.shapes.count, "\(prepared) on the new path")
                } else {
                    #expect(prepared == Self.shapes.count, "\(prepared) on the old path")
                }
            }
            // Cohorts, latency and the routed-read counter are those of the texts.
            let cohorts = try proxy.psql("show cohorts", database: "switchyard")
            #expect(cohorts.contains("users_v2|\(RoutingTests.inside)|"), "\(cohorts)")
            let routing = try proxy.psql("show flags", database: "switchyard")
            #expect(routing.contains("users_v2"))
        }
    }

    @Test("after DISCARD ALL, DEALLOCATE ALL, a failed transaction and columns added to the table, reads answer and are prepared again")
    func preparedAgain() throws {
        try Self.withProxy { proxy, cluster in
            let direct = try PQConnection(cluster.connectionString(database: Self.database))
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            func read(_ k: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let sql = "/*cohort='\(RoutingTests.outside)'*/ select * from users where id = \(k)"
                #expect(try conn.query(sql) == Self.expected(direct, sql, onNew: false), sourceLocation: sourceLocation)
            }
            for k in 1...3 { try read(k) }
            #expect(try Self.preparedNames(conn).count == 1)
            try conn.query("discard all")
            for k in 4...5 { try read(k) }
            try conn.query("deallocate all")
            for k in 6...7 { try read(k) }
            #expect(try Self.preparedNames(conn).count == 1)
            try conn.query("begin")
            #expect(throws: PQConnection.Failure.self) { try conn.query("select 1/0") }
            let aborted = #expect(throws: PQConnection.Failure.self) { try read(8) }
            #expect(aborted?.sqlState == "25P02")
            try conn.query("rollback")
            try read(9)
            // A prepared SELECT * would fail with "cached plan must not change result type": it is
            // prepared again and run again, unseen.
            _ = try cluster.psql("alter table users add column extra int not null default 7", database: Self.database)
            defer { _ = try? cluster.psql("alter table users drop column if exists extra", database: Self.database) }
            try read(10)
            #expect(try conn.query("select * from users where id = 11").first?.last == "7")
            _ = try cluster.psql("alter table users drop column extra", database: Self.database)
            try read(12)
            try read(13)
            #expect(try Self.preparedNames(conn).count <= 2)
            // /metrics counts them: every read from the second on, the PREPAREs, and the two prepared again.
            let metrics = try httpGet(port: try #require(proxy.adminPort), path: "/metrics").body
            func value(_ name: String) -> Int? {
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            }
            #expect((value("switchyard_prepared_reads_total") ?? 0) >= 9, "\(metrics)")
            #expect((value("switchyard_prepared_read_statements_total") ?? 0) >= 3)
            #expect(value("switchyard_prepared_reads_prepared_again_total") == 2)
        }
    }

    @Test("a session keeps at most 100 prepared reads: the oldest is deallocated by a statement of its own")
    func limit() throws {
        try Self.withProxy { proxy, _ in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            // 105 shapes, told apart by their aliases (letters only: digits would vary with the text).
            let letters = Array("abcdefghijklmnopqrstuvwxyz")
            for k in 0..<105 {
                let alias = "u" + String(letters[k / 26]) + String(letters[k % 26])
                for id in [k % 50 + 1, (k + 7) % 50 + 1] {
                    #expect(try conn.query("select \(alias).name from users \(alias) where \(alias).id = \(id)") == [["old-\(id)"]])
                }
            }
            #expect(try Self.preparedNames(conn).count == 100)
        }
    }

    @Test("statements dropped where the session cannot see it (a DO block) are prepared again and the reads answer, also after the session stops preparing")
    func droppedUnseen() throws {
        try Self.withProxy { proxy, _ in
            // A raw client: every answer is awaited for at most 20 s, so a read left unanswered fails here.
            let raw = try RawClient(port: proxy.port)
            _ = raw.startup(database: Self.database)
            func rows(_ sql: String) -> [String] {
                raw.query(sql).compactMap { if case let .dataRow(row) = $0 { row.values.first.flatMap { $0.map { String(decoding: $0, as: UTF8.self) } } } else { nil } }
            }
            for round in 1...(PreparedReads.missingLimit + 2) {
                for k in 1...3 {
                    #expect(rows("select name from users where id = \(k + round)") == ["old-\(k + round)"], "round \(round)")
                }
                #expect(!rows("select name from pg_prepared_statements where name like 'switchyard_r%'").isEmpty, "round \(round)")
                let dropped = raw.query("do $$ begin execute 'deallocate all'; end $$")
                #expect(RawClient.errors(dropped).isEmpty, "\(dropped)")
            }
            #expect(rows("select name from users where id = 9") == ["old-9"])
            #expect(rows("select name from users where id = 10") == ["old-10"])
        }
    }

    @Test("a read that fails gets its own error, prepared or not, and the session goes on")
    func errors() throws {
        try Self.withProxy { proxy, _ in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            for k in 1...4 {
                let failure = #expect(throws: PQConnection.Failure.self) {
                    try conn.query("select name from users where id = \(k) and 1 / (id - \(k)) = 1")
                }
                #expect(failure?.sqlState == "22012", "\(failure?.description ?? "")")
            }
            for k in 1...4 {
                let failure = #expect(throws: PQConnection.Failure.self) { try conn.query("select nosuch from users where id = \(k)") }
                #expect(failure?.sqlState == "42703", "\(failure?.description ?? "")")
                #expect(failure?.message.contains("nosuch") == true)
            }
            #expect(try conn.query("select name from users where id = 5") == [["old-5"]])
        }
    }

    @Test("a Query sent behind an EXECUTE that turns out stale: the stale error is the first Query's answer, the second answers, and the session goes on in step")
    func staleWithQueryBehind() throws {
        try Self.withProxy { proxy, cluster in
            let raw = try RawClient(port: proxy.port)
            _ = raw.startup(database: Self.database)
            for k in 1...3 { _ = raw.query("select * from users where id = \(k)") }
            _ = try cluster.psql("alter table users add column extra int not null default 7", database: Self.database)
            defer { _ = try? cluster.psql("alter table users drop column if exists extra", database: Self.database) }
            raw.send(FrontendMessage.query("select * from users where id = 4").encoded() + FrontendMessage.query("select * from users where id = 5").encoded())
            let both = RawClient.messages(raw.receive(until: { RawClient.messages($0).filter { if case .readyForQuery = $0 { true } else { false } }.count == 2 }).bytes)
            let readies = both.filter { if case .readyForQuery = $0 { true } else { false } }.count
            #expect(readies == 2)
            let rows = both.compactMap { if case let .dataRow(row) = $0 { row.values.compactMap { $0.map { String(decoding: $0, as: UTF8.self) } } } else { nil } }
            let errors = RawClient.errors(both)
            // The first answers with the stale error (it cannot be run again behind the second) or,
            // had the server seen the change later, with its row.
            #expect(errors.allSatisfy { $0.sqlState == "0A000" }, "\(errors)")
            #expect(rows.last?.first == "5" && rows.last?.last == "7", "\(rows)")
            #expect(rows.count + errors.count == 2)
            let after = raw.query("select * from users where id = 6")
            #expect(RawClient.errors(after).isEmpty, "\(after)")
            #expect(after.contains { if case let .dataRow(row) = $0 { row.values.last??.elementsEqual(Array("7".utf8)) ?? false } else { false } })
        }
    }

    @Test("of two Queries sent together the second goes as text and the first's PREPARE is not seen; reads in a transaction block go as texts; with prepare_routed_reads off nothing is prepared")
    func textsWhenNotAlone() throws {
        try Self.withProxy { proxy, _ in
            let raw = try RawClient(port: proxy.port)
            _ = raw.startup(database: Self.database)
            _ = raw.query("select name from users where id = 1")
            raw.send(FrontendMessage.query("select name from users where id = 2").encoded() + FrontendMessage.query("select name from users where id = 3").encoded())
            let both = RawClient.messages(raw.receive(until: { RawClient.messages($0).filter { if case .readyForQuery = $0 { true } else { false } }.count == 2 }).bytes)
            let rows = both.compactMap { if case let .dataRow(row) = $0 { row.values.first.flatMap { $0.map { String(decoding: $0, as: UTF8.self) } } } else { nil } }
            #expect(rows == ["old-2", "old-3"])
            #expect(RawClient.errors(both).isEmpty)
            #expect(!both.contains { if case .commandComplete(let tag) = $0 { tag == "PREPARE" } else { false } })

            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("begin")
            for k in 1...4 { #expect(try conn.query("select name from users where id = \(k)") == [["old-\(k)"]]) }
            #expect(try Self.preparedNames(conn).isEmpty)
            try conn.query("commit")
        }
        try Self.withProxy(prepare: false) { proxy, _ in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            for k in 1...4 { #expect(try conn.query("select name from users where id = \(k)") == [["old-\(k)"]]) }
            #expect(try Self.preparedNames(conn).isEmpty)
        }
    }
}
