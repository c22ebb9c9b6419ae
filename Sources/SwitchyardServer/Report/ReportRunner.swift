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
            var instances = Set<String>()
            var latency: [String: CutoverReport.LatencyRow] = [:]
            var reads: [String: CutoverReport.ReadDivergence] = [:]
            for (instance, row) in try store.evidence(connection, flag: name) {
                instances.insert(instance)
                guard let object = try? JSONSerialization.jsonObject(with: Data(row.json.utf8)) as? [String: Any] else { continue }
                func number(_ key: String) -> UInt64 { (object[key] as? NSNumber)?.uint64Value ?? 0 }
                func int(_ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }
                func text(_ key: String) -> String { object[key] as? String ?? "" }
                switch row.kind {
                case "shadow":
                    report.shadow.samples += number("samples")
                    report.shadow.same += number("same")
                    report.shadow.divergent += number("divergent")
                    report.shadow.nondeterministic += number("nondeterministic")
                    report.shadow.skipped += number("skipped")
                case "latency":
                    var l = latency[row.key] ?? CutoverReport.LatencyRow(cohort: text("cohort"), path: text("path"), fingerprint: text("fingerprint"),
                                                                        requests: 0, p50Micros: 0, p95Micros: 0, p99Micros: 0)
                    l.requests += number("requests")
                    l.p50Micros = max(l.p50Micros, number("p50_us"))
                    l.p95Micros = max(l.p95Micros, number("p95_us"))
                    l.p99Micros = max(l.p99Micros, number("p99_us"))
                    latency[row.key] = l
                case "read_divergence":
                    func examples(_ key: String) -> String {
                        ((object[key] as? [[Any]]) ?? []).map { "(" + $0.map { ($0 as? String) ?? "NULL" }.joined(separator: ", ") + ")" }.joined(separator: " ")
                    }
                    var d = reads[row.key] ?? CutoverReport.ReadDivergence(
                        cohort: text("cohort"), fingerprint: text("fingerprint"), kind: text("kind"), count: 0, query: text("query"),
                        oldRows: int("old_rows"), newRows: int("new_rows"), detail: text("detail"),
                        examplesOld: examples("only_in_old"), examplesNew: examples("only_in_new"))
                    d.count += number("count")
                    reads[row.key] = d
                default:
                    continue
                }
            }
            report.instances = instances.sorted()
            report.latency = latency.values.sorted { ($0.cohort, $0.path, $0.fingerprint) < ($1.cohort, $1.path, $1.fingerprint) }
            report.readDivergences = Array(reads.values)
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
