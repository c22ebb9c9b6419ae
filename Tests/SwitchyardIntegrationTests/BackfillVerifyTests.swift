// `switchyard backfill` and `switchyard verify` against a real PostgreSQL: copy, prove, resume, refuse, race.
import Foundation
import Glibc
import Synchronization
import SwitchyardTestSupport
import Testing

@Suite("switchyard backfill and verify", .serialized)
struct BackfillVerifyTests {
    /// A database of this suite's own, so it runs in parallel with the other suites.
    static let database = "sy_backfill"

    /// One migration with its own tables, control schema and configuration file: orders (composite key
    /// region, id) to orders_v2 with id renamed to order_id and widened, amount cast to cents, a quoted
    /// mixed-case column, a timestamp turned into timestamptz, and an extra column with no old counterpart.
    final class Scenario: Sendable {
        let cluster: PostgresCluster
        let name: String
        let schema: String
        let configPath: String
        var old: String { "\(name)_orders" }
        var new: String { "\(name)_orders_v2" }

        /// The forward mapping as SQL over the old row, for the writers that mirror as the dual-write will.
        static let forwardSelect = "region, id, (amount * 100)::bigint, \"Note\", placed AT TIME ZONE 'UTC', 'legacy'"

        /// `controlDatabase` puts the control schema in another database of the cluster than the relations.
        init(_ name: String, stage: String = "dual_write", rows: Int = 10_000, controlDatabase: String? = nil) throws {
            cluster = try PostgresCluster.shared()
            self.name = name
            schema = "sy_ctl_\(name)_\(UInt32.random(in: 0...UInt32.max))"
            configPath = NSTemporaryDirectory() + "switchyard-\(name)-\(UUID().uuidString).yaml"
            _ = try? cluster.psql("create database \(BackfillVerifyTests.database)")
            _ = try cluster.psql("""
                drop table if exists \(name)_orders, \(name)_orders_v2;
                create table \(name)_orders (region text, id int, amount numeric(10,2), "Note" text, placed timestamp,
                                             primary key (region, id));
                create table \(name)_orders_v2 (region text, order_id bigint, amount_cents bigint, "Note" text,
                                                placed_at timestamptz, source text not null, primary key (region, order_id));
                insert into \(name)_orders
                select (array['ap', 'eu', 'us'])[i % 3 + 1], i, round((i % 1000) / 7.0, 2),
                       case when i % 10 = 0 then null else 'note ' || i end,
                       timestamp '2024-01-01' + i * interval '1 minute'
                from generate_series(1, \(rows)) i;
                analyze \(name)_orders;
                """, database: BackfillVerifyTests.database)
            let yaml = """
                upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/\(BackfillVerifyTests.database)
                migrations:
                  - name: \(name)
                    old: public.\(name)_orders
                    new: public.\(name)_orders_v2
                    key: [region, id]
                    columns:
                      region: region
                      id: order_id
                      amount: { new: amount_cents, forward: "(amount * 100)::bigint", inverse: "amount_cents / 100.0" }
                      '"Note"': '"Note"'
                      placed: { new: placed_at, forward: "placed AT TIME ZONE 'UTC'", inverse: "placed_at AT TIME ZONE 'UTC'" }
                    extra_new_columns:
                      source: "'legacy'"
                flags:
                  - name: \(name)
                    migration: \(name)
                    stage: \(stage)
                control:
                  schema: \(schema)
                """ + (controlDatabase.map { "\n  database: postgresql://switchyard@127.0.0.1:\(cluster.port)/\($0)\n" } ?? "\n")
            try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        }

        deinit {
            unlink(configPath)
        }

        func run(_ command: String, _ arguments: [String] = [], timeout: Duration = .seconds(120)) throws -> ProcessResult {
            try runProcess(try switchyardBinaryPath, [command, name, "--config", configPath] + arguments, timeout: timeout)
        }

        func psql(_ sql: String) throws -> String {
            try cluster.psql(sql, database: BackfillVerifyTests.database)
        }

        var connectionString: String {
            "host=127.0.0.1 port=\(cluster.port) dbname=\(BackfillVerifyTests.database) user=postgres"
        }

        func dropAll() {
            _ = try? psql("drop table if exists \(old), \(new); drop schema if exists \(schema) cascade")
        }
    }

    /// "... (61721 rows/s)" -> 61721.
    static func rowsPerSecond(_ summary: String) -> Int? {
        guard let open = summary.range(of: " s ("), let close = summary.range(of: " rows/s)") else { return nil }
        return Int(summary[open.upperBound..<close.lowerBound])
    }

