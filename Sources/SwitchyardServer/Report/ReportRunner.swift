// Gathers a flag's evidence from the control schema, where every instance stores its own, into a CutoverReport.
import Foundation
import SwitchyardConfig

public enum ReportRunner {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var isUsage: Bool
        public var description: String { message }
    }

    public static func run(_ config: SwitchyardConfiguration, flag name: String) throws(Failure) -> CutoverReport {
        guard let flag = config.flags.first(where: { $0.name == name }) else {
            throw Failure(message: "no flag named \(name) in the configuration; its flags are \(config.flags.map(\.name).joined(separator: ", "))", isUsage: true)
        }
        do throws(ControlError) {
            let (connection, store) = try ControlSync.open(config)
            let q = RelationName.quotedIdentifier(store.schema)
            let stored = try store.load(connection).first { $0.name == name }
            var report = CutoverReport(
                flag: name, migration: flag.migration, stage: stored?.stage.rawValue ?? flag.stage.rawValue,
                percent: String(format: "%.2f%%", Double(stored?.percentBasisPoints ?? flag.percentBasisPoints) / 100),
                generatedAt: try connection.execute("SELECT now()::text").first?.first.flatMap { $0 } ?? "",
                instances: [], shadow: (0, 0, 0, 0, 0), latency: [], readDivergences: [],
                writeDivergences: try store.divergences(connection, limit: 1000).filter { $0.migration == flag.migration },
                backfill: nil, verify: nil, history: try store.history(connection, limit: 1000), guardrails: flag.guardrails)
            report.absorb(evidence: try store.evidence(connection, flag: name))
            // Backfill and verify, when those commands have run against this control schema.
            if let row = try? connection.execute(
                "SELECT rows_inserted, finished_at::text FROM \(q).backfill_progress WHERE migration = $1", [flag.migration]).first {
                report.backfill = CutoverReport.Backfill(rowsInserted: Int(row[0] ?? "") ?? 0, finishedAt: row[1])
            }
            if let row = try? connection.execute("""
                SELECT equal, finished_at::text, differing_keys, rows_old FROM \(q).verify_runs
                WHERE migration = $1 ORDER BY id DESC LIMIT 1
                """, [flag.migration]).first {
                report.verify = CutoverReport.Verify(equal: row[0] == "t", finishedAt: row[1] ?? "", differingKeys: Int(row[2] ?? "") ?? 0,
                                                     rowsOld: Int(row[3] ?? "") ?? 0)
            }
            return report
        } catch {
            throw Failure(message: "cannot read the control schema: \(error)", isUsage: false)
        }
    }
}
