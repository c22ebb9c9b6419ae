// The `backfill:` settings of a migration: batch size and the throttles `switchyard backfill` obeys.

/// How `switchyard backfill` paces its copy of the rows that existed before dual-write. Each key can be
/// overridden on the command line; zero turns a throttle off.
public struct BackfillConfig: Sendable, Equatable {
    /// batch_size: rows per batch (one short transaction each); the starting size when target_batch_ms adapts it.
    public var batchSize: Int
    /// rows_per_second: a cap on the copy rate, kept by sleeping between batches; 0 means no limit.
    public var rowsPerSecond: Int
    /// target_batch_ms: the batch size grows or shrinks toward batches this long; 0 keeps batch_size fixed.
    public var targetBatchMs: Int
    /// max_active_sessions: pause while more client sessions than this are running a statement; 0 is off.
    public var maxActiveSessions: Int
    /// max_replication_lag_ms: pause while a replica's replay lag exceeds this; 0 is off.
    public var maxReplicationLagMs: Int
    /// pause_ms: how long to wait before checking the load again while paused.
    public var pauseMs: Int

    public static let batchSizeRange = 1...1_000_000
    public static let rowsPerSecondRange = 0...100_000_000
    public static let targetBatchMsRange = 0...600_000
    public static let maxActiveSessionsRange = 0...1_000_000
    public static let maxReplicationLagMsRange = 0...86_400_000
    public static let pauseMsRange = 1...600_000

    public init(
        batchSize: Int = 1000, rowsPerSecond: Int = 0, targetBatchMs: Int = 100, maxActiveSessions: Int = 0,
        maxReplicationLagMs: Int = 0, pauseMs: Int = 500
    ) {
        self.batchSize = batchSize
        self.rowsPerSecond = rowsPerSecond
        self.targetBatchMs = targetBatchMs
        self.maxActiveSessions = maxActiveSessions
        self.maxReplicationLagMs = maxReplicationLagMs
        self.pauseMs = pauseMs
    }

    /// The keys that differ from the defaults, as `key: value` in file order (for summaries).
    public var nonDefaultSettings: [(key: String, value: Int)] {
        let defaults = BackfillConfig()
        return [
            ("batch_size", batchSize, defaults.batchSize),
            ("rows_per_second", rowsPerSecond, defaults.rowsPerSecond),
            ("target_batch_ms", targetBatchMs, defaults.targetBatchMs),
            ("max_active_sessions", maxActiveSessions, defaults.maxActiveSessions),
            ("max_replication_lag_ms", maxReplicationLagMs, defaults.maxReplicationLagMs),
            ("pause_ms", pauseMs, defaults.pauseMs),
        ].filter { $0.1 != $0.2 }.map { ($0.0, $0.1) }
    }
}
