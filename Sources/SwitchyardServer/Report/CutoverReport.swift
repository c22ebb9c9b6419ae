// The cutover decision for one flag: the evidence every instance stored, the criteria, and GO or NO-GO.
import Foundation
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardShadow

/// What the report weighs, gathered from the control schema by ``ReportRunner``, and the verdict.
/// Pure: building and rendering it needs no database.
public struct CutoverReport: Sendable {
    public struct Criterion: Sendable, Equatable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    public struct LatencyRow: Sendable, Equatable {
        /// `served` (client requests as answered) or `shadow` (both paths side by side on a side connection).
        public var source: String
        public var cohort: String
        public var path: String
        public var fingerprint: String
        public var requests: UInt64
        public var errors: UInt64
        /// Percentiles of the instances' histograms merged.
        public var p50Micros: UInt64
        public var p95Micros: UInt64
        public var p99Micros: UInt64
    }

    /// One source, cohort and path over every query: traffic, errors, percentiles and the distribution.
    public struct PathSummary: Sendable, Equatable {
        public var source: String
        public var cohort: String
        public var path: String
        public var requests: UInt64 = 0
        public var errors: UInt64 = 0
        public var p50Micros: UInt64 = 0
        public var p95Micros: UInt64 = 0
        public var p99Micros: UInt64 = 0
        /// Requests per bucket, each (upper bound in µs, count), over ``CutoverReport/distributionBoundsMicros``.
        public var distribution: [Distribution] = []

        public struct Distribution: Sendable, Equatable {
            public var upToMicros: UInt64
            public var count: UInt64
        }

        public init(source: String, cohort: String, path: String) {
            self.source = source
            self.cohort = cohort
            self.path = path
        }

