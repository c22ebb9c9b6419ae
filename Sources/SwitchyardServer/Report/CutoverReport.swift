// The cutover decision for one flag: the evidence every instance stored, the criteria, and GO or NO-GO.
import Foundation
import SwitchyardConfig

/// What the report weighs, gathered from the control schema by ``ReportRunner``, and the verdict.
/// Pure: building and rendering it needs no database.
public struct CutoverReport: Sendable {
    public struct Criterion: Sendable, Equatable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    public struct LatencyRow: Sendable, Equatable {
        public var cohort: String
        public var path: String
        public var fingerprint: String
        public var requests: UInt64
        /// The highest of the instances' figures: percentiles of separate instances cannot be merged exactly.
        public var p50Micros: UInt64
        public var p95Micros: UInt64
        public var p99Micros: UInt64
    }

    public struct ReadDivergence: Sendable, Equatable {
        public var cohort: String
        public var fingerprint: String
        public var kind: String
        public var count: UInt64
        public var query: String
        public var oldRows: Int
        public var newRows: Int
        public var detail: String
        public var examplesOld: String
        public var examplesNew: String
    }

    public struct Backfill: Sendable, Equatable {
        public var rowsInserted: Int
        public var finishedAt: String?
    }

    public struct Verify: Sendable, Equatable {
        public var equal: Bool
        public var finishedAt: String
        public var differingKeys: Int
        public var rowsOld: Int
    }

    public var flag: String
    public var migration: String
    public var stage: String
    public var percent: String
    public var generatedAt: String
    public var instances: [String]
    public var shadow: (samples: UInt64, same: UInt64, divergent: UInt64, nondeterministic: UInt64, skipped: UInt64)
    public var latency: [LatencyRow]
    public var readDivergences: [ReadDivergence]
    public var writeDivergences: [WriteDivergence]
    public var backfill: Backfill?
    public var verify: Verify?
    public var history: [FlagFlip]
    public var guardrails: GuardrailConfig

    /// The criteria, in the order a DBA reads them.
    public var criteria: [Criterion] {
        var out: [Criterion] = []
        if let b = backfill, let finished = b.finishedAt {
            out.append(Criterion(name: "backfill complete", passed: true, detail: "\(b.rowsInserted) rows copied, finished \(finished)"))
        } else {
            out.append(Criterion(name: "backfill complete", passed: false,
                                 detail: backfill == nil ? "no backfill recorded: run switchyard backfill \(migration)" : "the backfill has not finished"))
        }
        if let v = verify {
            out.append(Criterion(name: "verify equal", passed: v.equal,
                                 detail: v.equal ? "\(v.rowsOld) rows equal, verified \(v.finishedAt)" : "\(v.differingKeys) differing keys, verified \(v.finishedAt)"))
        } else {
            out.append(Criterion(name: "verify equal", passed: false, detail: "no verify run recorded: run switchyard verify \(migration)"))
        }
        let writes = writeDivergences.reduce(UInt64(0)) { $0 + $1.count }
        out.append(Criterion(name: "no write divergences", passed: writes == 0,
                             detail: writes == 0 ? "every write was mirrored" : "\(writes) writes not mirrored or rejected by the new table"))
        let judged = shadow.same + shadow.divergent
        let limit = guardrails.maxDivergenceBasisPoints ?? 0
        let minimum = UInt64(guardrails.minSamples)
        if judged < minimum {
            out.append(Criterion(name: "shadow reads agree", passed: false,
                                 detail: "\(judged) shadow reads judged, fewer than min_samples \(minimum)"))
        } else {
            let passed = shadow.divergent * 10_000 <= UInt64(limit) * judged
            out.append(Criterion(name: "shadow reads agree", passed: passed,
                                 detail: "\(shadow.divergent) of \(judged) diverged (\(Self.percent(shadow.divergent * 10_000 / judged))), "
                                    + "limit \(Self.percent(UInt64(limit))); \(shadow.nondeterministic) nondeterministic"))
        }
        if let ratio = guardrails.maxP99LatencyRatioHundredths {
            var worst: (String, Double)?
            var failing: [String] = []
            for new in latency where new.path == "new" && new.requests >= minimum {
                guard let old = latency.first(where: { $0.fingerprint == new.fingerprint && $0.path == "old" && $0.cohort == "control" && $0.requests >= minimum }),
                      old.p99Micros > 0 else { continue }
                let r = Double(new.p99Micros) / Double(old.p99Micros)
                if worst == nil || r > worst!.1 { worst = (new.fingerprint, r) }
                if new.p99Micros * 100 > UInt64(ratio) * old.p99Micros { failing.append(new.fingerprint) }
            }
            let limitText = String(format: "%.2f", Double(ratio) / 100)
            let detail = worst.map { "worst p99 ratio \(String(format: "%.2f", $0.1)) (query \($0.0)), limit \(limitText)" }
                ?? "no query has enough requests on both paths to compare"
            out.append(Criterion(name: "p99 latency within limit", passed: failing.isEmpty,
                                 detail: failing.isEmpty ? detail : "over the limit: \(failing.joined(separator: ", ")); \(detail)"))
        }
        let flips = history.filter { $0.flag == flag }
        if let last = flips.first, last.by == "switchyard guardrail" {
            out.append(Criterion(name: "no guardrail step-back", passed: false, detail: "the last flip was a guardrail's, \(last.at): \(last.why)"))
        } else {
            let count = flips.filter { $0.by == "switchyard guardrail" }.count
            out.append(Criterion(name: "no guardrail step-back", passed: true,
                                 detail: count == 0 ? "no guardrail event" : "\(count) earlier guardrail events, since cleared by a flip"))
        }
        return out
    }

