// What a backfill run did, and the summary line it ends with.

/// Why a backfill run ended without an error.
public enum BackfillStop: String, Sendable, Equatable {
    /// The last batch reached the end of the old relation.
    case finished
    /// `--max-batches` batches ran; the checkpoint is where the next run starts.
    case maxBatches = "max_batches"
    /// SIGINT or SIGTERM: the batch in flight was completed and checkpointed first.
    case interrupted
}

/// Counts of a backfill: for one run, or since the backfill began (`--restart` begins it again).
public struct BackfillCounts: Sendable, Equatable {
    public var rowsRead = 0
    public var rowsInserted = 0
    public var batches = 0
    /// Copied rows the orphan cleanup deleted again: their old rows were deleted by a client whose mirror
    /// missed the copy (see `OrphanCleanupPlan`).
    public var orphansRemoved = 0

    public init(rowsRead: Int = 0, rowsInserted: Int = 0, batches: Int = 0, orphansRemoved: Int = 0) {
        self.rowsRead = rowsRead
        self.rowsInserted = rowsInserted
        self.batches = batches
        self.orphansRemoved = orphansRemoved
    }

    /// Rows read that the new relation already had (mirrored by dual-write, or copied by an earlier run).
    public var rowsSkipped: Int { rowsRead - rowsInserted }

    public mutating func add(rowsRead: Int, rowsInserted: Int) {
        self.rowsRead += rowsRead
        self.rowsInserted += rowsInserted
        batches += 1
    }
}

/// The outcome of one `switchyard backfill` run.
public struct BackfillReport: Sendable, Equatable {
    public var migration: String
    public var stop: BackfillStop
    /// This run's counts.
    public var run: BackfillCounts
    /// The counts since the backfill began, this run included.
    public var total: BackfillCounts
    public var duration: Duration
    /// The checkpoint: the last key copied, nil before the first row.
    public var lastKey: [String]?
    /// Copied keys the orphan cleanup has not checked yet (the next run checks them); nil when none.
    public var cleanupPending: KeyRange?

    public init(migration: String, stop: BackfillStop, run: BackfillCounts, total: BackfillCounts, duration: Duration,
                lastKey: [String]?, cleanupPending: KeyRange? = nil) {
        self.migration = migration
        self.stop = stop
        self.run = run
        self.total = total
        self.duration = duration
        self.lastKey = lastKey
        self.cleanupPending = cleanupPending
    }

    /// This run's rows read per second.
    public var rowsPerSecond: Int {
        let seconds = duration / .seconds(1)
        return seconds > 0 ? Int((Double(run.rowsRead) / seconds).rounded()) : 0
    }

    /// "backfill users_v2: finished: 10000 rows read, 10000 inserted, 0 skipped (already present), 10 batches,
    /// 0 orphans removed, 1.234 s (8104 rows/s)", with the totals when earlier runs contributed, where to resume
    /// when it stopped early, and the keys still to check for orphans.
    public var summaryLine: String {
        let how = switch stop {
        case .finished: "finished"
        case .maxBatches: "stopped after --max-batches \(run.batches)"
        case .interrupted: "interrupted"
        }
        let seconds = Double(Int((duration / .milliseconds(1)).rounded())) / 1000
        var line = "backfill \(migration): \(how): \(run.rowsRead) rows read, \(run.rowsInserted) inserted, "
            + "\(run.rowsSkipped) skipped (already present), \(run.batches) batches, \(run.orphansRemoved) orphans removed, "
            + "\(seconds) s (\(rowsPerSecond) rows/s)"
        if total != run {
            line += "; since the backfill began: \(total.rowsRead) read, \(total.rowsInserted) inserted, \(total.batches) batches, "
                + "\(total.orphansRemoved) orphans removed"
        }
        if stop != .finished {
            line += "; run it again to continue " + (lastKey.map { "after \(KeyRange.describe($0))" } ?? "from the first key")
        }
        if let cleanupPending {
            line += "; the orphan cleanup of the keys \(cleanupPending) is still to run"
        }
        return line
    }
}
