// Adds up the evidence rows every instance stored into one CutoverReport: tallies summed, histograms merged.
import Foundation
import Histogram
import SwitchyardShadow

extension CutoverReport {
    /// Upper bounds (µs) of the buckets the report's latency distributions are drawn in: 1-2-5 steps
    /// from 50 µs to 10 s, and everything slower in the last.
    public static let distributionBoundsMicros: [UInt64] = [
        50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000,
        5_000_000, 10_000_000, 60_000_000,
    ]

    /// Adds the evidence rows of every instance. Shadow tallies and divergence counts are summed, the
    /// timelines added per minute, and each latency series' histogram merged exactly across instances
    /// from its recorded values, then summed per source, cohort and path.
    public mutating func absorb(evidence: [(instance: String, row: EvidenceRow)]) {
        var instances = Set(self.instances)
        var series: [String: (row: LatencyRow, histogram: Histogram<UInt64>)] = [:]
        var reads: [String: ReadDivergence] = [:]
        var cohortsSeen: [String: Set<String>] = [:]
        var minutes: [Int64: TimelinePoint] = [:]
        for point in timeline { minutes[point.minute] = point }
        for (instance, row) in evidence {
            instances.insert(instance)
            guard let object = try? JSONSerialization.jsonObject(with: Data(row.json.utf8)) as? [String: Any] else { continue }
            func number(_ key: String) -> UInt64 { (object[key] as? NSNumber)?.uint64Value ?? 0 }
            func int(_ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }
            func text(_ key: String) -> String { object[key] as? String ?? "" }
            switch row.kind {
            case "shadow":
                shadow.samples += number("samples")
                shadow.same += number("same")
                shadow.divergent += number("divergent")
                shadow.nondeterministic += number("nondeterministic")
                shadow.skipped += number("skipped")
                for entry in (object["timeline"] as? [[NSNumber]]) ?? [] where entry.count == 4 {
                    let minute = entry[0].int64Value
                    var point = minutes[minute] ?? TimelinePoint(minute: minute)
                    point.same += entry[1].uint64Value
                    point.divergent += entry[2].uint64Value
                    point.nondeterministic += entry[3].uint64Value
                    minutes[minute] = point
                }
            case "latency":
                let source = object["source"] as? String ?? "served"
                let key = "\(source)|\(text("cohort"))|\(text("path"))|\(text("fingerprint"))"
                var entry = series[key] ?? (LatencyRow(source: source, cohort: text("cohort"), path: text("path"), fingerprint: text("fingerprint"),
                                                       requests: 0, errors: 0, p50Micros: 0, p95Micros: 0, p99Micros: 0),
                                            Self.emptyHistogram())
                entry.row.errors += number("errors")
                let values = (object["values"] as? [[NSNumber]]) ?? []
                if values.isEmpty {
                    // A row without values (an older instance): its percentiles, the highest of the instances'.
                    entry.row.requests += number("requests")
                    entry.row.p50Micros = max(entry.row.p50Micros, number("p50_us"))
                    entry.row.p95Micros = max(entry.row.p95Micros, number("p95_us"))
                    entry.row.p99Micros = max(entry.row.p99Micros, number("p99_us"))
                } else {
                    for pair in values where pair.count == 2 {
                        _ = entry.histogram.record(min(pair[0].uint64Value, 60_000_000), count: pair[1].uint64Value)
                    }
                }
                series[key] = entry
            case "read_divergence":
                func examples(_ key: String) -> String {
                    ((object[key] as? [[Any]]) ?? []).map { "(" + $0.map { ($0 as? String) ?? "NULL" }.joined(separator: ", ") + ")" }.joined(separator: " ")
                }
                // One divergence per query and kind, whichever cohorts saw it (a named query in the
                // overflow record of "(other)" cohorts included), with the first record's example.
                let key = "\(text("fingerprint"))|\(text("kind"))"
                var d = reads[key] ?? ReadDivergence(
                    cohort: text("cohort"), fingerprint: text("fingerprint"), kind: text("kind"), count: 0, query: text("query"),
                    oldRows: int("old_rows"), newRows: int("new_rows"), detail: text("detail"),
                    examplesOld: examples("only_in_old"), examplesNew: examples("only_in_new"))
                if d.query == "(other)" || d.query.isEmpty { d.query = text("query") }
                d.count += number("count")
                reads[key] = d
                cohortsSeen[key, default: []].insert(text("cohort"))
            default:
                continue
            }
        }
        self.instances = instances.sorted()
        var paths: [String: (summary: PathSummary, histogram: Histogram<UInt64>)] = [:]
        for (_, var entry) in series {
            let h = entry.histogram
            if h.totalCount > 0 {
                entry.row.requests += h.totalCount
                entry.row.p50Micros = max(entry.row.p50Micros, h.valueAtPercentile(50))
                entry.row.p95Micros = max(entry.row.p95Micros, h.valueAtPercentile(95))
                entry.row.p99Micros = max(entry.row.p99Micros, h.valueAtPercentile(99))
            }
            latency.append(entry.row)
            let key = "\(entry.row.source)|\(entry.row.cohort)|\(entry.row.path)"
            var path = paths[key] ?? (PathSummary(source: entry.row.source, cohort: entry.row.cohort, path: entry.row.path), Self.emptyHistogram())
            path.summary.requests += entry.row.requests
            path.summary.errors += entry.row.errors
            path.histogram.add(h)
            paths[key] = path
        }
        latency.sort { ($0.source, $0.cohort, $0.path, $0.fingerprint) < ($1.source, $1.cohort, $1.path, $1.fingerprint) }
        self.paths = paths.values.map { entry in
            var summary = entry.summary
            let h = entry.histogram
            if h.totalCount > 0 {
                summary.p50Micros = h.valueAtPercentile(50)
                summary.p95Micros = h.valueAtPercentile(95)
                summary.p99Micros = h.valueAtPercentile(99)
                var below: UInt64 = 0
                summary.distribution = Self.distributionBoundsMicros.map { bound in
                    let upTo = h.count(within: 0...bound)
                    defer { below = upTo }
                    return PathSummary.Distribution(upToMicros: bound, count: upTo - below)
                }
            }
            return summary
        }.sorted { ($0.source, $0.cohort, $0.path) < ($1.source, $1.cohort, $1.path) }
        for (key, cohorts) in cohortsSeen where cohorts.count > 1 {
            let named = cohorts.subtracting([DivergenceAggregator.other]).sorted()
            let more = cohorts.contains(DivergenceAggregator.other) ? "more" : "\(named.count - 1) more"
            reads[key]?.cohort = "\(named.first ?? DivergenceAggregator.other) and \(more) cohorts"
        }
        readDivergences = reads.values.sorted { ($1.count, $0.fingerprint, $0.cohort) < ($0.count, $1.fingerprint, $1.cohort) }
        timeline = minutes.values.sorted { $0.minute < $1.minute }
    }

    static func emptyHistogram() -> Histogram<UInt64> { RoutingHub.emptyLatencyHistogram() }
}