        public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }
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
    /// Per source, cohort and path, every query together.
    public var paths: [PathSummary] = []
    /// Judged shadow reads per minute, every instance added up.
    public var timeline: [TimelinePoint] = []
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
        let limit = guardrails.maxDivergencePPM ?? 0
        let minimum = UInt64(guardrails.minSamples)
        if judged < minimum {
            out.append(Criterion(name: "shadow reads agree", passed: false,
                                 detail: "\(judged) shadow reads judged, fewer than min_samples \(minimum)"))
        } else {
            let passed = shadow.divergent * 1_000_000 <= UInt64(limit) * judged
            out.append(Criterion(name: "shadow reads agree", passed: passed,
                                 detail: "\(shadow.divergent) of \(judged) diverged (\(Guardrails.share(shadow.divergent, judged))), "
                                    + "max_divergence_rate \(GuardrailConfig.describe(ppm: limit)); \(shadow.nondeterministic) nondeterministic"))
        }
        let served = latency.filter { $0.source == "served" }
        if let limit = guardrails.maxErrorRateIncreasePPM {
            var errors = Guardrails.ErrorEvidence()
            for row in served where row.path == "new" {
                errors.newErrors += row.errors
                errors.newRequests += row.requests
            }
            for row in served where row.path == "old" && row.cohort == "control" {
                errors.oldErrors += row.errors
                errors.oldRequests += row.requests
            }
            if errors.newRequests < minimum || errors.oldRequests < minimum {
                out.append(Criterion(name: "error rate within limit", passed: false,
                                     detail: "\(errors.newRequests) requests on the new path and \(errors.oldRequests) on the control cohort's old path, "
                                        + "fewer than min_samples \(minimum) on one of them"))
            } else {
                let increase = errors.increasePPM ?? 0
                out.append(Criterion(name: "error rate within limit", passed: increase <= Int64(limit),
                                     detail: "\(errors.description); max_error_rate_increase \(GuardrailConfig.describe(ppm: limit))"))
            }
        }
        if let ratio = guardrails.maxP99RatioHundredths {
            var worst: (String, Double)?
            var failing: [String] = []
            for new in served where new.path == "new" && new.requests >= minimum {
                guard let old = served.first(where: { $0.fingerprint == new.fingerprint && $0.path == "old" && $0.cohort == "control" && $0.requests >= minimum }),
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
        if let last = flips.first, last.by == Self.guardrailActor {
            out.append(Criterion(name: "no guardrail step-back", passed: false, detail: "the last flip was a guardrail's, \(last.at): \(last.why)"))
        } else {
            let count = flips.filter { $0.by == Self.guardrailActor }.count
            out.append(Criterion(name: "no guardrail step-back", passed: true,
                                 detail: count == 0 ? "no guardrail event" : "\(count) earlier guardrail events, since cleared by a flip"))
        }
        return out
    }

    public var isGo: Bool { criteria.allSatisfy(\.passed) }

    /// Who the flag history names for a guardrail's step-back.
    public static let guardrailActor = "switchyard guardrail"

    /// "1000 rows copied, finished …", "… not finished" or "none recorded".
    var backfillStatus: String {
        backfill.map { "\($0.rowsInserted) rows copied, " + ($0.finishedAt.map { "finished \($0)" } ?? "not finished") } ?? "none recorded"
    }

    /// The failed criteria, in words: "shadow reads agree: 1 of 11 diverged (9.09%), ...".
    public var reasons: [String] { criteria.filter { !$0.passed }.map { "\($0.name): \($0.detail)" } }

    /// Milliseconds with three decimals, for the JSON and the tables.
    static func milliseconds(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }

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
        let served = paths.filter { $0.source == "served" }
        if served.isEmpty {
            out += "No reads of the migrated table were timed at canary or later.\n"
        } else {
            out += "| cohort | path | requests | errors | error rate | p50 ms | p95 ms | p99 ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            for p in served {
                out += "| \(p.cohort) | \(p.path) | \(p.requests) | \(p.errors) | \(String(format: "%.2f%%", p.errorRate * 100)) | "
                out += "\(Self.milliseconds(p.p50Micros)) | \(Self.milliseconds(p.p95Micros)) | \(Self.milliseconds(p.p99Micros)) |\n"
            }
        }
        let sideBySide = paths.filter { $0.source == "shadow" }
        if !sideBySide.isEmpty {
            out += "\nShadow reads, both paths timed side by side on a side connection:\n\n"
            out += "| path | runs | new-path errors | p50 ms | p95 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
            for p in sideBySide {
                out += "| \(p.path) | \(p.requests) | \(p.errors) | \(Self.milliseconds(p.p50Micros)) | \(Self.milliseconds(p.p95Micros)) | \(Self.milliseconds(p.p99Micros)) |\n"
            }
        }
        if !latency.isEmpty {
            out += "\nWorst queries by p99 (served and shadow, ms):\n\n"
            out += "| source | cohort | path | query | requests | errors | p50 | p95 | p99 |\n| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
            for row in worstQueries.prefix(20) {
                out += "| \(row.source) | \(row.cohort) | \(row.path) | \(row.fingerprint) | \(row.requests) | \(row.errors) | "
                out += "\(Self.milliseconds(row.p50Micros)) | \(Self.milliseconds(row.p95Micros)) | \(Self.milliseconds(row.p99Micros)) |\n"
            }
        }
        out += "\n## Shadow reads\n\n"
        out += "\(shadow.samples) sampled: \(shadow.same) same, \(shadow.divergent) divergent, \(shadow.nondeterministic) nondeterministic, "
        out += "\(shadow.skipped) skipped.\n\n"
        let divergentMinutes = timeline.filter { $0.divergent > 0 }
        if !divergentMinutes.isEmpty {
            out += "Minutes with divergences (UTC): " + divergentMinutes.suffix(30).map { p in
                "\(Self.minuteText(p.minute)) \(p.divergent) of \(p.same + p.divergent)"
            }.joined(separator: "; ") + ".\n\n"
        }
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
        out += "- Backfill: " + backfillStatus + "\n"
        out += "- Verify: " + (verify.map { ($0.equal ? "EQUAL" : "DIFFERENT, \($0.differingKeys) keys") + " at \($0.finishedAt)" } ?? "none recorded") + "\n"
        out += "\n## Flag history\n\n| at | from | to | by | why |\n| --- | --- | --- | --- | --- |\n"
        for f in history where f.flag == flag { out += "| \(f.at) | \(f.from) | \(f.to) | \(f.by) | \(Self.cell(f.why)) |\n" }
        return out
    }

    /// The latency rows with the highest p99 first (only those with requests).
    public var worstQueries: [LatencyRow] {
        latency.filter { $0.requests > 0 }.sorted { ($1.p99Micros, $0.fingerprint) < ($0.p99Micros, $1.fingerprint) }
    }

    static func minuteText(_ minute: Int64) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: Date(timeIntervalSince1970: Double(minute) * 60))
    }

    public func json() -> String {
        func summary(_ p: PathSummary) -> [String: Any] {
            ["cohort": p.cohort, "path": p.path, "requests": p.requests, "errors": p.errors, "error_rate": p.errorRate,
             "p50": Self.milliseconds(p.p50Micros), "p95": Self.milliseconds(p.p95Micros), "p99": Self.milliseconds(p.p99Micros),
             "distribution": p.distribution.map { ["up_to_ms": Self.milliseconds($0.upToMicros), "count": $0.count] as [String: Any] }]
        }
        let object: [String: Any] = [
            "flag": flag, "migration": migration, "stage": stage, "percent": percent, "generated_at": generatedAt,
            "verdict": isGo ? "GO" : "NO-GO", "reasons": reasons, "instances": instances,
            "criteria": criteria.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] as [String: Any] },
            "shadow": ["samples": shadow.samples, "same": shadow.same, "divergent": shadow.divergent,
                       "nondeterministic": shadow.nondeterministic, "skipped": shadow.skipped],
            "latency": paths.filter { $0.source == "served" }.map(summary),
            "shadow_latency": paths.filter { $0.source == "shadow" }.map(summary),
            "latency_by_query": latency.map { ["source": $0.source, "cohort": $0.cohort, "path": $0.path, "fingerprint": $0.fingerprint,
                                                "requests": $0.requests, "errors": $0.errors, "p50": Self.milliseconds($0.p50Micros),
                                                "p95": Self.milliseconds($0.p95Micros), "p99": Self.milliseconds($0.p99Micros)] as [String: Any] },
            "divergences": readDivergences.map { ["cohort": $0.cohort, "fingerprint": $0.fingerprint, "kind": $0.kind, "count": $0.count,
                                                  "query": $0.query, "old_rows": $0.oldRows, "new_rows": $0.newRows, "detail": $0.detail,
                                                  "only_in_old": $0.examplesOld, "only_in_new": $0.examplesNew] as [String: Any] },
            "timeline": timeline.map { ["minute": Self.minuteText($0.minute), "same": $0.same, "divergent": $0.divergent,
                                        "nondeterministic": $0.nondeterministic] as [String: Any] },
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
