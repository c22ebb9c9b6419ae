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
/// and why it is safe while the proxy dual-writes).
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
        logger.info("backfill starting", metadata: [
            "migration": "\(name)", "old": "\(m.old)", "new": "\(m.new)", "stage": "\(stage.rawValue)",
            "after_key": "\(lastKey.map(KeyRange.describe) ?? "(first key)")", "estimated_rows": "\(estimate.map(String.init) ?? "?")",
            "batch_size": "\(sizer.size)", "rows_per_second": "\(options.settings.rowsPerSecond)",
        ])

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
            if let key = result.lastKey { lastKey = key }
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
        return BackfillReport(migration: name, stop: stop, run: run, total: total, duration: ContinuousClock.now - start,
                              lastKey: lastKey)
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