    public var isGo: Bool { criteria.allSatisfy(\.passed) }

    static func percent(_ basisPoints: UInt64) -> String { String(format: "%.2f%%", Double(basisPoints) / 100) }

    // MARK: - Rendering

    public func markdown() -> String {
        let criteria = self.criteria
        var out = "# Cutover report: \(flag)\n\n"
        out += "**Verdict: \(isGo ? "GO" : "NO-GO")**"
        let failed = criteria.filter { !$0.passed }.map(\.name)
        out += failed.isEmpty ? " — every criterion passed.\n\n" : " — failed: \(failed.joined(separator: ", ")).\n\n"
        out += "Flag `\(flag)` (migration `\(migration)`) is at **\(stage)**\(stage == "canary" ? " \(percent)" : ""). "
        out += "Generated \(generatedAt) from the control schema; evidence from \(instances.count) instance(s)"
        out += instances.isEmpty ? ".\n\n" : ": \(instances.joined(separator: ", ")).\n\n"
        out += "## Criteria\n\n| criterion | result | evidence |\n| --- | --- | --- |\n"
        for c in criteria { out += "| \(c.name) | \(c.passed ? "pass" : "**FAIL**") | \(Self.cell(c.detail)) |\n" }
        out += "\n## Traffic and latency per cohort and path\n\n"
        if latency.isEmpty {
            out += "No reads of the migrated table were timed at canary or later.\n"
        } else {
            var totals: [String: UInt64] = [:]
            for row in latency { totals["\(row.cohort) / \(row.path)", default: 0] += row.requests }
            out += "| cohort / path | requests |\n| --- | ---: |\n"
            for key in totals.keys.sorted() { out += "| \(key) | \(totals[key]!) |\n" }
            out += "\nBusiest queries (µs; across instances the highest percentile is shown):\n\n"
            out += "| cohort | path | query | requests | p50 | p95 | p99 |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n"
            for row in latency.sorted(by: { $0.requests > $1.requests }).prefix(20) {
                out += "| \(row.cohort) | \(row.path) | \(row.fingerprint) | \(row.requests) | \(row.p50Micros) | \(row.p95Micros) | \(row.p99Micros) |\n"
            }
        }
        out += "\n## Shadow reads\n\n"
        out += "\(shadow.samples) sampled: \(shadow.same) same, \(shadow.divergent) divergent, \(shadow.nondeterministic) nondeterministic, "
        out += "\(shadow.skipped) skipped.\n\n"
        if !readDivergences.isEmpty {
            out += "| query | kind | cohort | count | old rows | new rows | detail | only old | only new |\n"
            out += "| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |\n"
            for d in readDivergences.sorted(by: { $0.count > $1.count }) {
                out += "| `\(Self.cell(d.query))` (\(d.fingerprint)) | \(d.kind) | \(d.cohort) | \(d.count) | \(d.oldRows) | \(d.newRows) | "
                out += "\(Self.cell(d.detail)) | \(Self.cell(d.examplesOld)) | \(Self.cell(d.examplesNew)) |\n"
            }
        }
        out += "\n## Writes\n\n"
        if writeDivergences.isEmpty {
            out += "No write divergences: every write to the old table was mirrored.\n"
        } else {
            out += "| query | count | reason | last seen |\n| --- | ---: | --- | --- |\n"
            for w in writeDivergences { out += "| `\(Self.cell(w.query))` | \(w.count) | \(Self.cell(w.reason)) | \(w.lastSeen) |\n" }
        }
        out += "\n## Backfill and verify\n\n"
        out += "- Backfill: " + (backfill.map { "\($0.rowsInserted) rows copied, " + ($0.finishedAt.map { "finished \($0)" } ?? "not finished") } ?? "none recorded") + "\n"
        out += "- Verify: " + (verify.map { ($0.equal ? "EQUAL" : "DIFFERENT, \($0.differingKeys) keys") + " at \($0.finishedAt)" } ?? "none recorded") + "\n"
        out += "\n## Flag history\n\n| at | from | to | by | why |\n| --- | --- | --- | --- | --- |\n"
        for f in history where f.flag == flag { out += "| \(f.at) | \(f.from) | \(f.to) | \(f.by) | \(Self.cell(f.why)) |\n" }
        return out
    }

