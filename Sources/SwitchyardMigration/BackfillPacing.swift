// How fast the backfill goes: the adaptive batch size, the rows-per-second cap and the load pauses.

import SwitchyardConfig

/// The batch size, adjusted after each full batch toward batches of `target` duration, within bounds:
/// from a tenth of the configured size to ten times it, and never more than one second's worth of rows
/// under a rows-per-second cap (so the sleep between batches stays short and the rate smooth).
public struct BatchSizer: Sendable, Equatable {
    public private(set) var size: Int
    public let bounds: ClosedRange<Int>
    /// nil keeps the size fixed.
    public let target: Duration?

    /// The largest factor by which one batch's timing may grow or shrink the next, so that one slow or fast
    /// batch (a cold cache, a checkpoint) does not swing the size.
    static let maximumStep = 2.0

    public init(_ config: BackfillConfig) {
        var upper = config.targetBatchMs > 0 ? min(config.batchSize * 10, BackfillConfig.batchSizeRange.upperBound) : config.batchSize
        if config.rowsPerSecond > 0 { upper = min(upper, config.rowsPerSecond) }
        let lower = min(config.targetBatchMs > 0 ? max(1, config.batchSize / 10) : config.batchSize, upper)
        bounds = lower...upper
        size = min(max(config.batchSize, lower), upper)
        target = config.targetBatchMs > 0 ? .milliseconds(config.targetBatchMs) : nil
    }

    /// Records a batch that asked for `requested` rows, read `rows` and took `took`. Only a full batch says
    /// how long `requested` rows take; a short one is the last.
    public mutating func record(requested: Int, rows: Int, took: Duration) {
        guard let target, rows >= requested, requested > 0 else { return }
        let seconds = took / .seconds(1)
        let ratio = seconds > 0 ? (target / .seconds(1)) / seconds : Self.maximumStep
        let step = min(max(ratio, 1 / Self.maximumStep), Self.maximumStep)
        let next = Int((Double(size) * step).rounded())
        size = min(max(next, bounds.lowerBound), bounds.upperBound)
    }
}

/// The sleep after a batch that keeps the copy at `rowsPerSecond` or below: the time the batch's rows are
/// allowed to take, less the time the batch took. Paced batch by batch, so time spent paused for load is
/// never made up afterwards with a burst.
public func backfillRateSleep(rows: Int, took: Duration, rowsPerSecond: Int) -> Duration {
    guard rowsPerSecond > 0, rows > 0 else { return .zero }
    let allowed = Duration.seconds(Double(rows) / Double(rowsPerSecond))
    return allowed > took ? allowed - took : .zero
}

/// gh-ost-style load checks before each batch: wait while too many client sessions are active or a
/// replica lags too far, and give up once the waits add up to more than `maxPause`.
public struct LoadGate: Sendable, Equatable {
    public let maxActiveSessions: Int
    public let maxReplicationLagMs: Int
    public let pause: Duration
    public let maxPause: Duration
    /// The time spent waiting so far, over the whole run.
    public private(set) var paused: Duration = .zero

    public enum Decision: Sendable, Equatable {
        /// Run the next batch.
        case proceed
        /// Wait this long, then sample the load again.
        case wait(Duration, reason: String)
        /// Waiting longer would pass `maxPause`.
        case giveUp(reason: String)
    }

    public init(_ config: BackfillConfig, maxPause: Duration) {
        maxActiveSessions = config.maxActiveSessions
        maxReplicationLagMs = config.maxReplicationLagMs
        pause = .milliseconds(config.pauseMs)
        self.maxPause = maxPause
    }

    /// Whether any check is on; when none is, the load need not be sampled at all.
    public var isEnabled: Bool { maxActiveSessions > 0 || maxReplicationLagMs > 0 }

    /// Decides on a sample of the load: active client sessions (other than the backfill's own) and the
    /// largest replay lag of any replica, in milliseconds.
    public mutating func decide(activeSessions: Int, replicationLagMs: Int) -> Decision {
        var reasons: [String] = []
        if maxActiveSessions > 0, activeSessions > maxActiveSessions {
            reasons.append("\(activeSessions) active sessions, more than max_active_sessions \(maxActiveSessions)")
        }
        if maxReplicationLagMs > 0, replicationLagMs > maxReplicationLagMs {
            reasons.append("replication lag \(replicationLagMs) ms, more than max_replication_lag_ms \(maxReplicationLagMs)")
        }
        guard !reasons.isEmpty else { return .proceed }
        let reason = reasons.joined(separator: "; ")
        guard paused + pause <= maxPause else {
            return .giveUp(reason: "paused for load \(describe(paused)) in total, and waiting longer would pass "
                + "the --max-pause limit of \(describe(maxPause)); still \(reason)")
        }
        paused += pause
        return .wait(pause, reason: reason)
    }

    private func describe(_ duration: Duration) -> String {
        ConfigValues.describe(duration: .milliseconds(Int64((duration / .milliseconds(1)).rounded())))
    }
}
