// `switchyard backfill`: runs the batch statements, checkpoints, throttles and reports progress.
import Logging
import SwitchyardConfig
import SwitchyardMigration

/// What a backfill run is asked to do, beyond the migration's `backfill:` settings.
public struct BackfillOptions: Sendable, Equatable {
    /// The migration's `backfill:` settings with the command line's overrides applied.
    public var settings: BackfillConfig
    /// The longest total time to wait for load to drop before giving up.
    public var maxPause: Duration
    /// Begin again at the first key instead of the checkpoint.
    public var restart: Bool
    /// Run even when the flag is before dual_write (unsafe: rows changed meanwhile are not mirrored).
    public var force: Bool
    /// Stop after this many batches, leaving the checkpoint for the next run.
    public var maxBatches: Int?

    public static let defaultMaxPause: Duration = .seconds(3600)

    public init(settings: BackfillConfig, maxPause: Duration = defaultMaxPause, restart: Bool = false, force: Bool = false,
                maxBatches: Int? = nil) {
        self.settings = settings
        self.maxPause = maxPause
        self.restart = restart
        self.force = force
        self.maxBatches = maxBatches
    }
}

/// How the run reaches the world outside the database: its logger, the progress display, a sleep that
/// returns early once a stop is requested, and whether one is.
public struct BackfillEnvironment {
    public var logger: Logger
    public var progress: (BackfillProgress) -> Void
    public var sleep: (Duration) -> Void
    public var stopRequested: () -> Bool

    public init(logger: Logger, progress: @escaping (BackfillProgress) -> Void, sleep: @escaping (Duration) -> Void,
                stopRequested: @escaping () -> Bool) {
        self.logger = logger
        self.progress = progress
        self.sleep = sleep
        self.stopRequested = stopRequested
    }
}

/// Copies the old relation's rows into the new one through the forward mapping, batch by batch in key
/// order, each batch one short transaction with its checkpoint (see `BackfillStatement` for the statement
/// and why it is safe while the proxy dual-writes). Behind the copy, each batch's key range goes through
/// the orphan cleanup once every transaction older than the batch has ended (see `OrphanCleanupPlan`):
/// checked before each batch, and waited for at the end, up to `--max-pause`.
///
/// The checkpoint records how far the cleanup got (`cleaned_through`), so a run that ends before it caught
/// up (killed, interrupted, or out of patience) leaves the rest to the next run, which checks the keys
/// from there to the checkpoint first. Keeping that bound, rather than checking every key up to the
/// checkpoint again on each resume, keeps a resume cheap on a large relation.
public enum BackfillRunner {
    /// Deadlocks, serialization failures and lock timeouts: the batch rolled back whole and can run again.
    static let retryableStates: Set<String> = ["40P01", "40001", "55P03"]
    static let maxAttempts = 5
    /// How long a batch waits for a row lock before it gives way (and is retried). A batch waiting on one
    /// row holds share locks on the rows before it, which the application's writes of those rows would
    /// queue behind; a transaction left open for longer than this is not worth blocking them for.
    static let lockTimeout = "5s"
    /// How long after a flip every instance has applied it: they apply a NOTIFY within a second.
    static let flagSettle = "1 second"
    /// How often the end of a run checks whether the transactions older than its last batches have ended.
    static let cleanupPoll: Duration = .milliseconds(100)

