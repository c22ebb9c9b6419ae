// A migration's backfill section: defaults, every key, and each mistake reported at its key and line.

import Foundation
import Testing
import SwitchyardConfig

@Suite("The backfill section")
struct BackfillConfigTests {
    /// MigrationDocument with a backfill section after extra_new_columns (line 12): its lines start at 13.
    static func document(_ backfill: String) -> String {
        MigrationDocument.replacing([12: "      tenant_id: \"0\"\n" + backfill])
    }

    @Test("without a backfill section, or with an empty one, the defaults apply")
    func defaults() throws {
        for text in [MigrationDocument.text, Self.document("    backfill:"), Self.document("    backfill: {}")] {
            let config = try ConfigLoader.parse(yaml: text)
            #expect(config.migrations[0].backfill == BackfillConfig())
        }
        let defaults = BackfillConfig()
        #expect(defaults.batchSize == 1000)
        #expect(defaults.rowsPerSecond == 0)
        #expect(defaults.targetBatchMs == 100)
        #expect(defaults.maxActiveSessions == 0)
        #expect(defaults.maxReplicationLagMs == 0)
        #expect(defaults.pauseMs == 500)
        #expect(defaults.nonDefaultSettings.isEmpty)
    }

    @Test("every key is read, and the summary shows those that differ from the defaults")
    func everyKey() throws {
        let config = try ConfigLoader.parse(yaml: Self.document("""
                backfill:
                  batch_size: 250
                  rows_per_second: 5000
                  target_batch_ms: 0
                  max_active_sessions: 40
                  max_replication_lag_ms: 2000
                  pause_ms: 500
            """))
        #expect(config.migrations[0].backfill == BackfillConfig(
            batchSize: 250, rowsPerSecond: 5000, targetBatchMs: 0, maxActiveSessions: 40, maxReplicationLagMs: 2000, pauseMs: 500))
        let summary = try #require(config.summaryLines().first { $0.key == "migrations.users_v2" })
        #expect(summary.value.hasSuffix(" backfill={batch_size: 250, rows_per_second: 5000, target_batch_ms: 0, "
            + "max_active_sessions: 40, max_replication_lag_ms: 2000}"))
    }

    @Test("a flow mapping works too")
    func flow() throws {
        let config = try ConfigLoader.parse(yaml: Self.document("    backfill: {batch_size: 10, pause_ms: 50}"))
        #expect(config.migrations[0].backfill == BackfillConfig(batchSize: 10, pauseMs: 50))
    }

    @Test("mistakes name the key and line", arguments: [
        InvalidCase(document("    backfill:\n      batch_size: 0"), key: "migrations[0].backfill.batch_size", line: 14,
                    "expected a whole number of rows per batch from 1 to 1000000, got 0"),
        InvalidCase(document("    backfill:\n      batch_size: lots"), key: "migrations[0].backfill.batch_size", line: 14,
                    "got \"lots\""),
        InvalidCase(document("    backfill:\n      rows_per_second: -5"), key: "migrations[0].backfill.rows_per_second", line: 14,
                    "rows per second (0: no limit) from 0 to 100000000, got -5"),
        InvalidCase(document("    backfill:\n      target_batch_ms: 1.5"), key: "migrations[0].backfill.target_batch_ms", line: 14,
                    "got \"1.5\""),
        InvalidCase(document("    backfill:\n      max_active_sessions: [3]"), key: "migrations[0].backfill.max_active_sessions",
                    line: 14, "got a list"),
        InvalidCase(document("    backfill:\n      max_replication_lag_ms:"), key: "migrations[0].backfill.max_replication_lag_ms",
                    line: 14, "got nothing (null)"),
        InvalidCase(document("    backfill:\n      pause_ms: 0"), key: "migrations[0].backfill.pause_ms", line: 14,
                    "from 1 to 600000, got 0"),
        InvalidCase(document("    backfill:\n      batchsize: 10"), key: "migrations[0].backfill.batchsize", line: 14,
                    "unknown key; did you mean batch_size?"),
        InvalidCase(document("    backfill:\n      rowsPerSecond: 10"), key: "migrations[0].backfill.rowsPerSecond", line: 14,
                    "did you mean rows_per_second?"),
        InvalidCase(document("    backfill: 1000"), key: "migrations[0].backfill", line: 13,
                    "expected a mapping with the keys batch_size, rows_per_second, target_batch_ms"),
        InvalidCase(document("    backfil: {}"), key: "migrations[0].backfil", line: 13, "did you mean backfill?"),
    ])
    func rejected(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }
}

@Suite("The backfill section in the example files")
struct BackfillExampleTests {
    @Test("migration-example.yaml sets throttles; switchyard.yaml documents the defaults")
    func examples() throws {
        let example = try ConfigLoader.load(path: Fixture.migrationExamplePath)
        #expect(example.migrations[0].backfill == BackfillConfig(
            batchSize: 1000, rowsPerSecond: 5000, targetBatchMs: 100, maxActiveSessions: 64, maxReplicationLagMs: 2000, pauseMs: 500))
        let documented = try ConfigLoader.load(path: Fixture.examplePath)
        #expect(documented.migrations[0].backfill == BackfillConfig())
        let text = try String(contentsOfFile: Fixture.examplePath, encoding: .utf8)
        for key in ["backfill"] + ["batch_size", "rows_per_second", "target_batch_ms", "max_active_sessions",
                                   "max_replication_lag_ms", "pause_ms"].map({ "  \($0)" }) {
            #expect(text.contains("\n    \(key):"), "\(key) missing")
        }
    }
}