    public func json() -> String {
        let object: [String: Any] = [
            "flag": flag, "migration": migration, "stage": stage, "percent": percent, "generated_at": generatedAt,
            "verdict": isGo ? "GO" : "NO-GO", "instances": instances,
            "criteria": criteria.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] as [String: Any] },
            "shadow": ["samples": shadow.samples, "same": shadow.same, "divergent": shadow.divergent,
                       "nondeterministic": shadow.nondeterministic, "skipped": shadow.skipped],
            "latency": latency.map { ["cohort": $0.cohort, "path": $0.path, "fingerprint": $0.fingerprint, "requests": $0.requests,
                                       "p50_us": $0.p50Micros, "p95_us": $0.p95Micros, "p99_us": $0.p99Micros] as [String: Any] },
            "read_divergences": readDivergences.map { ["cohort": $0.cohort, "fingerprint": $0.fingerprint, "kind": $0.kind, "count": $0.count,
                                                       "query": $0.query, "old_rows": $0.oldRows, "new_rows": $0.newRows, "detail": $0.detail] as [String: Any] },
            "write_divergences": writeDivergences.map { ["fingerprint": $0.fingerprint, "count": $0.count, "reason": $0.reason, "query": $0.query] as [String: Any] },
            "backfill": backfill.map { ["rows_inserted": $0.rowsInserted, "finished_at": $0.finishedAt ?? NSNull()] as [String: Any] } ?? NSNull(),
            "verify": verify.map { ["equal": $0.equal, "finished_at": $0.finishedAt, "differing_keys": $0.differingKeys] as [String: Any] } ?? NSNull(),
            "history": history.filter { $0.flag == flag }.map { ["at": $0.at, "from": $0.from, "to": $0.to, "by": $0.by, "why": $0.why] },
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
