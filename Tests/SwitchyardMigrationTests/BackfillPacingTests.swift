// Batch sizing toward a target duration, the rows-per-second sleep, load pauses, progress and the summary line.

import SwitchyardConfig
import SwitchyardMigration
import Testing

@Suite("Backfill pacing")
struct BackfillPacingTests {
    @Test("the batch size moves toward the target duration, at most doubling or halving, within bounds")
    func sizing() {
        var sizer = BatchSizer(BackfillConfig(batchSize: 1000, targetBatchMs: 100))
        #expect(sizer.bounds == 100...10_000)
        #expect(sizer.target == .milliseconds(100))
        sizer.record(requested: 1000, rows: 1000, took: .milliseconds(50))
        #expect(sizer.size == 2000)
        sizer.record(requested: 2000, rows: 2000, took: .milliseconds(10))
        #expect(sizer.size == 4000)  // 10x faster than the target, but one step at most doubles
        sizer.record(requested: 4000, rows: 4000, took: .milliseconds(160))
        #expect(sizer.size == 2500)
        sizer.record(requested: 2500, rows: 2500, took: .seconds(10))
        #expect(sizer.size == 1250)
        for _ in 0..<10 { sizer.record(requested: sizer.size, rows: sizer.size, took: .seconds(1)) }
        #expect(sizer.size == 100)
        for _ in 0..<20 { sizer.record(requested: sizer.size, rows: sizer.size, took: .zero) }
        #expect(sizer.size == 10_000)
    }

    @Test("a short (last) batch says nothing about timing")
    func shortBatch() {
        var sizer = BatchSizer(BackfillConfig(batchSize: 1000, targetBatchMs: 100))
        sizer.record(requested: 1000, rows: 10, took: .microseconds(1))
        #expect(sizer.size == 1000)
    }

    @Test("target_batch_ms 0 keeps the size fixed")
    func fixed() {
        var sizer = BatchSizer(BackfillConfig(batchSize: 300, targetBatchMs: 0))
        #expect(sizer.bounds == 300...300)
        #expect(sizer.target == nil)
        sizer.record(requested: 300, rows: 300, took: .zero)
        #expect(sizer.size == 300)
    }

    @Test("under a rows-per-second cap a batch holds at most one second's worth of rows")
    func capBoundsBatch() {
        #expect(BatchSizer(BackfillConfig(batchSize: 1000, rowsPerSecond: 200, targetBatchMs: 100)).size == 200)
        #expect(BatchSizer(BackfillConfig(batchSize: 1000, rowsPerSecond: 200, targetBatchMs: 0)).bounds == 200...200)
        #expect(BatchSizer(BackfillConfig(batchSize: 100, rowsPerSecond: 5000, targetBatchMs: 100)).bounds == 10...1000)
    }

    @Test("the sleep after a batch pads it to the time its rows may take under the cap", arguments: [
        (1000, Duration.milliseconds(100), 2000, Duration.milliseconds(400)),
        (1000, .seconds(1), 500, .seconds(1)),
        (1000, .seconds(3), 500, .zero),
        (1000, .milliseconds(10), 0, .zero),
        (0, .zero, 100, .zero),
    ])
    func rateSleep(rows: Int, took: Duration, cap: Int, expected: Duration) {
        #expect(backfillRateSleep(rows: rows, took: took, rowsPerSecond: cap) == expected)
    }

    @Test("load checks: off by default, pause while over a limit, give up past the pause budget")
    func loadGate() {
        var off = LoadGate(BackfillConfig(), maxPause: .seconds(1))
        #expect(!off.isEnabled)
        #expect(off.decide(activeSessions: 1000, replicationLagMs: 1_000_000) == .proceed)

        var gate = LoadGate(BackfillConfig(maxActiveSessions: 4, maxReplicationLagMs: 2000, pauseMs: 400), maxPause: .seconds(1))
        #expect(gate.isEnabled)
        #expect(gate.decide(activeSessions: 4, replicationLagMs: 2000) == .proceed)
        #expect(gate.decide(activeSessions: 5, replicationLagMs: 0)
            == .wait(.milliseconds(400), reason: "5 active sessions, more than max_active_sessions 4"))
        #expect(gate.decide(activeSessions: 9, replicationLagMs: 2001)
            == .wait(.milliseconds(400), reason: "9 active sessions, more than max_active_sessions 4; "
                + "replication lag 2001 ms, more than max_replication_lag_ms 2000"))
        #expect(gate.paused == .milliseconds(800))
        #expect(gate.decide(activeSessions: 0, replicationLagMs: 0) == .proceed)
        // A third pause would make 1.2 s, past the 1 s budget, which counts every pause of the run.
        #expect(gate.decide(activeSessions: 0, replicationLagMs: 5000) == .giveUp(
            reason: "paused for load 800ms in total, and waiting longer would pass the --max-pause limit of 1s; "
                + "still replication lag 5000 ms, more than max_replication_lag_ms 2000"))
    }
}