    public static func run(_ config: SwitchyardConfiguration, migration name: String, options: BackfillOptions,
                           environment: BackfillEnvironment) throws(MigrationToolError) -> BackfillReport {
        let logger = environment.logger
        let session = try MigrationSession.open(config, migration: name, applicationName: "switchyard-backfill")
        let m = session.migration
        func database(_ what: String, _ error: ControlError) -> MigrationToolError {
            MigrationToolError(.database, "backfill \(name): \(what): \(error)")
        }

        // Rows changed before every proxy mirrors writes would never reach the new relation.
        let flag: StoredFlag?
        do throws(ControlError) { flag = try session.flag() } catch { throw database("cannot read the flags", error) }
        let stage = flag?.stage ?? .off
        if stage < .dualWrite {
            let which = flag.map { "its flag \($0.name) is at stage \($0.stage.rawValue)" }
                ?? "it has no flag in the control schema (so it is off)"
            let why = "rows the application changes before every Switchyard instance mirrors writes into \(m.new) would be lost"
            guard options.force else {
                let how = flag.map { "switchyard flag set \($0.name) dual_write" } ?? "add a flag for it under flags: and set it to dual_write"
                throw MigrationToolError(.refused, "refusing to backfill \(name): \(which); \(why). Move the flag to "
                    + "dual_write first (\(how)), or pass --force if nothing writes to \(m.old)")
            }
            logger.warning("backfill forced before dual_write", metadata: [
                "migration": "\(name)", "flag": "\(flag?.name ?? "-")", "stage": "\(stage.rawValue)", "risk": "\(why)",
            ])
        }

        let checkpoint: BackfillCheckpoint
        let estimate: Int?
        do throws(ControlError) {
            guard try session.store.tryLockBackfill(session.control, migration: name) else {
                throw ControlError(message: "another switchyard backfill of \(name) is running (it holds the backfill lock)")
            }
            checkpoint = try session.store.beginBackfill(session.control, migration: name, restart: options.restart)
            estimate = try estimatedRows(m.old, session.data)
            try session.data.executeScript("SET lock_timeout = '\(lockTimeout)'")
        } catch {
            throw database("cannot start", error)
        }

        var gate = LoadGate(options.settings, maxPause: options.maxPause)
        if let flag, stage >= .dualWrite {
            try awaitDualWrite(flag, session: session, maxWait: options.maxPause, pause: gate.pause, environment: environment)
        }

        let statement = BackfillStatement(session.resolved, progressTable: session.sharesDatabase ? session.store.progressTable : nil)
        var sizer = BatchSizer(options.settings)
        var lastKey = checkpoint.lastKey
        var total = checkpoint.counts
        var run = BackfillCounts()
        let start = ContinuousClock.now
        var pause: (since: ContinuousClock.Instant, reason: String)?

        // The copied keys the orphan cleanup has still to check: first what an earlier run left, then each batch's.
        var orphans = OrphanCleanupQueue()
        var cleanedThrough = checkpoint.cleanedThrough
        if let lastKey, cleanedThrough != lastKey { orphans.copied(KeyRange(lower: cleanedThrough, upper: lastKey)) }
        // At complete the application writes the new relation alone, so a new row without an old one is no orphan.
        var cleanupOff = stage == .complete ? "the flag is at complete" : nil
        if let cleanupOff {
            logger.warning("backfill orphan cleanup off", metadata: ["migration": "\(name)", "reason": "\(cleanupOff)"])
        }
        logger.info("backfill starting", metadata: [
            "migration": "\(name)", "old": "\(m.old)", "new": "\(m.new)", "stage": "\(stage.rawValue)",
            "after_key": "\(lastKey.map(KeyRange.describe) ?? "(first key)")", "estimated_rows": "\(estimate.map(String.init) ?? "?")",
            "batch_size": "\(sizer.size)", "rows_per_second": "\(options.settings.rowsPerSecond)",
            "cleanup_pending": "\(orphans.waiting.map(String.init(describing:)) ?? "-")",
        ])

        /// Cleans the copied ranges whose batches every open transaction is younger than, if any.
        func sweep() throws(MigrationToolError) {
            guard !orphans.isEmpty, cleanupOff == nil else { return }
            let horizon: TransactionHorizon
            do throws(ControlError) { horizon = try sampleHorizon(session.data) } catch {
                throw database("cannot read the open transactions", error)
            }
            guard let range = orphans.takeReady(at: horizon) else { return }
            // The flag may have moved on since the run began.
            let current: FlagStage?
            do throws(ControlError) { current = try session.flag()?.stage } catch { throw database("cannot read the flags", error) }
            if current == .complete {
                cleanupOff = "the flag reached complete"
                logger.warning("backfill orphan cleanup off", metadata: ["migration": "\(name)", "reason": "the flag reached complete"])
                return
            }
            let removed: Int?
            do throws(ControlError) {
                removed = try runCleanup(statement.orphanCleanup(range), session: session, logger: logger, sleep: environment.sleep)
            } catch {
                throw database("the orphan cleanup of the keys \(range) failed", error)
            }
            guard let removed else {
                orphans.putBack(range)
                return
            }
            if !session.sharesDatabase, let upper = range.upper {
                do throws(ControlError) {
                    try session.store.recordCleanup(session.control, migration: name, through: upper, removed: removed)
                } catch {
                    throw database("the orphan cleanup of the keys \(range) was done but its checkpoint could not be written "
                        + "(checking them again is harmless)", error)
                }
            }
            cleanedThrough = range.upper
            run.orphansRemoved += removed
            total.orphansRemoved += removed
            if removed > 0 {
                logger.notice("backfill removed orphaned rows", metadata: [
                    "migration": "\(name)", "rows": "\(removed)", "keys": "\(range)",
                    "why": "their old rows were deleted while a batch copied them, by statements whose mirror missed the copy",
                ])
            }
        }

        var stop: BackfillStop
        while true {
            if environment.stopRequested() { stop = .interrupted; break }
            if let maxBatches = options.maxBatches, run.batches >= maxBatches { stop = .maxBatches; break }

            if gate.isEnabled {
                let load: (sessions: Int, lagMs: Int)
                do throws(ControlError) { load = try sampleLoad(session.data) } catch { throw database("cannot read the load", error) }
                switch gate.decide(activeSessions: load.sessions, replicationLagMs: load.lagMs) {
                case .proceed:
                    if let paused = pause {
                        logger.info("backfill resumed", metadata: [
                            "migration": "\(name)", "paused_ms": "\(milliseconds(ContinuousClock.now - paused.since))",
                        ])
                        pause = nil
                    }
                case .wait(let duration, let reason):
                    if pause?.reason != reason {
                        logger.notice("backfill paused", metadata: ["migration": "\(name)", "reason": "\(reason)"])
                        pause = (pause?.since ?? ContinuousClock.now, reason)
                    }
                    environment.sleep(duration)
                    continue
                case .giveUp(let reason):
                    throw MigrationToolError(.gaveUp, "backfill \(name): gave up: \(reason); the checkpoint is after "
                        + "\(lastKey.map(KeyRange.describe) ?? "no key yet"), run it again to continue")
                }
            }

            try sweep()

            let limit = sizer.size
            let batch = statement.batch(after: lastKey, limit: limit)
            let began = ContinuousClock.now
            let result: BatchResult
            do throws(ControlError) {
                result = try runBatch(batch, session: session, keyCount: m.key.count, logger: logger, sleep: environment.sleep)
            } catch {
                let range = "the batch after \(lastKey.map(KeyRange.describe) ?? "the first key") (up to \(limit) rows)"
                throw database("\(range) failed", error)
            }
            let took = ContinuousClock.now - began
            let finished = result.rowsRead < limit
            if !session.sharesDatabase {
                do throws(ControlError) {
                    try session.store.recordBatch(session.control, migration: name, lastKey: result.lastKey ?? lastKey,
                                                  rowsRead: result.rowsRead, rowsInserted: result.rowsInserted, finished: finished)
                } catch {
                    throw database("the batch after \(lastKey.map(KeyRange.describe) ?? "the first key") was copied "
                        + "but its checkpoint could not be written (copying it again is harmless)", error)
                }
            }
            if let key = result.lastKey {
                orphans.copied(KeyRange(lower: lastKey, upper: key))
                lastKey = key
            }
            run.add(rowsRead: result.rowsRead, rowsInserted: result.rowsInserted)
            total.add(rowsRead: result.rowsRead, rowsInserted: result.rowsInserted)
            sizer.record(requested: limit, rows: result.rowsRead, took: took)
            environment.progress(BackfillProgress(
                rowsRead: total.rowsRead, rowsInserted: total.rowsInserted, batches: total.batches, rowsThisRun: run.rowsRead,
                elapsed: ContinuousClock.now - start, estimatedTotal: estimate, batchSize: sizer.size))
            if finished { stop = .finished; break }
            let rest = backfillRateSleep(rows: result.rowsRead, took: took, rowsPerSecond: options.settings.rowsPerSecond)
            if rest > .zero { environment.sleep(rest) }
        }

        // The last batches' ranges: wait for the transactions older than them, as long as --max-pause allows.
        if stop != .interrupted {
            let deadline = ContinuousClock.now + options.maxPause
            var logged = false
            while true {
                try sweep()
                if orphans.isEmpty || cleanupOff != nil { break }
                if environment.stopRequested() { stop = .interrupted; break }
                guard ContinuousClock.now < deadline else {
                    throw MigrationToolError(.gaveUp, "backfill \(name): gave up: the orphan cleanup of the keys "
                        + "\(orphans.waiting.map(String.init(describing:)) ?? "-") could not run within --max-pause "
                        + "\(ConfigValues.describe(duration: options.maxPause)): transactions that began before the last batches "
                        + "committed were still open (or the cleanup kept giving way to other writes). Every batch is "
                        + "checkpointed: run it again to finish the cleanup")
                }
                if !logged {
                    logger.notice("backfill waiting for transactions older than its last batches", metadata: [
                        "migration": "\(name)", "keys": "\(orphans.waiting.map(String.init(describing:)) ?? "-")",
                    ])
                    logged = true
                }
                environment.sleep(min(gate.pause, cleanupPoll))
            }
        }
        let pending = lastKey.flatMap { key in cleanedThrough == key ? nil : KeyRange(lower: cleanedThrough, upper: key) }
        return BackfillReport(migration: name, stop: stop, run: run, total: total, duration: ContinuousClock.now - start,
                              lastKey: lastKey, cleanupPending: pending)
    }

