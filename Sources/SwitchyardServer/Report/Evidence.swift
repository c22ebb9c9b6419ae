// This instance's evidence about each flag, as rows for the control schema (the cutover report reads them).
import Foundation
import Histogram
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardShadow

enum Evidence {
    /// Shadow-read tallies and per-minute timeline per flag, latency per source, cohort, path and query (with the
    /// histogram's recorded values, so the report can merge instances exactly), and aggregated read divergences.
    static func rows(flags: [FlagConfig], latency: [LatencyLabel: LatencySeries], reader: ShadowReader?) -> [EvidenceRow] {
        var rows: [EvidenceRow] = []
        if let reader {
            for flag in flags {
                let t = reader.totals(flag: flag.name)
                rows.append(EvidenceRow(flag: flag.name, kind: "shadow", key: "", json: json([
                    "samples": t.samples, "same": t.same, "divergent": t.divergent, "nondeterministic": t.nondeterministic, "skipped": t.skipped,
                    "timeline": reader.timeline(flag: flag.name).map { [$0.minute, $0.same, $0.divergent, $0.nondeterministic] as [Any] },
                ])))
            }
            for d in reader.divergences {
                rows.append(EvidenceRow(flag: d.flag, kind: "read_divergence", key: "\(d.cohort)|\(d.fingerprint)|\(d.kind)", json: json([
                    "cohort": d.cohort, "fingerprint": d.fingerprint, "kind": "\(d.kind)", "count": d.count, "query": d.normalizedQuery,
                    "parameters": d.parameters, "old_rows": d.oldRowCount ?? -1, "new_rows": d.newRowCount ?? -1, "detail": d.detail,
                    "first_seen_ms": d.firstSeen, "last_seen_ms": d.lastSeen,
                    "only_in_old": d.onlyInOld.prefix(3).map(cells), "only_in_new": d.onlyInNew.prefix(3).map(cells),
                ])))
            }
        }
        for (label, series) in latency {
            let h = series.histogram
            let key = "\(label.source.rawValue)|\(label.cohort)|\(label.path.rawValue)|\(label.fingerprint)"
            rows.append(EvidenceRow(flag: label.flag, kind: "latency", key: key, json: json([
                "source": label.source.rawValue, "cohort": label.cohort, "path": label.path.rawValue, "fingerprint": label.fingerprint,
                "requests": h.totalCount, "errors": series.errors,
                "p50_us": h.valueAtPercentile(50), "p95_us": h.valueAtPercentile(95), "p99_us": h.valueAtPercentile(99),
                "values": h.recordedValues().map { [$0.value, $0.count] },
            ])))
        }
        return rows
    }

    private static func cells(_ row: [String?]) -> [Any] { row.map { value -> Any in value.map { $0 as Any } ?? NSNull() } }

    static func json(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