@Suite("Backfill progress and report")
struct BackfillProgressTests {
    @Test("the progress bar shows share, counts, rate and ETA")
    func bar() {
        let progress = BackfillProgress(rowsRead: 3000, rowsInserted: 2900, batches: 3, rowsThisRun: 2000,
                                        elapsed: .seconds(1), estimatedTotal: 10_000, batchSize: 1000)
        #expect(progress.rowsPerSecond == 2000)
        #expect(progress.eta == .milliseconds(3500))
        #expect(progress.bar() == "[#######-----------------]  30%  3,000/~10,000 rows  2,000 rows/s  ETA 0:04")
    }

    @Test("without an estimate, or past a stale one")
    func estimates() {
        let unknown = BackfillProgress(rowsRead: 5, rowsInserted: 5, batches: 1, rowsThisRun: 5, elapsed: .zero,
                                       estimatedTotal: nil, batchSize: 5)
        #expect(unknown.bar() == "5 rows  0 rows/s  ETA ?")
        let stale = BackfillProgress(rowsRead: 1_234_567, rowsInserted: 0, batches: 9, rowsThisRun: 1_234_567,
                                     elapsed: .seconds(2), estimatedTotal: 1_000_000, batchSize: 5)
        #expect(stale.fraction == 0.99)
        #expect(stale.bar().hasPrefix("[#######################-]  99%  1,234,567/~1,000,000 rows  617,284 rows/s  ETA 0:00"))
    }

    @Test("numbers and clocks", arguments: [(0, "0"), (999, "999"), (1000, "1,000"), (-1234567, "-1,234,567")])
    func grouped(value: Int, text: String) {
        #expect(BackfillProgress.grouped(value) == text)
    }

    @Test("ETA clock")
    func clock() {
        #expect(BackfillProgress.clock(.seconds(75)) == "1:15")
        #expect(BackfillProgress.clock(.seconds(3725)) == "1:02:05")
        #expect(BackfillProgress.clock(.milliseconds(100)) == "0:01")
    }

    @Test("the summary line: this run's counts, totals when earlier runs contributed, and where to resume")
    func summary() {
        let done = BackfillReport(migration: "orders_v2", stop: .finished,
                                  run: BackfillCounts(rowsRead: 10_000, rowsInserted: 9_990, batches: 11),
                                  total: BackfillCounts(rowsRead: 10_000, rowsInserted: 9_990, batches: 11),
                                  duration: .milliseconds(1250), lastKey: ["us", "9999"])
        #expect(done.summaryLine == "backfill orders_v2: finished: 10000 rows read, 9990 inserted, 10 skipped (already present), "
            + "11 batches, 0 orphans removed, 1.25 s (8000 rows/s)")
        let stopped = BackfillReport(migration: "orders_v2", stop: .maxBatches,
                                     run: BackfillCounts(rowsRead: 300, rowsInserted: 300, batches: 3, orphansRemoved: 2),
                                     total: BackfillCounts(rowsRead: 800, rowsInserted: 800, batches: 8, orphansRemoved: 5),
                                     duration: .seconds(1), lastKey: ["eu", "17"])
        #expect(stopped.summaryLine == "backfill orders_v2: stopped after --max-batches 3: 300 rows read, 300 inserted, "
            + "0 skipped (already present), 3 batches, 2 orphans removed, 1.0 s (300 rows/s); since the backfill began: "
            + "800 read, 800 inserted, 8 batches, 5 orphans removed; run it again to continue after (eu, 17)")
        let interrupted = BackfillReport(migration: "m", stop: .interrupted, run: BackfillCounts(), total: BackfillCounts(),
                                         duration: .zero, lastKey: nil)
        #expect(interrupted.summaryLine.hasSuffix("; run it again to continue from the first key"))
        // Copied keys the orphan cleanup has not checked yet are named; the next run checks them first.
        let pending = BackfillReport(migration: "m", stop: .interrupted, run: BackfillCounts(rowsRead: 5, rowsInserted: 5, batches: 1),
                                     total: BackfillCounts(rowsRead: 5, rowsInserted: 5, batches: 1), duration: .zero, lastKey: ["5"],
                                     cleanupPending: KeyRange(lower: nil, upper: ["5"]))
        #expect(pending.summaryLine.hasSuffix("; run it again to continue after 5; the orphan cleanup of the keys from the first key "
            + "up to 5 is still to run"))
    }
}
