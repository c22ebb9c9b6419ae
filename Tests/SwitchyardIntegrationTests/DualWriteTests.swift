// From dual_write on, every write to a migrated table is mirrored into its new table in the same
// statement, and the client sees exactly the answer of its own statement.
import Foundation
import Glibc
import SwitchyardProtocol
import SwitchyardTestSupport
import Testing

@Suite("Dual-write through the proxy", .serialized)
struct DualWriteTests {
    static let database = "sy_dualwrite"
    static let yaml = RoutingTests.yaml.replacingOccurrences(of: "stage: canary", with: "stage: dual_write")

    /// Rows on which the old table, mapped forward, and the new table disagree (both ways).
    static func differences(_ cluster: PostgresCluster) throws -> String {
        try cluster.psql("""
            (select id, name, created AT TIME ZONE 'UTC' from users except select id, full_name, created_at from users_v2)
            union all
            (select id, full_name, created_at from users_v2 except select id, name, created AT TIME ZONE 'UTC' from users)
            """, database: database)
    }

    /// The routing tables, with the new one holding exactly the old rows (as after a backfill).
    static func prepare(_ cluster: PostgresCluster) throws {
        try RoutingTests.prepare(cluster, database: database)
        _ = try cluster.psql("update users_v2 n set full_name = o.name from users o where o.id = n.id", database: database)
        try expectEqual(cluster)
    }

    /// The old and new tables agree (through the forward mapping).
    static func expectEqual(_ cluster: PostgresCluster, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let d = try differences(cluster)
        #expect(d == "", "rows that differ:\n\(d)", sourceLocation: sourceLocation)
    }

    @Test("simple protocol: inserts, updates, deletes and upserts are mirrored with the tags of the originals")
    func simpleProtocol() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            let expected: [(String, String)] = [
                ("insert into users values (100, 'a', now())", "INSERT 0 1"),
                ("insert into users select g, 'm' || g, timestamp '2025-01-01' from generate_series(101, 110) g", "INSERT 0 10"),
                ("update users set name = name || '!' where id <= 10", "UPDATE 10"),
                ("/* app */ delete from users where id between 5 and 7 -- three", "DELETE 3"),
                ("update users set name = 'none' where id = -1", "UPDATE 0"),
                ("insert into users values (100, 'dup', now()) on conflict (id) do nothing", "INSERT 0 0"),
                ("insert into users as u values (100, 'upserted', now()) on conflict (id) do update set name = excluded.name", "INSERT 0 1"),
                ("update users u set name = o.name from (values (11, 'from')) as o(id, name) where u.id = o.id", "UPDATE 1"),
                ("delete from users u using (values (12), (13)) as d(id) where u.id = d.id", "DELETE 2"),
                ("update users set name = 'x' where id = 1; delete from users where id = 2", "DELETE 1"),
            ]
            for (sql, tag) in expected {
                #expect(try conn.command(sql) == tag, "\(sql)")
            }
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select full_name from users_v2 where id = 100", database: Self.database) == "upserted")
            #expect(try cluster.psql("select count(*) from users_v2 where id in (2, 5, 6, 7, 12, 13)", database: Self.database) == "0")

            // The mirror is in the client's transaction: a rollback undoes both.
            try conn.query("begin")
            #expect(try conn.command("insert into users values (300, 'gone', now())") == "INSERT 0 1")
            #expect(try conn.command("update users set name = 'gone' where id = 1") == "UPDATE 1")
            try conn.query("rollback")
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select count(*) from users_v2 where id = 300 or full_name = 'gone'", database: Self.database) == "0")

            // TRUNCATE empties both, in a transaction that can still roll back.
            try conn.query("begin")
            #expect(try conn.command("truncate users") == "TRUNCATE TABLE")
            #expect(try conn.query("select count(*) from users_v2") == [["0"]])
            try conn.query("rollback")
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select count(*) > 0 from users_v2", database: Self.database) == "t")

