// `switchyard verify`: compares old and new chunk by chunk, each in one snapshot, and records the result.
import Logging
import SwitchyardConfig
import SwitchyardMigration

public struct VerifyOptions: Sendable, Equatable {
    /// Old rows per chunk.
    public var chunkSize: Int
    /// The most differing keys to name.
    public var maxKeys: Int

    public init(chunkSize: Int = 1000, maxKeys: Int = 100) {
        self.chunkSize = chunkSize
        self.maxKeys = maxKeys
    }
}

/// The outcome of one `switchyard verify` run.
public struct VerifyReport: Sendable {
    public var migration: String
    public var tally: VerifyTally
    public var duration: Duration
    /// The id of the run's row in `<schema>.verify_runs`.
    public var runID: Int64

    public var lines: [String] { tally.reportLines(migration: migration, duration: duration) }
}

/// Walks the old relation's keys in chunks. Each chunk is one REPEATABLE READ READ ONLY transaction that
/// finds the chunk's upper key and counts and checksums both sides over that key range, so both are read
/// in the same snapshot: a dual-written change is in both or in neither, and never shows as a difference.
/// A differing chunk is narrowed down to its keys in the same transaction (see `VerifyDescent`). Plain
/// reads only: no locks beyond the ACCESS SHARE every SELECT takes.
public enum VerifyRunner {
    public static func run(_ config: SwitchyardConfiguration, migration name: String, options: VerifyOptions,
                           logger: Logger) throws(MigrationToolError) -> VerifyReport {
        precondition(options.chunkSize > 0 && options.maxKeys >= 0)
        let session = try MigrationSession.open(config, migration: name, applicationName: "switchyard-verify")
        let statements = VerifyStatements(session.resolved)
        let data = session.data
        var tally = VerifyTally(maxKeys: options.maxKeys)
        let start = ContinuousClock.now
        let startedAt: String
        do throws(ControlError) { startedAt = try session.store.now(session.control) } catch {
            throw MigrationToolError(.database, "verify \(name): \(error)")
        }
        logger.info("verify starting", metadata: [
            "migration": "\(name)", "old": "\(session.migration.old)", "new": "\(session.migration.new)",
            "chunk_size": "\(options.chunkSize)",
        ])

        var lower: [String]?
        while true {
            var range = KeyRange(lower: lower, upper: nil)
            do throws(ControlError) {
                try data.executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                let bound = try rows(data, statements.chunkBound(after: lower, size: options.chunkSize))
                // Two keys: the chunk ends at the first and more follow; fewer: this is the last chunk, open-ended.
                if bound.count == 2 { range.upper = bound[0] }
                let summary = try summarize(data, statements, range)
                if var descent = tally.record(chunk: range, summary) {
                    try descend(&descent, data, statements)
                    tally.record(descent)
                    logger.debug("chunk differs", metadata: [
                        "migration": "\(name)", "range": "\(range)", "keys": "\(descent.differingKeyCount)",
                    ])
                }
                try data.executeScript("COMMIT")
            } catch {
                try? data.executeScript("ROLLBACK")
                throw MigrationToolError(.database, "verify \(name): the chunk \(range) failed: \(error)")
            }
            if tally.chunks % 100 == 0 {
                logger.info("verify progress", metadata: [
                    "migration": "\(name)", "chunks": "\(tally.chunks)", "rows_old": "\(tally.rowsOld)",
                    "differing_chunks": "\(tally.differingChunks)",
                ])
            }
            guard let upper = range.upper else { break }
            lower = upper
        }

        let duration = ContinuousClock.now - start
        let runID: Int64
        do throws(ControlError) {
            runID = try session.store.recordVerify(session.control, VerifyRunRecord(migration: name, startedAt: startedAt, tally: tally))
        } catch {
            throw MigrationToolError(.database, "verify \(name): the result could not be recorded in "
                + "\(session.store.verifyRunsTable): \(error)")
        }
        return VerifyReport(migration: name, tally: tally, duration: duration, runID: runID)
    }

    /// Runs the descent's queries until it has named the range's differing keys (or used up the budget).
    private static func descend(_ descent: inout VerifyDescent, _ c: ControlConnection, _ statements: VerifyStatements)
        throws(ControlError)
    {
        while true {
            switch descent.next() {
            case .summarize(let range):
                descent.summarized(try summarize(c, statements, range))
            case .findSplit(let range, let side, let offset):
                descent.split(at: try rows(c, statements.key(at: offset, of: side, in: range)).first)
            case .compareRows(let range, let limit):
                let statement = statements.differences(range, limit: limit)
                let found = try c.execute(statement.text, statement.parameters)
                let keyCount = statements.migration.migration.key.count
                var differences: [KeyDifference] = []
                var total = 0
                for row in found {
                    let kind = row[keyCount].flatMap(KeyDifference.Kind.init(rawValue:)) ?? .different
                    differences.append(KeyDifference(key: row[0..<keyCount].map { $0 ?? "" }, kind: kind))
                    total = Int(row[keyCount + 1] ?? "") ?? total
                }
                descent.compared(differences, total: total)
            case .finished:
                return
            }
        }
    }

    private static func summarize(_ c: ControlConnection, _ statements: VerifyStatements, _ range: KeyRange)
        throws(ControlError) -> RangeSummary
    {
        let statement = statements.summary(range)
        guard let row = try c.execute(statement.text, statement.parameters).first, row.count == 4 else {
            throw ControlError(message: "the checksum statement returned no row")
        }
        return RangeSummary(oldRows: Int(row[0] ?? "") ?? 0, oldChecksum: row[1], newRows: Int(row[2] ?? "") ?? 0,
                            newChecksum: row[3])
    }

    /// The result rows of a statement whose columns are a key's values (never NULL in a primary key).
    private static func rows(_ c: ControlConnection, _ statement: SQLStatement) throws(ControlError) -> [[String]] {
        try c.execute(statement.text, statement.parameters).map { $0.map { $0 ?? "" } }
    }
}