    @Test("backfill copies 10,000 rows through the mapping; verify proves it, then names a changed, a deleted and an extra key")
    func copyVerifyAndDiff() throws {
        let s = try Scenario("bf_copy")
        defer { s.dropAll() }
        let backfill = try s.run("backfill")
        #expect(backfill.status == 0, "\(backfill.stdout)\(backfill.stderr)")
        #expect(backfill.stdout.hasPrefix("backfill bf_copy: finished: 10000 rows read, 10000 inserted, 0 skipped (already present), "),
                "\(backfill.stdout)")
        print("backfill of 10,000 rows: \(backfill.stdout.trimmingCharacters(in: .newlines)); "
              + "\(Self.rowsPerSecond(backfill.stdout).map(String.init) ?? "?") rows/s")

        // The mapping: renamed and widened key, cents, NULLs kept, timestamp to timestamptz, the extra column filled.
        #expect(try s.psql("select count(*), count(\"Note\"), count(*) filter (where source = 'legacy') from \(s.new)") == "10000|9000|10000")
        #expect(try s.psql("""
            select amount_cents, "Note", placed_at = timestamptz '2024-01-01 05:03:00+00' from \(s.new) where region = 'ap' and order_id = 303
            """) == "4329|note 303|t")
        #expect(try s.psql("select \"Note\" is null from \(s.new) where region = 'eu' and order_id = 10") == "t")
        #expect(try s.psql("""
            select last_key, rows_read, rows_inserted, finished_at is not null from \(s.schema).backfill_progress where migration = 'bf_copy'
            """) == "{us,9998}|10000|10000|t")

        let verify = try s.run("verify")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.hasPrefix("verify bf_copy: EQUAL: 10 chunks, 10000 old rows, 10000 new rows, "), "\(verify.stdout)")
        #expect(try s.psql("""
            select chunks, rows_old, rows_new, differing_chunks, differing_keys, sample_keys, equal, finished_at >= started_at
            from \(s.schema).verify_runs where migration = 'bf_copy'
            """) == "10|10000|10000|0|0|[]|t|t")

        // Running again after the end copies nothing; --restart reads everything again and keeps what is there.
        let again = try s.run("backfill")
        #expect(again.status == 0)
        #expect(again.stdout.hasPrefix("backfill bf_copy: finished: 0 rows read, 0 inserted, 0 skipped (already present), 1 batches"),
                "\(again.stdout)")
        let restart = try s.run("backfill", ["--restart"])
        #expect(restart.status == 0)
        #expect(restart.stdout.hasPrefix("backfill bf_copy: finished: 10000 rows read, 0 inserted, 10000 skipped (already present)"),
                "\(restart.stdout)")
        #expect(try s.psql("select count(*) from \(s.new)") == "10000")

        // One row changed (a value set to NULL), one deleted, one extra beyond every old key (the open last chunk).
        _ = try s.psql("""
            update \(s.new) set "Note" = null where region = 'ap' and order_id = 303;
            delete from \(s.new) where region = 'us' and order_id = 4001;
            insert into \(s.new) values ('zz', 1, 100, 'extra', now(), 'manual');
            """)
        let different = try s.run("verify")
        #expect(different.status == 1, "\(different.stdout)\(different.stderr)")
        let lines = different.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("verify bf_copy: DIFFERENT: 10 chunks, 10000 old rows, 10000 new rows, 3 differing chunks, "
                                        + "3 differing keys, ") == true, "\(different.stdout)")
        #expect(Array(lines.dropFirst()) == ["  different: (ap, 303)", "  missing in new: (us, 4001)", "  extra in new: (zz, 1)"])
        #expect(try s.psql("""
            select differing_chunks, differing_keys, sample_keys, equal from \(s.schema).verify_runs order by id desc limit 1
            """) == """
            3|3|[{"key": ["ap", "303"], "kind": "different"}, {"key": ["us", "4001"], "kind": "missing_in_new"}, \
            {"key": ["zz", "1"], "kind": "extra_in_new"}]|f
            """)

        // Bounded: one key named, every differing chunk still counted.
        let bounded = try s.run("verify", ["--max-keys", "1", "--chunk-size", "100"])
        #expect(bounded.status == 1)
        #expect(bounded.stdout.contains("100 chunks, 10000 old rows, 10000 new rows, 3 differing chunks, at least 1 differing keys"),
                "\(bounded.stdout)")
        #expect(bounded.stdout.contains("  different: (ap, 303)\n  (keys named up to --max-keys 1)\n"), "\(bounded.stdout)")
    }

    @Test("a backfill stopped after some batches continues from its checkpoint and ends equal")
    func resumeFromCheckpoint() throws {
        let s = try Scenario("bf_resume")
        defer { s.dropAll() }
        let first = try s.run("backfill", ["--max-batches", "3", "--batch-size", "500", "--target-batch-ms", "0", "--log-every", "1"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.hasPrefix("backfill bf_resume: stopped after --max-batches 3: 1500 rows read, 1500 inserted, "),
                "\(first.stdout)")
        #expect(first.stdout.contains("; run it again to continue after (ap, 4500)"), "\(first.stdout)")
        // Without a terminal, progress is a structured log line per batch here.
        #expect(first.stderr.contains("msg=\"backfill progress\""), "\(first.stderr)")
        #expect(first.stderr.contains("rows_read=1500"), "\(first.stderr)")
        #expect(try s.psql("select count(*) from \(s.new)") == "1500")
        #expect(try s.psql("""
            select last_key, rows_read, batches, finished_at is null from \(s.schema).backfill_progress where migration = 'bf_resume'
            """) == "{ap,4500}|1500|3|t")

        let rest = try s.run("backfill", ["--batch-size", "500", "--target-batch-ms", "0"])
        #expect(rest.status == 0, "\(rest.stdout)\(rest.stderr)")
        #expect(rest.stdout.hasPrefix("backfill bf_resume: finished: 8500 rows read, 8500 inserted, 0 skipped (already present), 18 batches"),
                "\(rest.stdout)")
        #expect(rest.stdout.contains("; since the backfill began: 10000 read, 10000 inserted, 21 batches"), "\(rest.stdout)")
        let verify = try s.run("verify")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("EQUAL"))
    }

    @Test("a backfill killed mid-run loses nothing: its checkpoint committed with its rows, and the next run finishes")
    func resumeAfterKill() throws {
        let s = try Scenario("bf_kill")
        defer { s.dropAll() }
        let log = NSTemporaryDirectory() + "switchyard-bf_kill-\(UUID().uuidString).log"
        defer { unlink(log) }
        let child = try ChildProcess.start(
            executable: try switchyardBinaryPath,
            arguments: ["backfill", s.name, "--config", s.configPath, "--batch-size", "100", "--target-batch-ms", "0",
                        "--rows-per-second", "2000"],
            stdoutPath: log)
        let deadline = ContinuousClock.now + .seconds(20)
        var batches = 0
        while ContinuousClock.now < deadline, batches < 5, child.isRunning {
            batches = Int((try? s.psql("select batches from \(s.schema).backfill_progress where migration = 'bf_kill'")) ?? "") ?? 0
            usleep(50_000)
        }
        #expect(batches >= 5)
        #expect(child.sendSignal(SIGKILL))
        #expect(child.waitForExit(timeout: .seconds(10)) != nil)

        // Exactly the rows up to the checkpoint are there, and the counts say so.
        let progress = try s.psql("""
            select p.rows_inserted = (select count(*) from \(s.new)),
                   (select count(*) from \(s.old) o where (o.region, o.id) <= (p.last_key[1], p.last_key[2]::int)) = p.rows_read,
                   p.rows_read < 10000
            from \(s.schema).backfill_progress p where migration = 'bf_kill'
            """)
        #expect(progress == "t|t|t")

        let rest = try s.run("backfill")
        #expect(rest.status == 0, "\(rest.stdout)\(rest.stderr)")
        #expect(rest.stdout.contains("since the backfill began: 10000 read, 10000 inserted"), "\(rest.stdout)")
        let verify = try s.run("verify")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    @Test("with the control schema in another database, the checkpoint follows each batch and the results land there")
    func separateControlDatabase() throws {
        let s = try Scenario("bf_apart", rows: 2000, controlDatabase: "postgres")
        defer {
            s.dropAll()
            _ = try? s.cluster.psql("drop schema if exists \(s.schema) cascade")
        }
        let first = try s.run("backfill", ["--max-batches", "2", "--batch-size", "300", "--target-batch-ms", "0"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(try s.cluster.psql("select rows_read, rows_inserted, batches from \(s.schema).backfill_progress") == "600|600|2")
        #expect(try s.psql("select count(*) from \(s.new)") == "600")
        // Nothing of Switchyard's in the relations' database.
        #expect(try s.psql("select count(*) from pg_namespace where nspname = '\(s.schema)'") == "0")
        let rest = try s.run("backfill")
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stdout.contains("since the backfill began: 2000 read, 2000 inserted"), "\(rest.stdout)")
        let verify = try s.run("verify")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(try s.cluster.psql("select equal, rows_old from \(s.schema).verify_runs") == "t|2000")
    }

    @Test("backfill refuses while the flag is before dual_write, and --force overrides it")
    func refusedBeforeDualWrite() throws {
        let s = try Scenario("bf_off", stage: "off", rows: 100)
        defer { s.dropAll() }
        let refused = try s.run("backfill")
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("refusing to backfill bf_off: its flag bf_off is at stage off; rows the application changes "
                                        + "before every Switchyard instance mirrors writes into public.bf_off_orders_v2 would be lost"),
                "\(refused.stderr)")
        #expect(refused.stderr.contains("switchyard flag set bf_off dual_write"))
        #expect(try s.psql("select count(*) from \(s.new)") == "0")

        let forced = try s.run("backfill", ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("backfill forced before dual_write"))
        #expect(try s.psql("select count(*) from \(s.new)") == "100")

        // Later stages are fine too.
        let set = try runProcess(try switchyardBinaryPath, ["flag", "set", "bf_off", "canary", "5", "--config", s.configPath])
        #expect(set.status == 0)
        #expect(try s.run("backfill").status == 0)
    }

    @Test("usage and database errors have their own exit statuses")
    func exitStatuses() throws {
        let s = try Scenario("bf_exit", rows: 10)
        defer { s.dropAll() }
        let binary = try switchyardBinaryPath
        let unknown = try runProcess(binary, ["verify", "nope", "--config", s.configPath])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown migration nope; the configuration defines bf_exit"))
        #expect(try s.run("backfill", ["--batch-size", "0"]).status == 2)
        #expect(try s.run("backfill", ["--batch-size", "many"]).status == 2)
        #expect(try s.run("verify", ["--chunk-size", "0"]).status == 2)
        let badUpstream = "postgresql://switchyard@127.0.0.1:\(s.cluster.port)/sy_no_such_database"
        let verify = try s.run("verify", ["--upstream", badUpstream])
        #expect(verify.status == 3, "\(verify.stderr)")
        #expect(verify.stderr.contains("sy_no_such_database"))
        #expect(try s.run("backfill", ["--upstream", badUpstream]).status == 1)
        // A row the new relation rejects fails its batch, named by its key range, and nothing of the batch stays.
        _ = try s.psql("alter table \(s.new) alter column \"Note\" set not null")
        let rejected = try s.run("backfill")
        #expect(rejected.status == 1)
        #expect(rejected.stderr.contains("switchyard: backfill bf_exit: the batch after the first key (up to 1000 rows) failed: "
                                         + "null value in column \"Note\" of relation \"bf_exit_orders_v2\" violates not-null constraint "
                                         + "(SQLSTATE 23502)"), "\(rejected.stderr)")
        #expect(try s.psql("select count(*) from \(s.new)") == "0")
        _ = try s.psql("alter table \(s.new) alter column \"Note\" drop not null")
        _ = try s.psql("alter table \(s.new) rename column source to origin")
        let missing = try s.run("verify")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("public.bf_exit_orders_v2 has no column source"), "\(missing.stderr)")
    }

    @Test("load pauses: while too many sessions are active the backfill waits, and gives up past --max-pause")
    func loadPause() throws {
        let s = try Scenario("bf_pause", rows: 1000)
        defer { s.dropAll() }
        // The flag reaches dual_write before the sleepers' transactions begin, so the backfill does not wait
        // for them as for writes from before dual_write (see the next test), only for load.
        #expect(try runProcess(try switchyardBinaryPath, ["flag", "list", "--config", s.configPath]).status == 0)
        usleep(1_200_000)
        // Two sessions busy in pg_sleep make at least two active sessions, whatever else runs on the server.
        let sleepers = try (0..<2).map { _ in try PQConnection(s.connectionString) }
        let threads = sleepers.map { connection in
            let thread = Thread { _ = try? connection.query("select pg_sleep(30)") }
            thread.start()
            return thread
        }
        defer {
            for connection in sleepers { _ = connection.cancel() }
            _ = threads
        }
        let active = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < active,
              (Int((try? s.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")) ?? "") ?? 0) < 2 {
            usleep(20_000)
        }
        let began = ContinuousClock.now
        let gaveUp = try s.run("backfill", ["--max-active-sessions", "1", "--pause-ms", "100", "--max-pause", "1s"])
        let took = ContinuousClock.now - began
        #expect(gaveUp.status == 1, "\(gaveUp.stdout)\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("msg=\"backfill paused\""), "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("more than max_active_sessions 1"), "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("gave up: paused for load 1s in total, and waiting longer would pass the --max-pause limit of 1s"),
                "\(gaveUp.stderr)")
        #expect(took >= .seconds(1) && took < .seconds(30))
        #expect(try s.psql("select count(*) from \(s.new)") == "0")
        for connection in sleepers { _ = connection.cancel() }
        // Once the load is gone it runs through.
        let done = try s.run("backfill", ["--max-active-sessions", "1", "--pause-ms", "100", "--max-pause", "20s"])
        #expect(done.status == 0, "\(done.stderr)")
    }

    @Test("backfill first waits for transactions that began before dual_write took effect")
    func waitsForOlderTransactions() throws {
        let s = try Scenario("bf_fence", stage: "off", rows: 100)
        defer { s.dropAll() }
        let binary = try switchyardBinaryPath
        #expect(try runProcess(binary, ["flag", "list", "--config", s.configPath]).status == 0)
        // A transaction open since before the flip: its session would take up dual_write only at its next one.
        let open = try PQConnection(s.connectionString)
        try open.query("begin")
        try open.query("select 1")
        usleep(20_000)
        #expect(try runProcess(binary, ["flag", "set", s.name, "dual_write", "--config", s.configPath]).status == 0)
        let gaveUp = try s.run("backfill", ["--max-pause", "1500ms", "--pause-ms", "100"])
        #expect(gaveUp.status == 1, "\(gaveUp.stdout)\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("msg=\"backfill waiting for writes from before dual_write\""), "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("gave up: 1 transactions that began before dual_write took effect"), "\(gaveUp.stderr)")
        #expect(try s.psql("select count(*) from \(s.new)") == "0")
        try open.query("commit")
        let done = try s.run("backfill")
        #expect(done.status == 0, "\(done.stderr)")
        #expect(try s.psql("select count(*) from \(s.new)") == "100")
    }

    @Test("backfill racing dual-writes: no deleted row comes back, no update is lost, verify is EQUAL")
    func raceWithDualWrites() throws {
        let s = try Scenario("bf_race")
        defer { s.dropAll() }
        let log = NSTemporaryDirectory() + "switchyard-bf_race-\(UUID().uuidString).log"
        defer { unlink(log) }
        // Small batches under a rate cap, so the copy takes about four seconds and the writers overlap it.
        let child = try ChildProcess.start(
            executable: try switchyardBinaryPath,
            arguments: ["backfill", s.name, "--config", s.configPath, "--batch-size", "200", "--target-batch-ms", "0",
                        "--rows-per-second", "2500"],
            stdoutPath: log)
        let began = ContinuousClock.now
        let failures = Mutex<[String]>([])
        let operations = Mutex<[String: Int]>([:])
        let threads = (0..<4).map { writer in
            let thread = Thread {
                do {
                    let counts = try Self.write(s, writer: writer, while: { child.isRunning })
                    operations.withLock { $0.merge(counts) { $0 + $1 } }
                } catch {
                    failures.withLock { $0.append("writer \(writer): \(error)") }
                }
            }
            thread.start()
            return thread
        }
        let status = child.waitForExit(timeout: .seconds(90))
        let backfillTook = ContinuousClock.now - began
        // The writers stop on their own once the backfill has exited (or after 500 operations or 20 s each).
        let writersDone = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < writersDone, operations.withLock({ $0["done"] ?? 0 }) + failures.withLock({ $0.count }) < 4 {
            usleep(20_000)
        }
        _ = threads
        #expect(status == 0, "\(child.outputTail())")
        #expect(failures.withLock { $0 } == [])
        let counts = operations.withLock { $0 }
        #expect((counts["update"] ?? 0) > 50 && (counts["delete"] ?? 0) > 20 && (counts["insert"] ?? 0) > 20, "\(counts)")
        #expect(backfillTook >= .seconds(2), "the backfill must run long enough to overlap the writers: \(backfillTook)")
        print("race: backfill took \(backfillTook) while the writers did \(counts)")

        let verify = try s.run("verify", ["--chunk-size", "500"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("EQUAL"), "\(verify.stdout)")
        // And directly: every deleted key is gone from both sides, every surviving row matches.
        #expect(try s.psql("""
            select count(*) from \(s.new) n where not exists (select 1 from \(s.old) o where o.region = n.region and o.id = n.order_id)
            """) == "0")
    }

    @Test("backfill racing the proxy's one-statement mirrors: copies that a DELETE's mirror missed are removed, verify is EQUAL")
    func raceWithMirroredStatements() throws {
        let s = try Scenario("bf_orphan", rows: 20_000)
        defer { s.dropAll() }
        let log = NSTemporaryDirectory() + "switchyard-bf_orphan-\(UUID().uuidString).log"
        defer { unlink(log) }
        // Small batches under a rate cap: about 100 batches over four seconds, each holding its rows for a while.
        let child = try ChildProcess.start(
            executable: try switchyardBinaryPath,
            arguments: ["backfill", s.name, "--config", s.configPath, "--batch-size", "200", "--target-batch-ms", "0",
                        "--rows-per-second", "5000"],
            stdoutPath: log)
        let began = ContinuousClock.now
        let failures = Mutex<[String]>([])
        let operations = Mutex<[String: Int]>([:])
        let writers = 6
        let threads = (0..<writers).map { writer in
            let thread = Thread {
                do {
                    let counts = try Self.writeMirrored(s, writer: writer, while: { child.isRunning })
                    operations.withLock { $0.merge(counts) { $0 + $1 } }
                } catch {
                    failures.withLock { $0.append("writer \(writer): \(error)") }
                }
            }
            thread.start()
            return thread
        }
        let status = child.waitForExit(timeout: .seconds(90))
        let backfillTook = ContinuousClock.now - began
        let writersDone = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < writersDone,
              operations.withLock({ $0["done"] ?? 0 }) + failures.withLock({ $0.count }) < writers {
            usleep(20_000)
        }
        _ = threads
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(child.outputTail())")
        #expect(failures.withLock { $0 } == [])
        let counts = operations.withLock { $0 }
        #expect((counts["update"] ?? 0) > 100 && (counts["delete"] ?? 0) > 100 && (counts["insert"] ?? 0) > 50, "\(counts)")
        #expect(backfillTook >= .seconds(2), "the backfill must run long enough to overlap the writers: \(backfillTook)")

        // The race did happen, and what it left was removed: counted in the summary, the checkpoint and the log.
        let removed = Int(try s.psql("select orphans_removed from \(s.schema).backfill_progress where migration = '\(s.name)'")) ?? 0
        let summary = output.split(separator: "\n").first { $0.hasPrefix("backfill \(s.name): finished: ") }.map(String.init) ?? ""
        print("orphans: backfill took \(backfillTook) while the writers did \(counts); \(removed) orphans removed")
        #expect(removed > 0, "no DELETE raced a batch, so this run proves nothing: \(output.suffix(2_000))")
        #expect(summary.contains(" batches, \(removed) orphans removed, "), "\(summary)")
        #expect(output.contains("msg=\"backfill removed orphaned rows\""), "\(output.suffix(2_000))")
        #expect(try s.psql("""
            select cleaned_through = last_key from \(s.schema).backfill_progress where migration = '\(s.name)'
            """) == "t")

        let verify = try s.run("verify", ["--chunk-size", "1000"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("EQUAL"), "\(verify.stdout)")
        #expect(try s.psql("""
            select count(*) from \(s.new) n where not exists (select 1 from \(s.old) o where o.region = n.region and o.id = n.order_id)
            """) == "0")
    }

    @Test("the orphan cleanup waits for transactions older than the batches, leaves what it could not do to the next run, and stays within the copied keys")
    func orphanCleanupWaitsAndResumes() throws {
        let s = try Scenario("bf_sweep", rows: 1000)
        defer { s.dropAll() }
        // New rows without an old row: one among the keys the backfill copies, one past its last key.
        _ = try s.psql("""
            insert into \(s.new) values ('ap', 5, 100, 'orphan', now(), 'manual'), ('us', 5000, 100, 'beyond', now(), 'manual')
            """)
        // The flag settles first, so the backfill does not wait for the transaction below as one from before dual_write.
        #expect(try runProcess(try switchyardBinaryPath, ["flag", "list", "--config", s.configPath]).status == 0)
        usleep(1_200_000)
        let open = try PQConnection(s.connectionString)
        try open.query("begin")
        try open.query("select 1")

        let gaveUp = try s.run("backfill", ["--batch-size", "400", "--target-batch-ms", "0", "--max-pause", "1s", "--pause-ms", "100"])
        #expect(gaveUp.status == 1, "\(gaveUp.stdout)\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("msg=\"backfill waiting for transactions older than its last batches\""), "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("gave up: the orphan cleanup of the keys from the first key up to (us, 998) could not run "
                                       + "within --max-pause 1s: transactions that began before the last batches committed were still open"),
                "\(gaveUp.stderr)")
        #expect(try s.psql("select count(*) from \(s.new)") == "1002")
        #expect(try s.psql("""
            select last_key, cleaned_through is null, orphans_removed, finished_at is not null
            from \(s.schema).backfill_progress where migration = 'bf_sweep'
            """) == "{us,998}|t|0|t")

        try open.query("commit")
        let rest = try s.run("backfill")
        #expect(rest.status == 0, "\(rest.stdout)\(rest.stderr)")
        #expect(rest.stdout.hasPrefix("backfill bf_sweep: finished: 0 rows read, 0 inserted, 0 skipped (already present), 1 batches, "
                                      + "1 orphans removed, "), "\(rest.stdout)")
        #expect(rest.stdout.contains("; since the backfill began: 1000 read, 1000 inserted, 4 batches, 1 orphans removed"), "\(rest.stdout)")
        #expect(rest.stderr.contains("msg=\"backfill removed orphaned rows\""), "\(rest.stderr)")
        #expect(rest.stderr.contains("keys=\"from the first key up to (us, 998)\""), "\(rest.stderr)")
        #expect(try s.psql("select region || ':' || order_id from \(s.new) where source = 'manual'") == "us:5000")
        #expect(try s.psql("""
            select cleaned_through = last_key, orphans_removed from \(s.schema).backfill_progress where migration = 'bf_sweep'
            """) == "t|1")
        // The row past the last copied key is no orphan of the backfill's making; verify still names it.
        let verify = try s.run("verify")
        #expect(verify.status == 1, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("  extra in new: (us, 5000)\n"), "\(verify.stdout)")
        #expect(!verify.stdout.contains("(ap, 5)"), "\(verify.stdout)")

        // --restart begins the cleanup count and bound again with the copy.
        let restart = try s.run("backfill", ["--restart"])
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(try s.psql("""
            select cleaned_through = last_key, orphans_removed, rows_read from \(s.schema).backfill_progress where migration = 'bf_sweep'
            """) == "t|0|1000")
    }

    @Test("a mapping of key columns only: the cleanup locks the old relation before its snapshot, only when there is a row to remove")
    func orphanCleanupKeyOnly() throws {
        let cluster = try PostgresCluster.shared()
        let schema = "sy_ctl_bf_pairs_\(UInt32.random(in: 0...UInt32.max))"
        let configPath = NSTemporaryDirectory() + "switchyard-bf_pairs-\(UUID().uuidString).yaml"
        defer { unlink(configPath) }
        _ = try? cluster.psql("create database \(Self.database)")
        func psql(_ sql: String) throws -> String { try cluster.psql(sql, database: Self.database) }
        defer { _ = try? psql("drop table if exists bf_pairs, bf_pairs_v2; drop schema if exists \(schema) cascade") }
        _ = try psql("""
            drop table if exists bf_pairs, bf_pairs_v2;
            create table bf_pairs (team int, member int, primary key (team, member));
            create table bf_pairs_v2 (team int, member_id bigint, primary key (team, member_id));
            insert into bf_pairs select i % 7, i from generate_series(1, 300) i;
            insert into bf_pairs_v2 values (3, 100000);
            """)
        try """
            upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/\(Self.database)
            migrations:
              - name: bf_pairs
                old: public.bf_pairs
                new: public.bf_pairs_v2
                key: [team, member]
                columns:
                  team: team
                  member: member_id
            flags:
              - name: bf_pairs
                migration: bf_pairs
                stage: dual_write
            control:
              schema: \(schema)

            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let binary = try switchyardBinaryPath
        let first = try runProcess(binary, ["backfill", "bf_pairs", "--config", configPath, "--max-batches", "1", "--batch-size", "100",
                                            "--target-batch-ms", "0"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        // The first batch's keys hold no orphan: nothing removed, and the probe spared the lock.
        #expect(first.stdout.contains(" 1 batches, 0 orphans removed, "), "\(first.stdout)")
        #expect(!first.stderr.contains("orphan cleanup locks the old relation"), "\(first.stderr)")
        let rest = try runProcess(binary, ["backfill", "bf_pairs", "--config", configPath])
        #expect(rest.status == 0, "\(rest.stdout)\(rest.stderr)")
        #expect(rest.stdout.contains(" 1 orphans removed, "), "\(rest.stdout)")
        #expect(rest.stderr.contains("msg=\"backfill orphan cleanup locks the old relation\""), "\(rest.stderr)")
        #expect(try psql("select count(*), count(*) filter (where member_id = 100000) from bf_pairs_v2") == "300|0")
        let verify = try runProcess(binary, ["verify", "bf_pairs", "--config", configPath])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    /// What the proxy sends for a client's write while it dual-writes, through libpq straight to
    /// PostgreSQL: the client's statement and its mirror as one statement, in the exact form `WriteMirror`
    /// gives (a data-modifying CTE, the delete by key or the upsert of every mapped column, the marker row).
    /// Each in autocommit, as a client's single statement. Deletes and updates go mostly to the rows the
    /// next batch locks; inserts bring back deleted keys and add new ones past the end.
    static func writeMirrored(_ s: Scenario, writer: Int, while running: () -> Bool) throws -> [String: Int] {
        let connection = try PQConnection(s.connectionString)
        var random = SplitMix64(seed: UInt64(0x0C1E_A2 + writer))
        var counts: [String: Int] = [:]
        let alias = s.old
        let upsert = """
            INSERT INTO public.\(s.new) (region, order_id, amount_cents, "Note", placed_at, source) \
            SELECT \(Scenario.forwardSelect) FROM switchyard_rows AS \(alias) \
            ON CONFLICT (region, order_id) DO UPDATE SET amount_cents = EXCLUDED.amount_cents, "Note" = EXCLUDED."Note", \
            placed_at = EXCLUDED.placed_at
            """
        let delete = """
            WITH switchyard_rows AS (delete from \(s.old) where region = $1 and id = $2::int RETURNING \(alias).region, \(alias).id), \
            switchyard_mirror AS (DELETE FROM public.\(s.new) WHERE (region, order_id) IN \
            (SELECT \(alias).region, \(alias).id FROM switchyard_rows AS \(alias))) \
            SELECT 'm:DELETE ' || count(*) AS switchyard_mirrored_x FROM switchyard_rows
            """
        let update = """
            WITH switchyard_rows AS (update \(s.old) set amount = amount + 1, "Note" = $3 where region = $1 and id = $2::int \
            RETURNING \(alias).*), switchyard_mirror AS (\(upsert)) \
            SELECT 'm:UPDATE ' || count(*) AS switchyard_mirrored_x FROM switchyard_rows
            """
        let insert = """
            WITH switchyard_rows AS (insert into \(s.old) values ($1, $2::int, 1.25, $3, timestamp '2025-06-01 12:00') \
            on conflict do nothing RETURNING \(alias).*), switchyard_mirror AS (\(upsert)) \
            SELECT 'm:INSERT 0 ' || count(*) AS switchyard_mirrored_x FROM switchyard_rows
            """
        let checkpoint = "select last_key[1], last_key[2] from \(s.schema).backfill_progress where migration = $1"
        let started = ContinuousClock.now
        let deadline = started + .seconds(20)
        var done = 0
        while done < 600, ContinuousClock.now < deadline, running() {
            var region = ["ap", "eu", "us"][Int(random.next() % 3)]
            var id = String(1 + random.next() % 20_500)
            // Three changes in four land in the 150 keys after the checkpoint, which the batch in flight (or
            // the next) locks. Keys of a region step by 3.
            if random.next() % 4 != 0, let row = (try? connection.query(checkpoint, parameters: [s.name]))?.first,
               let lastRegion = row[0], let lastID = row[1].flatMap({ Int($0) }) {
                region = lastRegion
                id = String(lastID + 3 * Int(1 + random.next() % 150))
            }
            switch random.next() % 5 {
            case 0, 1:
                _ = try connection.query(delete, parameters: [region, id])
                counts["delete", default: 0] += 1
            case 2, 3:
                _ = try connection.query(update, parameters: [region, id, "w\(writer)-\(done)"])
                counts["update", default: 0] += 1
            default:
                _ = try connection.query(insert, parameters: [region, id, "i\(writer)-\(done)"])
                counts["insert", default: 0] += 1
            }
            done += 1
            usleep(5_000)
        }
        counts["done"] = 1
        return counts
    }

    /// What the dual-write will do, through libpq straight to PostgreSQL: each change of an old row and its
    /// mirror into the new relation in one transaction (the upsert sets every mapped column).
    static func write(_ s: Scenario, writer: Int, while running: () -> Bool) throws -> [String: Int] {
        let connection = try PQConnection(s.connectionString)
        var random = SplitMix64(seed: UInt64(0x5EED + writer))
        var counts: [String: Int] = [:]
        let upsert = """
            insert into \(s.new) (region, order_id, amount_cents, "Note", placed_at, source)
            select \(Scenario.forwardSelect) from \(s.old) where region = $1 and id = $2::int
            on conflict (region, order_id) do update set amount_cents = excluded.amount_cents, "Note" = excluded."Note",
                placed_at = excluded.placed_at
            """
        let checkpoint = "select last_key[1], last_key[2] from \(s.schema).backfill_progress where migration = $1"
        let started = ContinuousClock.now
        let deadline = started + .seconds(20)
        var done = 0
        while done < 500, ContinuousClock.now < deadline, running() {
            var region = ["ap", "eu", "us"][Int(random.next() % 3)]
            var id = String(1 + random.next() % 10_500)
            // Every other change lands just ahead of the checkpoint, in the rows the next batch reads and
            // locks, so that changes commit while a batch is reading them.
            // (Until the backfill has created its checkpoint table, the query fails and the key stays random.)
            if random.next() % 2 == 0, let row = (try? connection.query(checkpoint, parameters: [s.name]))?.first,
               let lastRegion = row[0], let lastID = row[1].flatMap({ Int($0) }) {
                region = lastRegion
                id = String(lastID + 3 * Int(1 + random.next() % 100))
            }
            let roll = random.next() % 4
            try connection.query("begin")
            do {
                switch roll {
                case 0, 1:
                    _ = try connection.query("""
                        update \(s.old) set amount = amount + 1, "Note" = $3 where region = $1 and id = $2::int
                        """, parameters: [region, id, "w\(writer)-\(done)"])
                    _ = try connection.query(upsert, parameters: [region, id])
                    counts["update", default: 0] += 1
                case 2:
                    _ = try connection.query("delete from \(s.old) where region = $1 and id = $2::int", parameters: [region, id])
                    _ = try connection.query("delete from \(s.new) where region = $1 and order_id = $2::bigint", parameters: [region, id])
                    counts["delete", default: 0] += 1
                default:
                    let inserted = try connection.query("""
                        insert into \(s.old) values ($1, $2::int, 1.25, $3, timestamp '2025-06-01 12:00')
                        on conflict do nothing returning id
                        """, parameters: [region, id, "i\(writer)-\(done)"])
                    if !inserted.isEmpty { _ = try connection.query(upsert, parameters: [region, id]) }
                    counts["insert", default: 0] += 1
                }
                try connection.query("commit")
            } catch {
                _ = try? connection.query("rollback")
                throw error
            }
            done += 1
            // Spread over the whole copy (about four seconds after a second's wait for the flag to settle).
            usleep(9_000)
        }
        counts["done"] = 1
        counts["busy_ms"] = Int((ContinuousClock.now - started) / .milliseconds(1))
        return counts
    }
}