    /// Waits until every write the proxies let through unmirrored has committed or rolled back: until the
    /// flip has had time to reach every instance, and every transaction of this database that began
    /// before then has ended (a session takes up a flip from its next transaction, so one that was open
    /// at the flip may still write without mirroring). Bounded by `maxWait`.
    private static func awaitDualWrite(_ flag: StoredFlag, session: MigrationSession, maxWait: Duration, pause: Duration,
                                       environment: BackfillEnvironment) throws(MigrationToolError) {
        let deadline = ContinuousClock.now + maxWait
        var logged = false
        while true {
            let row: [String?]
            do throws(ControlError) {
                row = try session.data.execute("""
                    SELECT greatest(0, ceil(extract(epoch FROM $1::timestamptz + interval '\(flagSettle)' - clock_timestamp()) * 1000))::bigint,
                           (SELECT count(*) FROM pg_stat_activity
                            WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                              AND xact_start < $1::timestamptz + interval '\(flagSettle)')
                    """, [flag.updatedAt]).first ?? []
            } catch {
                throw MigrationToolError(.database, "backfill \(session.migration.name): cannot check for transactions older than dual_write: \(error)")
            }
            let settleMs = Int(row.first.flatMap { $0 } ?? "") ?? 0
            let older = Int(row.dropFirst().first.flatMap { $0 } ?? "") ?? 0
            if settleMs == 0 && older == 0 { return }
            if !logged {
                environment.logger.notice("backfill waiting for writes from before dual_write", metadata: [
                    "migration": "\(session.migration.name)", "flag_updated_at": "\(flag.updatedAt)", "open_transactions": "\(older)",
                ])
                logged = true
            }
            guard ContinuousClock.now < deadline else {
                throw MigrationToolError(.gaveUp, "backfill \(session.migration.name): gave up: \(older) transactions that began "
                    + "before dual_write took effect (flag \(flag.name) changed at \(flag.updatedAt)) are still open after "
                    + "--max-pause \(ConfigValues.describe(duration: maxWait)); their writes may not be mirrored")
            }
            environment.sleep(min(pause, settleMs > 0 ? .milliseconds(settleMs) : pause))
            if environment.stopRequested() { return }
        }
    }

