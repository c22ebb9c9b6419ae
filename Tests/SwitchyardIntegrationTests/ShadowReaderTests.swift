// Shadow reads on real side connections: divergences found, noise recognised, errors kept, the queue bounded, one snapshot.
import Foundation
import Glibc
import Synchronization
import SwitchyardConfig
import SwitchyardServer
import SwitchyardShadow
import SwitchyardTestSupport
import Testing

@Suite("Shadow reads on side connections", .serialized)
struct ShadowReaderTests {
    /// A database of this suite's own, so it runs in parallel with the other suites.
    static let database = "sy_shadow"
    static let int4: UInt32 = 23
    static let text: UInt32 = 25

    /// The reports a reader handed out, in order.
    final class ReportLog: Sendable {
        let reports = Mutex<[ShadowReport]>([])
    }

    /// A writer thread's stop flag, commit count and end.
    final class Writer: Sendable {
        let writing = Atomic<Bool>(true)
        let commits = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
    }

    /// A running reader on the suite's database and the reports it handed out.
    final class Harness: Sendable {
        let cluster: PostgresCluster
        let reader: ShadowReader
        let log = ReportLog()

        init(_ settings: ShadowReader.Settings = .init()) throws {
            cluster = try PostgresCluster.shared()
            _ = try? cluster.psql("create database \(ShadowReaderTests.database)")
            let uri = try UpstreamURI.parse(cluster.connectionURI(database: ShadowReaderTests.database))
            let log = self.log
            reader = ShadowReader(upstream: uri, settings: settings, onReport: { report in log.reports.withLock { $0.append(report) } })
            reader.start()
        }

        deinit { reader.stop() }

        func psql(_ sql: String) throws -> String { try cluster.psql(sql, database: ShadowReaderTests.database) }

        func connect() throws -> PQConnection {
            try PQConnection(cluster.connectionString(database: ShadowReaderTests.database))
        }

