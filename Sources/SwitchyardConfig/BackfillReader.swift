// Reads a migration's `backfill:` section: batch size and throttles, each checked with its line.

import Yams

extension DocumentReader {
    static let backfillKeys = [
        "batch_size", "rows_per_second", "target_batch_ms", "max_active_sessions", "max_replication_lag_ms", "pause_ms",
    ]

    /// `backfill: { batch_size: 1000, rows_per_second: 0, ... }`; a null section keeps the defaults.
    func backfill(_ section: Entry) throws(ConfigError) -> BackfillConfig {
        var result = BackfillConfig()
        for entry in try nestedEntries(section, keys: Self.backfillKeys, example: "{batch_size: 1000, rows_per_second: 5000}") {
            switch entry.name {
            case "batch_size":
                result.batchSize = try count(entry, in: BackfillConfig.batchSizeRange, what: "rows per batch")
            case "rows_per_second":
                result.rowsPerSecond = try count(entry, in: BackfillConfig.rowsPerSecondRange, what: "rows per second (0: no limit)")
            case "target_batch_ms":
                result.targetBatchMs = try count(
                    entry, in: BackfillConfig.targetBatchMsRange, what: "milliseconds per batch (0: keep batch_size fixed)")
            case "max_active_sessions":
                result.maxActiveSessions = try count(
                    entry, in: BackfillConfig.maxActiveSessionsRange, what: "active sessions (0: off)")
            case "max_replication_lag_ms":
                result.maxReplicationLagMs = try count(
                    entry, in: BackfillConfig.maxReplicationLagMsRange, what: "milliseconds of replay lag (0: off)")
            case "pause_ms":
                result.pauseMs = try count(entry, in: BackfillConfig.pauseMsRange, what: "milliseconds")
            default:
                throw unknownKey(entry, known: Self.backfillKeys)
            }
        }
        return result
    }

    /// A whole number within `range`, with the range spelled out in the error.
    private func count(_ entry: Entry, in range: ClosedRange<Int>, what: String) throws(ConfigError) -> Int {
        let expectation = "a whole number of \(what) from \(range.lowerBound) to \(range.upperBound)"
        let text = try scalarText(entry, expecting: expectation)
        return try located(entry) { () throws(ConfigError) in
            try ConfigValues.integer(text, key: entry.path, in: range, what: expectation)
        }
    }
}