    struct BatchResult {
        var rowsRead: Int
        var rowsInserted: Int
        var lastKey: [String]?
    }

    /// Runs one batch statement, again after a deadlock or another transient conflict (the failed attempt
    /// rolled back whole), at most `maxAttempts` times.
    private static func runBatch(_ batch: SQLStatement, session: MigrationSession, keyCount: Int, logger: Logger,
                                 sleep: (Duration) -> Void) throws(ControlError) -> BatchResult {
        var attempt = 1
        while true {
            do throws(ControlError) {
                let rows = try session.data.execute(batch.text, batch.parameters)
                guard let row = rows.first, row.count >= 2 + keyCount else {
                    throw ControlError(message: "the batch statement returned no result row")
                }
                if session.sharesDatabase, row.count > 2 + keyCount, row[2 + keyCount] != "1" {
                    throw ControlError(message: "the checkpoint row of \(session.migration.name) in \(session.store.progressTable) "
                        + "is missing; the batch was rolled back")
                }
                let key = Array(row[2..<(2 + keyCount)])
                return BatchResult(rowsRead: Int(row[0] ?? "") ?? 0, rowsInserted: Int(row[1] ?? "") ?? 0,
                                   lastKey: key.contains(where: { $0 == nil }) ? nil : key.map { $0 ?? "" })
            } catch {
                guard let state = error.sqlState, retryableStates.contains(state), attempt < maxAttempts else { throw error }
                logger.warning("backfill batch retried", metadata: [
                    "migration": "\(session.migration.name)", "attempt": "\(attempt + 1)", "error": "\(error)",
                ])
                sleep(.milliseconds(100 << attempt))
                attempt += 1
            }
        }
    }