            // A failing statement fails as it would without mirroring and changes nothing.
            #expect(throws: PQConnection.Failure.self) { try conn.command("insert into users values (1, 'dup', now())") }
            try Self.expectEqual(cluster)
            #expect(try conn.command("truncate table users") == "TRUNCATE TABLE")
            #expect(try cluster.psql("select count(*) from users_v2", database: Self.database) == "0")
        }
    }

    @Test("extended protocol: parameters, Describe and prepared statements reused many times")
    func extendedProtocol() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            // PQexecParams sends Parse, Bind, Describe (portal), Execute, Sync: the description is
            // NoData, as for the original statement.
            let update = try conn.command("update users set name = $1 where id = $2", parameters: ["p", "11"])
            #expect(update.tag == "UPDATE 1")
            #expect(update.columns == 0)
            #expect(try conn.command("insert into users values ($1, $2, now())", parameters: ["400", "four hundred"]).tag == "INSERT 0 1")
            #expect(try conn.command("delete from users where id = $1", parameters: ["3"]).tag == "DELETE 1")

            try conn.prepare("bump", "update users set name = name || '+' where id = $1")
            for id in 20..<40 {
                #expect(try conn.execute(prepared: "bump", parameters: ["\(id)"]) == [])
            }
            // A flip between transactions re-prepares statements: a mirrored write stays mirrored
            // at shadow, and a flip back to off leaves it unmirrored.
            #expect(try proxy.psql("set flag users_v2 to shadow", database: "switchyard").isEmpty)
            #expect(try conn.execute(prepared: "bump", parameters: ["40"]) == [])
            try Self.expectEqual(cluster)
            #expect(try proxy.psql("set flag users_v2 to off", database: "switchyard").isEmpty)
            #expect(try conn.execute(prepared: "bump", parameters: ["41"]) == [])
            #expect(try cluster.psql("select full_name from users_v2 where id = 41", database: Self.database) == "old-41")
            _ = try cluster.psql("update users_v2 set full_name = 'old-41+' where id = 41", database: Self.database)
            #expect(try proxy.psql("set flag users_v2 to dual_write", database: "switchyard").isEmpty)
            #expect(try conn.execute(prepared: "bump", parameters: ["42"]) == [])
            #expect(try cluster.psql("select full_name from users_v2 where id = 42", database: Self.database) == "old-42+")

            // Reads in between are untouched, prepared or not.
            #expect(try conn.query("select name from users where id = $1", parameters: ["20"]) == [["old-20+"]])
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select full_name from users_v2 where id = 39", database: Self.database) == "old-39+")
        }
    }

    @Test("extended protocol, pipelined: each mirrored write among other statements keeps its own tag; an error ends its batch alone")
    func pipelined() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let client = try RawClient(port: proxy.port)
            _ = client.startup(database: Self.database)
            func run(_ sql: String, _ parameters: [String] = []) -> [UInt8] {
                FrontendMessage.parse(Parse(statementName: "", query: sql)).encoded()
                    + FrontendMessage.bind(Bind(portalName: "", statementName: "", parameters: parameters.map { Array($0.utf8) })).encoded()
                    + FrontendMessage.execute(Execute(portalName: "")).encoded()
            }
            func tags(_ messages: [BackendMessage]) -> [String] {
                messages.compactMap {
                    switch $0 {
                    case let .commandComplete(tag): tag
                    case let .errorResponse(fields): "error \(fields.sqlState ?? "")"
                    case .readyForQuery: "ready"
                    default: nil
                    }
                }
            }
            // One batch of five statements and its Sync; a second whose mirrored write fails (a
            // duplicate key) before a statement the error skips; a third after it; all sent at once.
            client.send(
                run("select 1") + run("update users set name = $1 where id = $2", ["p1", "5"]) + run("insert into users values (500, 'five hundred', now())")
                    + run("update users set name = name || '!' where id in (6, 7)") + run("select 2")
                    + FrontendMessage.sync.encoded()
                    + run("insert into users values (500, 'again', now())") + run("update users set name = 'skipped' where id = 8")
                    + FrontendMessage.sync.encoded()
                    + run("update users set name = 'p9' where id = 9") + FrontendMessage.sync.encoded())
            let answer = RawClient.messages(client.receive(until: { RawClient.messages($0).filter {
                if case .readyForQuery = $0 { true } else { false }
            }.count == 3 }).bytes)
            #expect(tags(answer) == ["SELECT 1", "UPDATE 1", "INSERT 0 1", "UPDATE 2", "SELECT 1", "ready", "error 23505", "ready", "UPDATE 1", "ready"])
            #expect(!answer.contains { if case .dataRow(let row) = $0 { row.values.first??.starts(with: Array("switchyard".utf8)) ?? false } else { false } })
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select full_name from users_v2 where id in (5, 8, 9) order by id", database: Self.database) == "p1\nold-8\np9")
        }
    }

    @Test("RETURNING: the client gets its own rows, columns and tag, in both protocols, and the write is mirrored",
          arguments: [false, true])
    func returning(extended: Bool) throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            let direct = try PQConnection("host=127.0.0.1 port=\(cluster.port) user=postgres dbname=\(Self.database) sslmode=disable")
            func both(_ sql: String) throws -> (tag: String, columns: [String], rows: [[String?]]) {
                try conn.answer(sql, parameters: extended ? [] : nil)
            }
            let inserted = try both("insert into users values (500, 'five hundred', timestamp '2025-05-05') returning id, upper(name), id + 1 as next")
            #expect(inserted.tag == "INSERT 0 1")
            #expect(inserted.columns == ["id", "upper", "next"])
            #expect(inserted.rows == [["500", "FIVE HUNDRED", "501"]])
            let updated = try both("update users u set name = name || '*' where id in (1, 2) returning *")
            #expect(updated.tag == "UPDATE 2")
            #expect(updated.columns == ["id", "name", "created"])
            #expect(Set(updated.rows.map { $0[1] ?? "" }) == ["old-1*", "old-2*"])
            let none = try both("update users set name = 'x' where id = -1 returning id")
            #expect(none.tag == "UPDATE 0")
            #expect(none.columns == ["id"])
            #expect(none.rows.isEmpty)
            let deleted = try both("delete from users where id = 3 returning name, u.*".replacingOccurrences(of: "u.*", with: "users.*"))
            #expect(deleted.tag == "DELETE 1")
            #expect(deleted.columns == ["name", "id", "name", "created"])
            #expect(deleted.rows.first?.first == "old-3")
            // The same statement straight to PostgreSQL answers with the same columns.
            let reference = try direct.answer("update users set name = name where id = -1 returning *, id + 1 as next, users.*")
            let mirrored = try both("update users set name = name where id = -1 returning *, id + 1 as next, users.*")
            #expect(mirrored.columns == reference.columns)
            #expect(mirrored.tag == reference.tag)
            try Self.expectEqual(cluster)
        }
    }

    @Test("forms not mirrored yet keep the client's answer, are recorded as write divergences for every instance, and stop at stage off")
    func notMirroredAndOff() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        let schema = "sy_ctl_dw_\(UInt32.random(in: 0...UInt32.max))"
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster, controlSchema: schema) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            #expect(try conn.query("update users set id = id + 1000 where id = 12 returning id, name") == [["1012", "old-12"]])
            #expect(try conn.query("update users set id = id + 1000 where id = 15 returning id, name") == [["1015", "old-15"]])
            let routing = try proxy.psql("show routing", database: "switchyard")
            #expect(routing.contains("write not mirrored (users_v2): an UPDATE that assigns the key column id with RETURNING is not mirrored yet"), "\(routing)")
            /// What `query` on the control schema answers once it answers `expected`, or after 10 s: the
            /// control thread adds divergences there within a second or so (and may not have created
            /// the schema yet on a loaded machine).
            func stored(_ query: String, _ expected: String) -> String {
                var answer = ""
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline {
                    answer = (try? cluster.psql(query, database: Self.database)) ?? ""
                    if answer == expected { break }
                    usleep(100_000)
                }
                return answer
            }
            let keyChange = "users_v2|2|an UPDATE that assigns the key column id with RETURNING is not mirrored yet"
            #expect(stored("select migration, count, reason from \(schema).write_divergences", keyChange) == keyChange)
            let shown = try proxy.psql("show divergences", database: "switchyard")
            #expect(shown.contains("users_v2|write|"), "\(shown)")
            #expect(shown.contains("|2|an UPDATE that assigns the key column id with RETURNING is not mirrored yet|"), "\(shown)")
            _ = try cluster.psql("update users set id = 15 where id = 1015", database: Self.database)
            _ = try cluster.psql("update users set id = 12 where id = 1012", database: Self.database)

            // A write prepared with SQL PREPARE: the PREPARE and each EXECUTE are recorded, and the
            // client's answers are its own. A PREPARE of a read is not.
            let prepared = "a write prepared with SQL PREPARE is not mirrored (each EXECUTE would change the old table alone); prepare it through the protocol instead"
            #expect(try conn.command("prepare rename_one(int) as update users set name = 'prepared' where id = $1") == "PREPARE")
            #expect(try conn.command("prepare read_one(int) as select name from users where id = $1") == "PREPARE")
            #expect(try conn.command("execute rename_one(20)") == "UPDATE 1")
            #expect(try conn.command("EXECUTE Rename_One (21)") == "UPDATE 1")
            #expect(try conn.query("execute read_one(21)") == [["prepared"]])
            #expect(try conn.command("deallocate rename_one") == "DEALLOCATE")
            #expect(stored("select count from \(schema).write_divergences where reason = '\(prepared)'", "3") == "3", "the PREPARE and its two EXECUTEs")
            #expect(try cluster.psql("select count(*) from users_v2 where full_name = 'prepared'", database: Self.database) == "0")

            #expect(try proxy.psql("set flag users_v2 to off", database: "switchyard").isEmpty)
            #expect(try conn.command("update users set name = 'unmirrored' where id = 14") == "UPDATE 1")
            #expect(try cluster.psql("select full_name from users_v2 where id = 14", database: Self.database) == "old-14")

            // A write prepared before mirroring began is not mirrored after: each EXECUTE of it
            // is recorded once the flag mirrors, EXPLAIN ANALYZE EXECUTE too.
            #expect(try conn.command("prepare late(int) as update users set name = 'late' where id = $1") == "PREPARE")
            #expect(try proxy.psql("set flag users_v2 to dual_write", database: "switchyard").isEmpty)
            #expect(try conn.command("execute late(22)") == "UPDATE 1")
            _ = try conn.query("explain (analyze, costs off, timing off, summary off) execute late(23)")
            #expect(stored("select count from \(schema).write_divergences where reason = '\(prepared)'", "5") == "5",
                    "the two EXECUTEs of a statement prepared before mirroring began")

            // A DEALLOCATE that an error earlier in its Query skipped forgets nothing, and neither
            // does a PREPARE of the name that fails because the name is in use: the write is still
            // prepared on the server, and its next EXECUTEs are recorded.
            #expect(throws: PQConnection.Failure.self) { try conn.command("select 1/0; deallocate late") }
            #expect(try conn.command("execute late(24)") == "UPDATE 1")
            #expect(throws: PQConnection.Failure.self) { try conn.command("prepare late(int) as select $1") }
            #expect(try conn.command("execute late(25)") == "UPDATE 1")
            // The same PREPARE in the extended protocol (Parse, Bind, Execute, Sync).
            #expect(throws: PQConnection.Failure.self) { _ = try conn.command("prepare late as select 1", parameters: []) }
            #expect(try conn.command("execute late(26)") == "UPDATE 1")
            #expect(stored("select count from \(schema).write_divergences where reason = '\(prepared)'", "8") == "8",
                    "the EXECUTEs after a DEALLOCATE that did not run and two PREPAREs that failed")
            // A DEALLOCATE that runs forgets it.
            #expect(try conn.command("deallocate late") == "DEALLOCATE")
        }
    }

    @Test("an UPDATE of the key moves the row in the new table too, in both protocols, prepared, with FROM, and rolls back with the client")
    func keyChanges() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            #expect(try conn.command("update users set id = id + 1000 where id in (20, 21)") == "UPDATE 2")
            #expect(try conn.command("update users u set id = m.to_id, name = 'moved' from (values (22, 2022)) m(from_id, to_id) where u.id = m.from_id")
                    == "UPDATE 1")
            #expect(try conn.command("update users set id = $1 where id = $2", parameters: ["2023", "23"]).tag == "UPDATE 1")
            try conn.prepare("move_key", "update users set id = id + $1::int where id = $2::int")
            for id in 24...26 { #expect(try conn.execute(prepared: "move_key", parameters: ["3000", "\(id)"]).isEmpty) }
            // A key change that is rolled back leaves both tables as they were.
            try conn.query("begin")
            #expect(try conn.command("update users set id = 4027 where id = 27") == "UPDATE 1")
            try conn.query("rollback")
            // Nothing matched: nothing moves.
            #expect(try conn.command("update users set id = id + 1 where id = -5") == "UPDATE 0")
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select string_agg(id::text, ',' order by id) from users_v2 where id in (20, 21, 22, 23, 24, 1020, 1021, 2022, 2023, 3024, 3025, 3026, 27)",
                                     database: Self.database) == "27,1020,1021,2022,2023,3024,3025,3026")
            #expect(try cluster.psql("select full_name from users_v2 where id = 2022", database: Self.database) == "moved")
        }
    }

    @Test("COPY FROM STDIN is mirrored: psql's \\copy in text and CSV, with and without a column list; a bad row fails the whole COPY on both sides")
    func copyFrom() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            /// psql's commands through the proxy with `data` on its standard input: the tags psql prints, or the error.
            func copy(_ commands: String..., data: String) throws -> ProcessResult {
                try runProcess(cluster.psqlPath, ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(proxy.port),
                                                  "-U", "postgres", "-d", Self.database] + commands.flatMap { ["-c", $0] },
                               stdin: data, timeout: .seconds(60))
            }
            let text = try copy("\\copy users from stdin", data: "200\tcopied-200\t2025-01-01 10:00:00\n201\tcopied-201\t2025-01-01 11:00:00\n")
            #expect(text.status == 0 && text.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "COPY 2", "\(text.stdout)\(text.stderr)")
            let csv = try copy("\\copy users (created, id, name) from stdin with (format csv)", data: "2025-02-01 00:00:00,202,\"csv, quoted\"\n")
            #expect(csv.status == 0 && csv.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "COPY 1", "\(csv.stdout)\(csv.stderr)")
            // A row the old table refuses (a duplicate key) fails the COPY: nothing of it lands on either side.
            let bad = try copy("\\copy users from stdin", data: "203\tok\t2025-01-01 00:00:00\n1\tdup\t2025-01-01 00:00:00\n")
            #expect(bad.status != 0 && bad.stderr.contains("duplicate key value violates unique constraint"), "\(bad.stdout)\(bad.stderr)")
            #expect(try cluster.psql("select count(*) from users where id = 203", database: Self.database) == "0")
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select full_name from users_v2 where id = 202", database: Self.database) == "csv, quoted")
            #expect(try cluster.psql("select count(*) from users_v2 where id between 200 and 203", database: Self.database) == "3")
            // The staging table goes with each COPY: two in one transaction work, and roll back together.
            let twice = try copy("begin", "\\copy users (id, name, created) from stdin", "\\copy users (id, name, created) from stdin", "commit",
                                 data: "204\tfirst\t2025-03-01 00:00:00\n\\.\n205\tsecond\t2025-03-01 00:00:00\n\\.\n")
            #expect(twice.status == 0 && twice.stdout.components(separatedBy: "COPY 1").count == 3, "\(twice.stdout)\(twice.stderr)")
            let undone = try copy("begin", "\\copy users (id, name, created) from stdin", "rollback",
                                  data: "206\tundone\t2025-03-01 00:00:00\n\\.\n")
            #expect(undone.status == 0, "\(undone.stderr)")
            #expect(try cluster.psql("select count(*) from users_v2 where id in (204, 205, 206)", database: Self.database) == "2")
            try Self.expectEqual(cluster)
        }
    }

    @Test("a write the new table rejects: applied alone and recorded by default, failed with strict: true")
    func rejectedMirror() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        _ = try cluster.psql("alter table users_v2 add constraint no_bad check (full_name <> 'bad')", database: Self.database)
        defer { _ = try? cluster.psql("alter table users_v2 drop constraint no_bad", database: Self.database) }
        let schema = "sy_ctl_rj_\(UInt32.random(in: 0...UInt32.max))"
        try RoutingTests.withProxy(yaml: Self.yaml, upstreamDatabase: Self.database, cluster: cluster, controlSchema: schema) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            // Autocommit: the client's write goes through alone, as if there were no mirror.
            #expect(try conn.command("update users set name = 'bad' where id = 1") == "UPDATE 1")
            #expect(try cluster.psql("select name from users where id = 1", database: Self.database) == "bad")
            #expect(try cluster.psql("select full_name from users_v2 where id = 1", database: Self.database) == "old-1")
            // The session carries on normally.
            #expect(try conn.command("update users set name = 'good' where id = 2") == "UPDATE 1")
            #expect(try cluster.psql("select full_name from users_v2 where id = 2", database: Self.database) == "good")
            // The client's own error is still its error, and no divergence.
            #expect(throws: PQConnection.Failure.self) { try conn.command("insert into users values (3, 'dup', now())") }
            var stored = ""
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                // The control thread may not have created the schema yet on a loaded machine.
                stored = (try? cluster.psql("select count, reason from \(schema).write_divergences", database: Self.database)) ?? ""
                if !stored.isEmpty { break }
                usleep(100_000)
            }
            #expect(stored.hasPrefix("1|the new table rejected the mirrored write: new row for relation \"users_v2\" violates check constraint \"no_bad\""),
                    "\(stored)")
            // In a transaction block the write fails, as with strict: nothing to retry it in.
            try conn.query("begin")
            #expect(throws: PQConnection.Failure.self) { try conn.command("update users set name = 'bad' where id = 4") }
            try conn.query("rollback")
            #expect(try cluster.psql("select name from users where id = 4", database: Self.database) == "old-4")
        }
        let strictYAML = Self.yaml.replacingOccurrences(of: "    key: [id]\n", with: "    key: [id]\n    strict: true\n")
        try #require(strictYAML.contains("strict: true"))
        try RoutingTests.withProxy(yaml: strictYAML, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            do {
                _ = try conn.command("update users set name = 'bad' where id = 5")
                Issue.record("the strict write succeeded")
            } catch let failure as PQConnection.Failure {
                #expect(failure.sqlState == "23514")
            }
            #expect(try cluster.psql("select name from users where id = 5", database: Self.database) == "old-5")
        }
    }

    @Test("unmirrored_writes: refuse (the default under strict): a form not mirrored fails with 0A000 naming the migration, changes nothing, records nothing")
    func refusedWrites() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        let schema = "sy_ctl_rf_\(UInt32.random(in: 0...UInt32.max))"
        let yaml = Self.yaml.replacingOccurrences(of: "    key: [id]\n", with: "    key: [id]\n    unmirrored_writes: refuse\n")
        try #require(yaml.contains("unmirrored_writes: refuse"))
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster, controlSchema: schema) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            func expectRefused(_ run: () throws -> Void, _ what: String) {
                do {
                    try run()
                    Issue.record("\(what) was not refused")
                } catch let failure as PQConnection.Failure {
                    #expect(failure.sqlState == "0A000", "\(what): \(failure)")
                    #expect(failure.message.contains("migration users_v2 cannot mirror it"), "\(what): \(failure)")
                } catch {
                    Issue.record("\(what): \(error)")
                }
            }
            // Simple protocol: a key change, a MERGE, and a string whose other statement must not run either.
            expectRefused({ _ = try conn.command("update users set id = id + 1000 where id = 12 returning id") }, "a key change with RETURNING")
            expectRefused({ _ = try conn.command("""
                merge into users u using (values (1, 'merged')) v(id, name) on u.id = v.id
                when matched then update set name = v.name
                """) }, "MERGE")
            expectRefused({ _ = try conn.command("update users set name = 'kept?' where id = 3; update users set id = 1013 where id = 13 returning *") },
                          "a string with a refused statement")
            // Extended protocol, with parameters, once and prepared.
            expectRefused({ _ = try conn.command("update users set id = $1 where id = $2 returning id", parameters: ["1014", "14"]) },
                          "extended key change")
            try conn.prepare("move", "update users set id = $1::int where id = $2 returning id")
            for _ in 1...2 { expectRefused({ _ = try conn.execute(prepared: "move", parameters: ["1015", "15"]) }, "prepared key change") }
            // SQL PREPARE of a write, and an EXECUTE of that name.
            expectRefused({ _ = try conn.command("prepare drop_one(int) as delete from users where id = $1") }, "SQL PREPARE of a write")
            // The refused PREPARE prepared nothing: an EXECUTE of its name is PostgreSQL's to answer.
            do {
                _ = try conn.command("execute drop_one(17)")
                Issue.record("EXECUTE of a refused PREPARE succeeded")
            } catch let failure as PQConnection.Failure {
                #expect(failure.sqlState == "26000", "EXECUTE of a refused PREPARE: \(failure)")
            }
            // A name that holds a read keeps it when a PREPARE of a write over it fails: its EXECUTE
            // runs the read, and is not refused for the write that was never prepared.
            _ = try conn.command("prepare look(int) as select name from users where id = $1")
            expectRefused({ _ = try conn.command("prepare look(int, int) as update users set id = $1 where id = $2 returning id") },
                          "a PREPARE of a refused write over a read's name")
            #expect(try conn.query("execute look(4)") == [["old-4"]])
            // The session is fine, and ordinary writes are still mirrored.
            #expect(try conn.command("update users set name = 'after' where id = 16") == "UPDATE 1")
            #expect(try cluster.psql("select count(*) from users where id > 1000 or name in ('merged', 'kept?')", database: Self.database) == "0")
            try Self.expectEqual(cluster)
            // Refused writes changed nothing, so they are no write divergence; SHOW ROUTING says why they failed.
            usleep(1_500_000)
            let stored = (try? cluster.psql("select count(*) from \(schema).write_divergences", database: Self.database)) ?? "0"
            #expect(stored == "0", "\(stored)")
            let routing = try proxy.psql("show routing", database: "switchyard")
            #expect(routing.contains("write refused (users_v2): an UPDATE that assigns the key column id with RETURNING is not mirrored yet"),
                    "\(routing)")
        }
    }

    @Test("shadow reads: sampled reads are answered on both paths and a wrong row is recorded as a read divergence")
    func shadowReads() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        _ = try cluster.psql("update users_v2 set full_name = 'wrong' where id = 7", database: Self.database)
        let yaml = Self.yaml.replacingOccurrences(of: "stage: dual_write", with: "stage: shadow")
            + "\n    shadow_sample: 1\n    shadow: { calibration_percent: 0 }\n"
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            // Clients read the old path at shadow: the comparison happens on the side.
            #expect(try conn.query("select name from users where id = 7") == [["old-7"]])
            #expect(try conn.query("select name from users where id = 8") == [["old-8"]])
            try conn.prepare("by_id", "select id, name from users where id = $1")
            #expect(try conn.execute(prepared: "by_id", parameters: ["7"]) == [["7", "old-7"]])
            #expect(try conn.execute(prepared: "by_id", parameters: ["9"]) == [["9", "old-9"]])
            var shown = ""
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                shown = try proxy.psql("show divergences", database: "switchyard")
                if shown.split(separator: "\n").filter({ $0.contains("|read|") }).count >= 2 { break }
                usleep(100_000)
            }
            let reads = shown.split(separator: "\n").filter { $0.contains("users_v2|read|") }
            #expect(reads.count == 2, "\(shown)")
            #expect(reads.allSatisfy { $0.contains("old 1 rows, new 1 rows") }, "\(shown)")
            let port = try #require(proxy.adminPort)
            let metrics = try httpGet(port: port, path: "/metrics").body
            #expect(metrics.contains("switchyard_shadow_reads_total{outcome=\"divergent\"} 2"), "\(metrics)")
            #expect(metrics.contains("switchyard_shadow_reads_total{outcome=\"same\"} 2"), "\(metrics)")
            #expect(metrics.contains("switchyard_shadow_reads_capped_total 0"), "\(metrics)")
        }
        // With a cap of one sample per query and second, a burst of one query is mostly capped, and counted.
        let capped = yaml.replacingOccurrences(of: "shadow: { calibration_percent: 0 }", with: "shadow: { calibration_percent: 0, max_per_fingerprint_per_second: 1 }")
        try #require(capped.contains("max_per_fingerprint_per_second: 1"))
        try RoutingTests.withProxy(yaml: capped, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            let start = ContinuousClock.now
            for _ in 1...5 { #expect(try conn.query("select name from users where id = 8") == [["old-8"]]) }
            let port = try #require(proxy.adminPort)
            let metrics = try httpGet(port: port, path: "/metrics").body
            // Five reads within a second leave four capped (a slow machine may cross into the next second once).
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("switchyard_shadow_reads_capped_total ") }
            let count = line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
            if ContinuousClock.now - start < .seconds(1) { #expect(count == 4, "\(metrics)") } else { #expect((3...4).contains(count), "\(metrics)") }
        }
    }

    @Test("a guardrail steps a canary back to shadow when shadow reads diverge, for every instance, with the reason in the history")
    func guardrailStepsBack() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        _ = try cluster.psql("update users_v2 set full_name = 'wrong' where id <= 20", database: Self.database)
        let yaml = Self.yaml.replacingOccurrences(of: "stage: dual_write", with: "stage: canary")
            + "\n    shadow_sample: 1\n    shadow: { calibration_percent: 0 }\n    guardrails: { max_divergence_rate: 0.1, min_samples: 5 }\n"
        let schema = "sy_ctl_gr_\(UInt32.random(in: 0...UInt32.max))"
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster, controlSchema: schema) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("set switchyard.cohort = '\(RoutingTests.outside)'")
            for id in 1...10 { #expect(try conn.query("select name from users where id = \(id)") == [["old-\(id)"]]) }
            var stage = ""
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                // The control thread creates the schema shortly after start.
                stage = (try? cluster.psql("select stage from \(schema).flags where name = 'users_v2'", database: Self.database)) ?? ""
                if stage == "shadow" { break }
                usleep(100_000)
            }
            #expect(stage == "shadow")
            let history = try cluster.psql(
                "select from_stage, to_stage, changed_by, why from \(schema).flag_history order by id desc limit 1", database: Self.database)
            #expect(history.hasPrefix("canary|shadow|switchyard guardrail|guardrail: "), "\(history)")
            #expect(history.contains("shadow reads diverged"), "\(history)")
            // The instance follows: its table is at shadow within a second or so.
            var shown = ""
            let follow = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < follow {
                shown = try proxy.psql("show flags", database: "switchyard")
                if shown.contains("|shadow|") { break }
                usleep(100_000)
            }
            #expect(shown.contains("|shadow|"), "\(shown)")
            // One breach, one step-back: no second flip while the first comes back through the control schema.
            usleep(1_000_000)
            #expect(try cluster.psql("select count(*) from \(schema).flag_history where changed_by = 'switchyard guardrail'",
                                     database: Self.database) == "1")
            // The flag says why it is back at shadow, wherever it is shown.
            #expect(shown.contains("|switchyard guardrail: guardrail: ") && shown.contains("shadow reads diverged"), "\(shown)")
            let path = NSTemporaryDirectory() + "switchyard-guardrail-\(UUID().uuidString).yaml"
            try (yaml.replacingOccurrences(of: "127.0.0.1:5432/postgres", with: "127.0.0.1:\(cluster.port)/\(Self.database)")
                + "control:\n  schema: \(schema)\n").write(toFile: path, atomically: true, encoding: .utf8)
            defer { unlink(path) }
            let listed = try runProcess(try switchyardBinaryPath, ["flag", "list", "--config", path])
            #expect(listed.stdout.contains("\tswitchyard guardrail\tguardrail: "), "\(listed.stdout)\(listed.stderr)")
        }
    }

    @Test("at live, writes to the new table are mirrored back into the old one through the inverse mapping; not after")
    func reverseAtLive() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try RoutingTests.withProxy(yaml: Self.yaml.replacingOccurrences(of: "stage: dual_write", with: "stage: live"),
                                   upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            #expect(try conn.command("insert into users_v2 (id, full_name, created_at, tenant_id) values (600, 'six', timestamptz '2025-06-06 12:00+00', 7)")
                    == "INSERT 0 1")
            #expect(try conn.command("update users_v2 set full_name = 'ONE' where id = 1") == "UPDATE 1")
            #expect(try conn.command("delete from users_v2 where id = 2") == "DELETE 1")
            #expect(try conn.answer("update users_v2 set full_name = 'four' where id = 4 returning id, full_name").rows == [["4", "four"]])
            // Writes to the old table are still mirrored forward at live.
            #expect(try conn.command("update users set name = 'five' where id = 5") == "UPDATE 1")
            try Self.expectEqual(cluster)
            #expect(try cluster.psql("select name, created from users where id = 600", database: Self.database) == "six|2025-06-06 12:00:00")

            #expect(try proxy.psql("set flag users_v2 to complete", database: "switchyard").isEmpty)
            #expect(try conn.command("update users_v2 set full_name = 'new only' where id = 1") == "UPDATE 1")
            #expect(try cluster.psql("select name from users where id = 1", database: Self.database) == "ONE")
        }
    }

    @Test("pgbench TPC-B-like on a migrated pgbench_accounts leaves old and new equal, in every query mode")
    func pgbenchTpcb() throws {
        let cluster = try PostgresCluster.shared()
        let database = "sy_dualwrite_pgbench"
        _ = try cluster.psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
        _ = try cluster.psql("CREATE DATABASE \(database)")
        let pgbench = access(cluster.binDirectory + "/pgbench", X_OK) == 0 ? cluster.binDirectory + "/pgbench" : try findExecutable("pgbench")
        let initialise = try runProcess(pgbench, ["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", "postgres", database],
                                        timeout: .seconds(300))
        try #require(initialise.status == 0, "\(initialise.stderr)")
        _ = try cluster.psql("""
            CREATE TABLE pgbench_accounts_v2 AS SELECT aid, bid, abalance AS balance, filler FROM pgbench_accounts;
            ALTER TABLE pgbench_accounts_v2 ADD PRIMARY KEY (aid);
            """, database: database)
        let yaml = """
            upstream: postgresql://switchyard@127.0.0.1:5432/postgres
            migrations:
              - name: accounts_v2
                old: public.pgbench_accounts
                new: public.pgbench_accounts_v2
                key: [aid]
                columns: { aid: aid, bid: bid, abalance: balance, filler: filler }
            flags:
              - name: accounts_v2
                migration: accounts_v2
                stage: dual_write
            """
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: database, cluster: cluster) { proxy in
            for mode in ["simple", "extended", "prepared"] {
                let run = try runProcess(pgbench, ["-n", "-M", mode, "-c", "4", "-j", "2", "-t", "150",
                                                   "-h", "127.0.0.1", "-p", String(proxy.port), "-U", "postgres", database],
                                         timeout: .seconds(300))
                #expect(run.status == 0, "\(mode): \(run.stdout)\(run.stderr)")
                #expect(run.stdout.contains("number of failed transactions: 0"), "\(mode): \(run.stdout)")
            }
        }
        let differing = try cluster.psql("""
            select count(*) from (
              (select aid, bid, abalance, filler from pgbench_accounts except select aid, bid, balance, filler from pgbench_accounts_v2)
              union all
              (select aid, bid, balance, filler from pgbench_accounts_v2 except select aid, bid, abalance, filler from pgbench_accounts)) d
            """, database: database)
        #expect(differing == "0")
        // The runs changed balances (1,800 transactions), so equality is not the initial state's.
        #expect(try cluster.psql("select count(*) from pgbench_accounts_v2 where balance <> 0", database: database) != "0")
    }
}
