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
        guard case let .skipped(reason) = oldFails.outcome else {
            Issue.record("expected a skipped sample, got \(oldFails.outcome)")
            return
        }
        #expect(reason.contains("22012"))
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
                where application_name = 'switchyard-shadow' and state = 'active' and query like '%snapshot_marker%'
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
        guard case let .skipped(reason) = next.outcome else {
            Issue.record("expected a skipped sample, got \(next.outcome)")
            return
        }
        #expect(reason.contains("42P01"))
    }

    @Test("a side connection killed by the server is replaced; stop closes every connection")
    func reconnectsAndStops() throws {
        let h = try Harness(.init(connections: 2))
        try #require(Self.waitUntil { h.reader.counters.connected == 2 })
        let observer = try h.connect()
        _ = try observer.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard-shadow'")
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
            try observer.query("select count(*) from pg_stat_activity where application_name = 'switchyard-shadow'").first?.first == "0"
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