    /// Runs one orphan cleanup in a REPEATABLE READ transaction of its own (see `OrphanCleanupPlan`), again
    /// after a serialization failure, a deadlock or a lock timeout (each rolls it back whole), at most
    /// `maxAttempts` times. Returns the rows deleted, or nil when it kept giving way: the range is then
    /// tried again later.
    private static func runCleanup(_ plan: OrphanCleanupPlan, session: MigrationSession, logger: Logger,
                                   sleep: (Duration) -> Void) throws(ControlError) -> Int? {
        var lock = plan.lock
        if let probe = plan.probe, try session.data.execute(probe.text, probe.parameters).first?.first != "t" {
            lock = nil
        }
        if lock != nil {
            logger.info("backfill orphan cleanup locks the old relation", metadata: [
                "migration": "\(session.migration.name)", "keys": "\(plan.range)",
                "why": "every mapped column is a key column, so a mirrored insert keeps an existing new row without a trace",
            ])
        }
        var attempt = 1
        while true {
            do throws(ControlError) {
                try session.data.executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ")
                if let lock { try session.data.executeScript(lock) }
                let rows = try session.data.execute(plan.delete.text, plan.delete.parameters)
                guard let row = rows.first, let removed = row.first.flatMap({ $0 }).flatMap({ Int($0) }) else {
                    throw ControlError(message: "the orphan cleanup returned no result row")
                }
                if session.sharesDatabase, row.count > 1, row[1] != "1" {
                    throw ControlError(message: "the checkpoint row of \(session.migration.name) in \(session.store.progressTable) "
                        + "is missing; the cleanup was rolled back")
                }
                try session.data.executeScript("COMMIT")
                return removed
            } catch {
                try? session.data.executeScript("ROLLBACK")
                guard let state = error.sqlState, retryableStates.contains(state) else { throw error }
                guard attempt < maxAttempts else {
                    logger.warning("backfill orphan cleanup deferred", metadata: [
                        "migration": "\(session.migration.name)", "keys": "\(plan.range)", "error": "\(error)",
                    ])
                    return nil
                }
                logger.info("backfill orphan cleanup retried", metadata: [
                    "migration": "\(session.migration.name)", "attempt": "\(attempt + 1)", "error": "\(error)",
                ])
                sleep(.milliseconds(100 << attempt))
                attempt += 1
            }
        }
    }

    /// The server's clock, when the oldest open transaction of the database (other than this session's)
    /// began, and the prepared transactions of the database: what says which copied ranges can be cleaned.
    /// Like the wait for dual_write, it needs to see other users' sessions (superuser or pg_read_all_stats).
    private static func sampleHorizon(_ c: ControlConnection) throws(ControlError) -> TransactionHorizon {
        let row = try c.execute("""
            SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                   (SELECT (extract(epoch FROM min(xact_start)) * 1000000)::bigint FROM pg_stat_activity
                    WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()),
                   (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())
            """).first ?? []
        guard row.count == 3, let now = row[0].flatMap({ Int64($0) }) else {
            throw ControlError(message: "reading the server's clock and open transactions returned no row")
        }
        return TransactionHorizon(now: now, oldestStart: row[1].flatMap { Int64($0) },
                                  preparedTransactions: row[2].flatMap { Int($0) } ?? 0)
    }

    /// The old relation's size from the planner's statistics, or a count when it was never analyzed.
    private static func estimatedRows(_ relation: RelationName, _ c: ControlConnection) throws(ControlError) -> Int? {
        let reltuples = try c.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass", [relation.description])
            .first?.first.flatMap { $0 }.flatMap { Int($0) }
        if let reltuples, reltuples >= 0 { return reltuples }
        return try c.execute("SELECT count(*) FROM \(relation)").first?.first.flatMap { $0 }.flatMap { Int($0) }
    }

    /// Client sessions running a statement (other than this one), and the largest replay lag of any replica.
    private static func sampleLoad(_ c: ControlConnection) throws(ControlError) -> (sessions: Int, lagMs: Int) {
        let row = try c.execute("""
            SELECT (SELECT count(*) FROM pg_stat_activity
                    WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()),
                   (SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::bigint FROM pg_stat_replication)
            """).first
        return (Int(row?[0] ?? "") ?? 0, Int(row?[1] ?? "") ?? 0)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int((duration / .milliseconds(1)).rounded())
    }
}