        /// Submits `job` and waits (at most 30 s) for its report.
        func run(_ job: ShadowJob) throws -> ShadowReport {
            let before = log.reports.withLock { $0.count }
            try #require(reader.submit(job))
            try #require(ShadowReaderTests.waitUntil { log.reports.withLock { $0.count } > before }, "no report within 30 s")
            return log.reports.withLock { $0[before] }
        }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    static func waitUntil(_ timeout: Duration = .seconds(30), _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    /// Why a sample was skipped; nil, with an issue recorded, when it was not skipped.
    static func skipReason(_ report: ShadowReport, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        guard case let .skipped(reason) = report.outcome else {
            Issue.record("expected a skipped sample, got \(report.outcome)", sourceLocation: sourceLocation)
            return nil
        }
        return reason
    }

    static func job(
        _ old: String, _ new: String, parameters: [ShadowParameter] = [], ordered: Bool = false, calibrate: Bool = false,
        fingerprint: String? = nil, settings: [String: String] = [:]
    ) -> ShadowJob {
        ShadowJob(flag: "users_v2", cohort: "tenant-1", fingerprint: fingerprint ?? String(old.hashValue, radix: 16),
                  normalizedQuery: old, oldSQL: old, newSQL: new, parameters: parameters, ordered: ordered, calibrate: calibrate,
                  settings: settings)
    }

    @Test("one deliberately wrong row on the new side is a row divergence with that row in the samples; equal reads are the same")
    func findsTheWrongRow() throws {
        let h = try Harness()
        _ = try h.psql("""
            drop table if exists sh_old, sh_new;
            create table sh_old (id int primary key, name text);
            create table sh_new (id int primary key, full_name text);
            insert into sh_old select i, 'user ' || i from generate_series(1, 1000) i;
            insert into sh_old values (1001, null);
            insert into sh_new select id, name from sh_old;
            update sh_new set full_name = 'WRONG' where id = 3;
            """)
        defer { _ = try? h.psql("drop table if exists sh_old, sh_new") }
        let old = "select id, name from sh_old where id <= $1"
        let new = "select id, name from (select id, full_name as name from sh_new) sh_old where id <= $1"

        let divergent = try h.run(Self.job(old, new, parameters: [ShadowParameter("10", typeOID: Self.int4)]))
        guard case let .compared(.divergent(.rows(difference))) = divergent.outcome else {
            Issue.record("expected a row divergence, got \(divergent.outcome)")
            return
        }
        #expect(difference.onlyInOld == [["3", "user 3"]])
        #expect(difference.onlyInNew == [["3", "WRONG"]])
        #expect(divergent.oldRowCount == 10 && divergent.newRowCount == 10)
        #expect(divergent.parameters == ["$1 = '10'"])
        #expect(divergent.oldDuration != nil && divergent.newDuration != nil)

        // Equal reads: a bound parameter, a NULL parameter, a typed one, and 1,000 rows in another order.
        let same = try h.run(Self.job(old + " and id <> 3", new + " and id <> 3", parameters: [ShadowParameter("100")]))
        #expect(same.outcome == .compared(.same))
        let null = try h.run(Self.job(
            "select id from sh_old where name is not distinct from $1",
            "select id from sh_new where full_name is not distinct from $1", parameters: [ShadowParameter(nil, typeOID: Self.text)]))
        #expect(null.outcome == .compared(.same))
        #expect(null.oldRowCount == 1)
        let reordered = try h.run(Self.job(
            "select id, name from sh_old where id <> 3 order by id", "select id, full_name from sh_new where id <> 3 order by id desc"))
        // Different column names: reported as such, not as rows.
        guard case let .compared(.divergent(.columns(columns))) = reordered.outcome else {
            Issue.record("expected a column divergence, got \(reordered.outcome)")
            return
        }
        #expect(columns.mismatches == [.name(position: 2, old: "name", new: "full_name")])
        let unordered = try h.run(Self.job(
            "select id, name from sh_old where id <> 3", "select id, full_name as name from sh_new where id <> 3 order by id desc"))
        #expect(unordered.outcome == .compared(.same))
        let ordered = try h.run(Self.job(
            "select id, name from sh_old where id <> 3 order by id",
            "select id, full_name as name from sh_new where id <> 3 order by id desc", ordered: true))
        guard case let .compared(.divergent(order)) = ordered.outcome else {
            Issue.record("expected an order divergence, got \(ordered.outcome)")
            return
        }
        #expect(order.kind == .order)

        // Aggregated: the divergences are recorded with their details, and the tallies add up.
        let record = try #require(h.reader.divergences.first { $0.kind == .rows })
        #expect(record.count == 1 && record.onlyInNew == [["3", "WRONG"]] && record.parameters == ["$1 = '10'"])
        let counters = h.reader.counters
        #expect(counters.same == 3 && counters.divergent == 3 && counters.completed == 6 && counters.dropped == 0)
        #expect(h.reader.totals(flag: "users_v2").samples == 6)
    }

    @Test("select random() calibrated is nondeterministic; later samples of it are too, without a second run")
    func nondeterministic() throws {
        let h = try Harness()
        let first = try h.run(Self.job("select random()", "select random()", calibrate: true, fingerprint: "random"))
        #expect(first.outcome == .compared(.nondeterministic))
        #expect(h.reader.nondeterministicFingerprints == ["random"])
        let later = try h.run(Self.job("select random()", "select random()", calibrate: false, fingerprint: "random"))
        #expect(later.outcome == .compared(.nondeterministic))
        // Without calibration and unknown, a nondeterministic query looks like a divergence: why calibration exists.
        let uncalibrated = try h.run(Self.job("select random()", "select random()", fingerprint: "random, uncalibrated"))
        guard case .compared(.divergent) = uncalibrated.outcome else {
            Issue.record("expected a divergence, got \(uncalibrated.outcome)")
            return
        }
        // A deterministic query calibrated stays the same.
        let steady = try h.run(Self.job("select 1 as x", "select 1 as x", calibrate: true, fingerprint: "one"))
        #expect(steady.outcome == .compared(.same))
        #expect(h.reader.counters.nondeterministic == 2)
    }

    @Test("a failing new path is a divergence of kind error with its SQLSTATE; a failing old path is a skipped sample")
    func errors() throws {
        let h = try Harness(.init(statementTimeout: .milliseconds(300)))
        let broken = try h.run(Self.job("select 1 as x", "select no_such_column from pg_class limit 1"))
        guard case let .compared(.divergent(.error(error))) = broken.outcome else {
            Issue.record("expected an error divergence, got \(broken.outcome)")
            return
        }
        #expect(error.sqlState == "42703")
        #expect(error.message.contains("no_such_column"))
        let record = try #require(h.reader.divergences.first)
        #expect(record.kind == .error && record.sqlState == "42703")

        // The statement timeout ends a slow new path on the server: kind error, SQLSTATE 57014.
        let slow = try h.run(Self.job("select 1 as x", "select 1 as x from pg_sleep(5)"))
        guard case let .compared(.divergent(.error(timeout))) = slow.outcome else {
            Issue.record("expected an error divergence, got \(slow.outcome)")
            return
        }
        #expect(timeout.sqlState == "57014")

        let oldFails = try h.run(Self.job("select 1/0", "select 1"))
        #expect(Self.skipReason(oldFails)?.contains("22012") == true)
        // The connection survived all three: the next job is compared on it.
        let after = try h.run(Self.job("select 2 as x", "select 2 as x"))
        #expect(after.outcome == .compared(.same))
        let counters = h.reader.counters
        #expect(counters.divergent == 2 && counters.skipped == 1 && counters.errors == 0 && counters.reconnects == 0)
    }

    @Test("a full queue drops and counts samples, and submit never waits")
    func boundedQueue() throws {
        let h = try Harness(.init(connections: 1, queueCapacity: 2))
        try #require(Self.waitUntil { h.reader.counters.connected == 1 })
        let slow = Self.job("select pg_sleep(0.2)::text as x", "select pg_sleep(0.2)::text as x")
        var accepted = 0
        var slowest: Duration = .zero
        let clock = ContinuousClock()
        for _ in 0..<50 {
            var ok = false
            let took = clock.measure { ok = h.reader.submit(slow) }
            slowest = max(slowest, took)
            if ok { accepted += 1 }
        }
        // One job in flight at most, two waiting.
        #expect(accepted >= 2 && accepted <= 3, "\(accepted) accepted")
        #expect(slowest < .milliseconds(10), "the slowest submit took \(slowest)")
        let counters = h.reader.counters
        #expect(counters.submitted == 50)
        #expect(counters.dropped == UInt64(50 - accepted))
        #expect(Self.waitUntil { h.reader.counters.completed == UInt64(accepted) })
        #expect(h.reader.counters.same == UInt64(accepted))
        print("shadow queue: \(accepted) of 50 accepted, the slowest submit took \(slowest)")
    }

    @Test("both paths read one snapshot: a write committed between the old and new run is seen by neither")
    func oneSnapshot() throws {
        let h = try Harness()
        _ = try h.psql("""
            drop table if exists sh_snap_old, sh_snap_new;
            create table sh_snap_old (id int primary key, name text);
            create table sh_snap_new (id int primary key, name text);
            insert into sh_snap_old select i, 'n' || i from generate_series(1, 5) i;
            insert into sh_snap_new select * from sh_snap_old;
            """)
        defer { _ = try? h.psql("drop table if exists sh_snap_old, sh_snap_new") }
        // The old read sleeps after taking its snapshot; the write lands in both tables meanwhile, as dual-write does.
        let old = "with snapshot_marker as materialized (select pg_sleep(1)) select id, name from sh_snap_old, snapshot_marker"
        let job = Self.job(old, "select id, name from sh_snap_new")
        let before = h.log.reports.withLock { $0.count }
        try #require(h.reader.submit(job))
        let observer = try h.connect()
        func oldRunActive() throws -> Bool {
            try observer.query("""
                select count(*) from pg_stat_activity
                where application_name = 'switchyard-shadow' and datname = current_database() and state = 'active' and query like '%snapshot_marker%'
                """).first?.first == "1"
        }
        try #require(Self.waitUntil(.seconds(10)) { try oldRunActive() }, "the old run never started")
        _ = try observer.command("begin; insert into sh_snap_old values (6, 'n6'); insert into sh_snap_new values (6, 'n6'); commit")
        // Committed while the old run still sleeps: the new run has not started yet.
        #expect(try oldRunActive())
        try #require(Self.waitUntil { h.log.reports.withLock { $0.count } > before })
        let report = h.log.reports.withLock { $0[before] }
        #expect(report.outcome == .compared(.same))
        #expect(report.oldRowCount == 5 && report.newRowCount == 5)
        // The write did commit: a new job sees it on both sides.
        let later = try h.run(Self.job("select id, name from sh_snap_old", "select id, name from sh_snap_new"))
        #expect(later.outcome == .compared(.same) && later.oldRowCount == 6)
    }

    @Test("the session's settings apply: an unqualified name resolves through the job's search_path")
    func settings() throws {
        let h = try Harness()
        _ = try h.psql("""
            drop schema if exists sh_app cascade;
            create schema sh_app;
            create table sh_app.accounts (id int);
            insert into sh_app.accounts values (1), (2);
            """)
        defer { _ = try? h.psql("drop schema if exists sh_app cascade") }
        let report = try h.run(Self.job(
            "select id from accounts", "select id from sh_app.accounts", settings: ["search_path": "sh_app"]))
        #expect(report.outcome == .compared(.same))
        #expect(report.oldRowCount == 2)
        // SET LOCAL: the connection's own search_path is untouched for the next job.
        let next = try h.run(Self.job("select id from accounts", "select id from sh_app.accounts"))
        #expect(Self.skipReason(next)?.contains("42P01") == true)
    }

    @Test("failures inside a job's pipeline leave its connection usable: old and new path errors, a failed setting, an oversized answer, then a comparison, on one backend")
    func failuresKeepTheConnection() throws {
        let h = try Harness(.init(connections: 1, maxRows: 5))
        try #require(Self.waitUntil { h.reader.counters.connected == 1 })
        let observer = try h.connect()
        func sidePID() throws -> String? {
            try observer.query("select pid::text from pg_stat_activity where application_name = 'switchyard-shadow' and datname = current_database()").first?.first ?? nil
        }
        let pid = try #require(try sidePID())

        let oldFails = try h.run(Self.job("select 1/0 as x", "select 1 as x"))
        #expect(Self.skipReason(oldFails)?.contains("22012") == true)
        let newFails = try h.run(Self.job("select 1 as x", "select 1/0 as x"))
        guard case let .compared(.divergent(.error(error))) = newFails.outcome else {
            Issue.record("expected an error divergence, got \(newFails.outcome)")
            return
        }
        #expect(error.sqlState == "22012")
        let settingFails = try h.run(Self.job("select 1 as x", "select 1 as x", settings: ["TimeZone": "No/Such_Zone"]))
        #expect(Self.skipReason(settingFails)?.contains("TimeZone") == true)
        // Over the row limit on the old path and on the calibration run: the rest of the pipeline still ran.
        let series = "select i from generate_series(1, 50) i"
        let tooLarge = try h.run(Self.job(series, series, calibrate: true, fingerprint: "series"))
        #expect(Self.skipReason(tooLarge)?.contains("size limits") == true)

        // Each failure's transaction was rolled back: the next job reads a fresh snapshot with the
        // session's defaults, on the same backend.
        let after = try h.run(Self.job(
            "select current_setting('TimeZone') as tz, 2 as x", "select current_setting('TimeZone') as tz, 2 as x", calibrate: true))
        #expect(after.outcome == .compared(.same))
        #expect(after.oldRowCount == 1 && after.newRowCount == 1)
        #expect(try sidePID() == pid)
        let counters = h.reader.counters
        #expect(counters.same == 1 && counters.divergent == 1 && counters.skipped == 3)
        #expect(counters.errors == 0 && counters.reconnects == 0)
        #expect(try observer.query("""
            select count(*) from pg_stat_activity where application_name = 'switchyard-shadow' and datname = current_database() and state <> 'idle'
            """).first?.first == "0")
    }

    @Test("each path's time is its own, though both were sent at once")
    func pathTimes() throws {
        let h = try Harness()
        // A path's time is counted from when the reader got the previous answer, so a reader slow to
        // wake moves time between paths: the bound leaves it 250 ms of slack either way.
        let slow: Duration = .milliseconds(500)
        let bound: Duration = .milliseconds(250)
        let slowOld = try h.run(Self.job("select 1 as x from pg_sleep(0.5)", "select 1 as x"))
        #expect(slowOld.outcome == .compared(.same))
        let oldFirst = try #require(slowOld.oldDuration)
        let newFirst = try #require(slowOld.newDuration)
        #expect(oldFirst > bound && oldFirst < slow + .seconds(1) && newFirst < bound, "old \(oldFirst), new \(newFirst)")
        let slowNew = try h.run(Self.job("select 1 as x", "select 1 as x from pg_sleep(0.5)", calibrate: true))
        #expect(slowNew.outcome == .compared(.same))
        let oldSecond = try #require(slowNew.oldDuration)
        let newSecond = try #require(slowNew.newDuration)
        #expect(newSecond > bound && newSecond < slow + .seconds(1) && oldSecond < bound, "old \(oldSecond), new \(newSecond)")
    }

    @Test("under concurrent dual writes to both tables, every comparison finds the same rows")
    func concurrentWrites() throws {
        let h = try Harness(.init(connections: 2, queueCapacity: 500))
        _ = try h.psql("""
            drop table if exists sh_cw_old, sh_cw_new;
            create table sh_cw_old (id int primary key, v int not null);
            create table sh_cw_new (id int primary key, v int not null);
            insert into sh_cw_old select i, 0 from generate_series(1, 100) i;
            insert into sh_cw_new select * from sh_cw_old;
            """)
        defer { _ = try? h.psql("drop table if exists sh_cw_old, sh_cw_new") }
        // Both tables change in one transaction, as dual-write changes them, as fast as one connection can.
        let writer = Writer()
        let connection = try h.connect()
        Thread {
            defer { writer.done.signal() }
            for i in 0..<1_000_000 where writer.writing.load(ordering: .relaxed) {
                let id = i % 100 + 1
                guard (try? connection.command("""
                    begin; update sh_cw_old set v = v + 1 where id = \(id); update sh_cw_new set v = v + 1 where id = \(id); commit
                    """)) != nil else { return }
                writer.commits.add(1, ordering: .relaxed)
            }
        }.start()
        defer {
            writer.writing.store(false, ordering: .relaxed)
            writer.done.wait()
        }

        // The old read pauses after its snapshot is taken, so writes commit between the two paths' runs.
        let old = "select id, v from sh_cw_old, (select pg_sleep(0.005)) pause"
        let new = "select id, v from sh_cw_new"
        let jobs = 200
        let start = writer.commits.load(ordering: .relaxed)
        var accepted = 0
        for i in 0..<jobs {
            if h.reader.submit(Self.job(old, new, calibrate: i % 10 == 0, fingerprint: "dual-write")) { accepted += 1 }
        }
        #expect(accepted == jobs)
        #expect(Self.waitUntil(.seconds(60)) { h.reader.counters.completed == UInt64(accepted) })
        let committed = writer.commits.load(ordering: .relaxed) - start
        let counters = h.reader.counters
        #expect(counters.same == UInt64(accepted), "\(counters)")
        #expect(counters.divergent == 0 && counters.nondeterministic == 0 && counters.errors == 0)
        #expect(committed > 10, "only \(committed) writes committed while \(jobs) jobs ran")
        print("shadow reads under dual writes: \(counters.same) of \(accepted) the same, \(committed) writes committed meanwhile")
    }

    @Test("a side connection killed by the server is replaced; stop closes every connection")
    func reconnectsAndStops() throws {
        let h = try Harness(.init(connections: 2))
        try #require(Self.waitUntil { h.reader.counters.connected == 2 })
        let observer = try h.connect()
        _ = try observer.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard-shadow' and datname = current_database()")
        // Jobs keep being answered: on a connection that noticed nothing, or after a reconnect.
        var answered = 0
        for i in 0..<20 where answered < 4 {
            let report = try h.run(Self.job("select \(i) as x", "select \(i) as x"))
            if report.outcome == .compared(.same) { answered += 1 }
        }
        #expect(answered == 4)
        #expect(Self.waitUntil { h.reader.counters.connected == 2 })
        #expect(h.reader.counters.reconnects >= 1)
        #expect(h.reader.counters.errors <= 2)

        let clock = ContinuousClock()
        let stopping = clock.measure { h.reader.stop() }
        #expect(stopping < .seconds(2))
        let gone = try Self.waitUntil(.seconds(5)) {
            try observer.query("select count(*) from pg_stat_activity where application_name = 'switchyard-shadow' and datname = current_database()").first?.first == "0"
        }
        #expect(gone)
        #expect(h.reader.counters.connected == 0)
        #expect(!h.reader.submit(Self.job("select 1", "select 1")))
    }
}

@Suite("Shadow samplers per flag")
struct ShadowReaderSamplingTests {
    @Test("each flag samples by its own shadow settings; an unknown flag is never sampled; a reload keeps unchanged flags")
    func perFlag() {
        let always = FlagConfig(name: "always", migration: "a", shadow: FlagShadowConfig(
            samplePercentBasisPoints: 10_000, calibrationPercentBasisPoints: 10_000, maxPerFingerprintPerSecond: 2))
        let never = FlagConfig(name: "never", migration: "b", shadow: FlagShadowConfig(samplePercentBasisPoints: 0))
        let samplers = ShadowSamplers(flags: [always, never], seed: 1)
        let decisions = (0..<5).map { _ in samplers.decide(flag: "always", fingerprint: "hot") }
        // The cap of two per second (the loop takes far less than a second).
        #expect(decisions.filter { $0 == .sample(calibrate: true) }.count == 2)
        #expect(decisions.filter { $0 == .capped }.count == 3)
        #expect(samplers.decide(flag: "never", fingerprint: "x") == .skip)
        #expect(samplers.decide(flag: "unknown", fingerprint: "x") == .skip)
        samplers.configure([always])
        #expect(samplers.decide(flag: "never", fingerprint: "x") == .skip)
        // Still counting the same second for the kept flag: the cap holds across the reload.
        #expect(samplers.decide(flag: "always", fingerprint: "hot") == .capped)
    }
}
