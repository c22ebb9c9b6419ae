// `switchyard backfill`: copy the rows that existed before dual-write into the new relation.
import ArgumentParser
import Foundation
import Glibc
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardIO
import SwitchyardMigration
import SwitchyardServer

struct Backfill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the old relation's existing rows into the new one, in key order, in short resumable batches.",
        discussion: """
            Each batch copies the next rows after the checkpoint through the forward mapping (ON CONFLICT DO \
            NOTHING, so rows the proxy already mirrored are kept) and writes the checkpoint in the same \
            transaction. Run it again after a crash or Ctrl-C and it continues where it stopped; after the end \
            it copies nothing. The migration's flag must be at dual_write or later; before the first batch it \
            waits for the flip to reach every instance and for the transactions that began before it to end.

            Behind the copy, each batch's key range is checked once every transaction older than the batch has \
            ended: a copied row whose old row a concurrent DELETE removed without its mirror seeing the copy is \
            deleted again (counted as orphans removed). The end of a run waits for that, up to --max-pause; what \
            is left is checked by the next run.

            Throttles come from the migration's backfill: settings; the options below override them.

            Exit status: 0 done (or stopped by --max-batches), 1 database error or load pause limit reached, \
            2 configuration or usage error (including a flag before dual_write), 130 interrupted (the batch in \
            flight is completed and checkpointed first; a second Ctrl-C aborts it).
            """)

    @OptionGroup var options: ConfigOptions
    @Argument(help: "The migration's name (migrations[].name).") var migration: String

    @Option(help: "Rows per batch (backfill.batch_size); the starting size when --target-batch-ms adapts it.")
    var batchSize: Int?
    @Option(help: "Cap on rows copied per second, 0 for none (backfill.rows_per_second).")
    var rowsPerSecond: Int?
    @Option(help: "Grow or shrink batches toward this duration in ms, 0 for a fixed size (backfill.target_batch_ms).")
    var targetBatchMs: Int?
    @Option(help: "Pause while more client sessions than this are active, 0 for off (backfill.max_active_sessions).")
    var maxActiveSessions: Int?
    @Option(help: "Pause while a replica's replay lag exceeds this many ms, 0 for off (backfill.max_replication_lag_ms).")
    var maxReplicationLagMs: Int?
    @Option(help: "While paused, check the load again after this many ms (backfill.pause_ms).")
    var pauseMs: Int?
    @Option(help: "Give up (exit 1) once load pauses add up to more than this, or the wait for transactions from before dual_write, or at the end for those older than the last batches, lasts longer; such as 30m or 1h.")
    var maxPause: String = "1h"
    @Option(help: "Stop after this many batches; the next run continues from the checkpoint.")
    var maxBatches: Int?
    @Option(help: "Without a terminal, log progress once every this many batches.")
    var logEvery: Int = 10
    @ArgumentParser.Flag(help: "Begin again at the first key instead of the checkpoint (harmless: present rows are kept).")
    var restart = false
    @ArgumentParser.Flag(help: "Run even if the flag is before dual_write. Unsafe: rows changed meanwhile are not mirrored and end up stale or missing in the new relation.")
    var force = false

    func run() throws {
        // Blocked before any other thread starts, so the watcher below is the only one that sees them.
        let signals = try SignalWatcher(signals: [SIGINT, SIGTERM])
        let config = try loadOrExit(options)
        let settings: BackfillConfig
        let pauseLimit: Duration
        do {
            (settings, pauseLimit) = try resolvedSettings(config)
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let logger = bootstrapLogging(config, label: "switchyard.backfill")
        let stop = StopRequest(signals: signals)
        let onTerminal = isatty(STDERR_FILENO) == 1
        let logEvery = max(1, self.logEvery)
        let migration = self.migration
        let environment = BackfillEnvironment(
            logger: logger,
            progress: { progress in
                if onTerminal {
                    // The cursor goes back to the line's start, so a log line written meanwhile replaces the bar
                    // instead of running on after it; the next batch draws the bar again below it.
                    FileHandle.standardError.write(Data(("\u{1B}[2K" + progress.bar() + "\r").utf8))
                } else if progress.batches % logEvery == 0 {
                    logger.info("backfill progress", metadata: [
                        "migration": "\(migration)", "rows_read": "\(progress.rowsRead)",
                        "rows_inserted": "\(progress.rowsInserted)", "batches": "\(progress.batches)",
                        "rows_per_second": "\(Int(progress.rowsPerSecond.rounded()))",
                        "estimated_rows": "\(progress.estimatedTotal.map(String.init) ?? "?")",
                        "eta_s": "\(progress.eta.map { String(Int(($0 / .seconds(1)).rounded())) } ?? "?")",
                        "batch_size": "\(progress.batchSize)",
                    ])
                }
            },
            sleep: { stop.sleep($0) },
            stopRequested: { stop.requested })
        let options = BackfillOptions(settings: settings, maxPause: pauseLimit, restart: restart, force: force,
                                      maxBatches: maxBatches)
        let report: BackfillReport
        do {
            report = try BackfillRunner.run(config, migration: migration, options: options, environment: environment)
        } catch {
            if onTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
            FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
            switch error.kind {
            case .usage, .refused: throw ExitCode(2)
            case .database, .gaveUp: throw ExitCode(1)
            }
        }
        if onTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        print(report.summaryLine)
        if report.stop == .interrupted { throw ExitCode(130) }
    }

    /// The migration's backfill settings with this command's overrides, each checked against the range
    /// the configuration file allows.
    private func resolvedSettings(_ config: SwitchyardConfiguration) throws(ConfigError) -> (BackfillConfig, Duration) {
        var settings = config.migrations.first { $0.name == migration }?.backfill ?? BackfillConfig()
        func check(_ value: Int?, _ flag: String, _ range: ClosedRange<Int>, _ apply: (Int) -> Void) throws(ConfigError) {
            guard let value else { return }
            guard range.contains(value) else {
                throw ConfigError(key: flag, message: "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
            apply(value)
        }
        try check(batchSize, "--batch-size", BackfillConfig.batchSizeRange) { settings.batchSize = $0 }
        try check(rowsPerSecond, "--rows-per-second", BackfillConfig.rowsPerSecondRange) { settings.rowsPerSecond = $0 }
        try check(targetBatchMs, "--target-batch-ms", BackfillConfig.targetBatchMsRange) { settings.targetBatchMs = $0 }
        try check(maxActiveSessions, "--max-active-sessions", BackfillConfig.maxActiveSessionsRange) { settings.maxActiveSessions = $0 }
        try check(maxReplicationLagMs, "--max-replication-lag-ms", BackfillConfig.maxReplicationLagMsRange) {
            settings.maxReplicationLagMs = $0
        }
        try check(pauseMs, "--pause-ms", BackfillConfig.pauseMsRange) { settings.pauseMs = $0 }
        try check(maxBatches, "--max-batches", 1...Int.max) { _ in }
        let pauseLimit = try ConfigValues.duration(maxPause, key: "--max-pause")
        return (settings, pauseLimit)
    }
}

/// A stop asked for with SIGINT or SIGTERM. The first lets the batch in flight finish and be checkpointed;
/// a second exits at once (the server rolls the open batch back when the connection drops).
final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)

    init(signals: SignalWatcher) {
        let thread = Thread { [self] in
            while true {
                guard signals.wait(timeoutMs: 1000) != nil else { continue }
                if flag.exchange(true, ordering: .acquiringAndReleasing) {
                    FileHandle.standardError.write(Data("\nswitchyard: stopping now; the batch in flight is rolled back\n".utf8))
                    Glibc.exit(130)
                }
                FileHandle.standardError.write(Data("\nswitchyard: stopping after the batch in flight; press Ctrl-C again to stop at once\n".utf8))
            }
        }
        thread.start()
    }

    var requested: Bool { flag.load(ordering: .acquiring) }

    /// Sleeps `duration`, returning early once a stop is requested.
    func sleep(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !requested {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return }
            usleep(UInt32(max(1, min(left, .milliseconds(50)) / .microseconds(1))))
        }
    }
}
