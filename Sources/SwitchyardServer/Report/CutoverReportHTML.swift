// The cutover report as one self-contained HTML page: verdict, criteria, tables and inline SVG charts, nothing fetched.
import Foundation
import SwitchyardShadow

extension CutoverReport {
    /// One HTML5 document with its style inline and its charts drawn as SVG here, no script and no
    /// external reference, so it opens anywhere without a network. Every text from the evidence
    /// (queries, details, names) is escaped.
    public func html() -> String {
        let criteria = self.criteria
        let verdict = isGo ? "GO" : "NO-GO"
        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        out += "<title>\("Cutover report: \(flag) — \(verdict)".htmlEscaped)</title>\n<style>\(Self.style)</style>\n</head>\n<body>\n"
        out += "<h1>Cutover report: <code>\(flag.htmlEscaped)</code></h1>\n"
        out += verdictBanner(criteria)
        out += "<p class=\"meta\">Flag <code>\(flag.htmlEscaped)</code> (migration <code>\(migration.htmlEscaped)</code>) is at <strong>"
        out += (stage + (stage == "canary" ? " \(percent)" : "")).htmlEscaped + "</strong>. Generated \(generatedAt.htmlEscaped) "
        out += "from the control schema; evidence from \(instances.count) instance(s)"
        out += (instances.isEmpty ? "" : ": " + instances.joined(separator: ", ").htmlEscaped) + ".</p>\n"

        out += "<h2>Criteria</h2>\n"
        out += Self.table(["criterion", "result", "evidence"], criteria.map { c in
            Self.Row(cells: [c.name.htmlEscaped, c.passed ? "pass" : "<strong>FAIL</strong>", c.detail.htmlEscaped],
                     css: c.passed ? "pass" : "fail")
        })

        out += "<h2>Traffic and latency per cohort and path</h2>\n"
        out += trafficTables()
        out += "<figure>\(distributionChart.svg())</figure>\n"
        out += "<figure>\(percentileChart.svg())</figure>\n"
        if !latency.isEmpty {
            out += "<h3>Worst queries by p99</h3>\n"
            out += Self.table(["source", "cohort", "path", "query", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"], numericFrom: 4,
                              worstQueries.prefix(20).map { row in
                Self.Row(cells: [row.source, row.cohort, row.path].map(\.htmlEscaped) + ["<code>\(row.fingerprint.htmlEscaped)</code>"]
                         + [String(row.requests), String(row.errors)] + Self.percentiles(row.p50Micros, row.p95Micros, row.p99Micros))
            })
        }

        out += "<h2>Shadow reads</h2>\n"
        out += "<p>\(shadow.samples) sampled: \(shadow.same) same, <strong>\(shadow.divergent) divergent</strong>, "
        out += "\(shadow.nondeterministic) nondeterministic, \(shadow.skipped) skipped.</p>\n"
        out += "<figure>\(timelineChart.svg())</figure>\n"
        out += readDivergenceTable()

        out += "<h2>Writes</h2>\n"
        if writeDivergences.isEmpty {
            out += "<p>No write divergences: every write to the old table was mirrored.</p>\n"
        } else {
            out += Self.table(["query", "count", "reason", "last seen"], writeDivergences.map { w in
                Self.Row(cells: ["<code>\(w.query.htmlEscaped)</code>", String(w.count), w.reason.htmlEscaped, w.lastSeen.htmlEscaped], css: "fail")
            })
        }

        out += "<h2>Backfill and verify</h2>\n<ul>\n"
        out += "<li>Backfill: " + backfillStatus.htmlEscaped + "</li>\n"
        out += "<li>Verify: " + (verify.map { ($0.equal ? "EQUAL, \($0.rowsOld) rows" : "DIFFERENT, \($0.differingKeys) keys") + " at \($0.finishedAt)" }
            ?? "none recorded").htmlEscaped + "</li>\n</ul>\n"

        out += "<h2>Flag history</h2>\n"
        let flips = history.filter { $0.flag == flag }
        if flips.isEmpty {
            out += "<p>No flip recorded.</p>\n"
        } else {
            out += Self.table(["at", "from", "to", "by", "why"], flips.map { f in
                let guardrail = f.by == Self.guardrailActor
                return Self.Row(cells: [f.at, f.from, f.to].map(\.htmlEscaped)
                                + [(guardrail ? "<span class=\"badge\">guardrail</span> " : "") + f.by.htmlEscaped, f.why.htmlEscaped],
                                css: guardrail ? "guardrail" : nil)
            })
        }
        return out + "</body>\n</html>\n"
    }

    /// Who a guardrail's step-back is recorded as, in the flag history.
    private func verdictBanner(_ criteria: [Criterion]) -> String {
        let failed = criteria.filter { !$0.passed }
        var out = "<section class=\"verdict \(isGo ? "go" : "nogo")\"><p class=\"word\">\(isGo ? "GO" : "NO-GO")</p>"
        if failed.isEmpty {
            out += "<p>Every criterion passed.</p>"
        } else {
            out += "<p>Failed criteria:</p><ul>"
            for c in failed { out += "<li><strong>\(c.name.htmlEscaped)</strong>: \(c.detail.htmlEscaped)</li>" }
            out += "</ul>"
        }
        return out + "</section>\n"
    }

    private func trafficTables() -> String {
        let served = paths.filter { $0.source == "served" }
        var out = ""
        if served.isEmpty {
            out += "<p>No reads of the migrated table were timed at canary or later.</p>\n"
        } else {
            out += Self.table(["cohort", "path", "requests", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms"], numericFrom: 2, served.map { p in
                Self.Row(cells: [p.cohort.htmlEscaped, p.path.htmlEscaped, String(p.requests), String(p.errors),
                                 String(format: "%.2f%%", p.errorRate * 100)] + Self.percentiles(p.p50Micros, p.p95Micros, p.p99Micros))
            })
        }
        let sideBySide = paths.filter { $0.source == "shadow" }
        if !sideBySide.isEmpty {
            out += "<p>Shadow reads, both paths timed side by side on a side connection:</p>\n"
            out += Self.table(["cohort", "path", "runs", "errors", "p50 ms", "p95 ms", "p99 ms"], numericFrom: 2, sideBySide.map { p in
                Self.Row(cells: [p.cohort.htmlEscaped, p.path.htmlEscaped, String(p.requests), String(p.errors)]
                         + Self.percentiles(p.p50Micros, p.p95Micros, p.p99Micros))
            })
        }
        return out
    }

    private func readDivergenceTable() -> String {
        guard !readDivergences.isEmpty else { return "<p>No read divergence recorded.</p>\n" }
        return Self.table(["query", "kind", "cohort", "count", "old rows", "new rows", "detail", "only in old", "only in new"],
                          readDivergences.sorted { ($1.count, $0.fingerprint, $0.cohort) < ($0.count, $1.fingerprint, $1.cohort) }.map { d in
            Self.Row(cells: ["<code>\(d.query.htmlEscaped)</code><br><small>\(d.fingerprint.htmlEscaped)</small>", d.kind.htmlEscaped,
                             d.cohort.htmlEscaped, String(d.count), String(d.oldRows), String(d.newRows), d.detail.htmlEscaped,
                             "<pre>\(d.examplesOld.htmlEscaped)</pre>", "<pre>\(d.examplesNew.htmlEscaped)</pre>"], css: "fail")
        })
    }

    // MARK: - Charts

    /// The series the latency charts draw, one per source, cohort and path with requests, each with its own colour.
    private var chartedPaths: [(name: String, colour: String, path: PathSummary)] {
        paths.filter { $0.requests > 0 }.enumerated().map { index, p in
            let name = p.source == "served" ? "\(p.cohort) · \(p.path)" : "shadow \(p.cohort) · \(p.path)"
            return (name, Self.palette[index % Self.palette.count], p)
        }
    }

    /// Share of each series' requests per latency bucket: cohorts differ in size (5% against 95%), and
    /// shares put their shapes side by side. Buckets empty in every series at either end are left out.
    var distributionChart: BarChart {
        let series = chartedPaths
        let bounds = Self.distributionBoundsMicros
        let used = bounds.indices.filter { i in series.contains { $0.path.distribution.first { $0.upToMicros == bounds[i] }?.count ?? 0 > 0 } }
        let shown = used.first.flatMap { first in used.last.map { Array(bounds[first...$0]) } } ?? []
        return BarChart(
            title: "Latency distribution per cohort and path", categories: shown.map { "≤ " + Self.durationText($0) },
            series: series.map { entry in
                let total = Double(entry.path.distribution.reduce(0) { $0 + $1.count })
                return BarChart.Series(name: entry.name, colour: entry.colour, values: shown.map { bound in
                    let count = entry.path.distribution.first { $0.upToMicros == bound }?.count ?? 0
                    return total == 0 ? 0 : Double(count) / total * 100
                })
            },
            xLabel: "latency bucket (upper bound)", yLabel: "share of requests", format: { BarChart.number($0) + "%" },
            emptyMessage: "No latency recorded: reads are timed from the canary stage on.")
    }

    /// p50, p95 and p99 of each series, in milliseconds, in the distribution chart's colours.
    var percentileChart: BarChart {
        BarChart(
            title: "p50, p95 and p99 per cohort and path", categories: ["p50", "p95", "p99"],
            series: chartedPaths.map { entry in
                BarChart.Series(name: entry.name, colour: entry.colour,
                                values: [entry.path.p50Micros, entry.path.p95Micros, entry.path.p99Micros].map { Double($0) / 1000 })
            },
            xLabel: "percentile", yLabel: "milliseconds", format: { String(Self.milliseconds(UInt64(($0 * 1000).rounded()))) },
            emptyMessage: "No latency recorded: reads are timed from the canary stage on.")
    }

    /// Judged shadow reads per minute (UTC), the divergent ones stacked on top in red. A long run is
    /// drawn in slots of several minutes so the chart keeps at most ``maxTimelineSlots`` bars.
    var timelineChart: BarChart {
        let slots = timelineSlots
        return BarChart(
            title: "Divergences over time", categories: slots.map { Self.minuteText($0.minute) },
            series: [
                BarChart.Series(name: "same", colour: "#8fa9c9", values: slots.map { Double($0.same) }),
                BarChart.Series(name: "divergent", colour: "#d2322d", values: slots.map { Double($0.divergent) }),
            ],
            stacked: true, xLabel: "minute (UTC)",
            yLabel: "judged shadow reads" + (slots.count > 1 && slots[1].minute - slots[0].minute > 1 ? " per \(slots[1].minute - slots[0].minute) min" : ""),
            format: { BarChart.number($0) },
            emptyMessage: "No shadow read judged yet: shadow reads start at the shadow stage, with shadow_sample above 0.",
            maxLabels: 8)
    }

    static let maxTimelineSlots = 120

    /// The timeline with every minute from the first to the last present (quiet minutes as zero), in slots of
    /// `ceil(span / maxTimelineSlots)` minutes, each slot the sum of its minutes and named by its first.
    var timelineSlots: [TimelinePoint] {
        guard let first = timeline.map(\.minute).min(), let last = timeline.map(\.minute).max() else { return [] }
        let width = max(1, (last - first + 1 + Int64(Self.maxTimelineSlots) - 1) / Int64(Self.maxTimelineSlots))
        var slots = stride(from: first, through: last, by: Int(width)).map { TimelinePoint(minute: $0) }
        for point in timeline {
            let i = Int((point.minute - first) / width)
            slots[i].same += point.same
            slots[i].divergent += point.divergent
            slots[i].nondeterministic += point.nondeterministic
        }
        return slots
    }

    /// Distinct, colour-blind-friendly colours (Okabe and Ito's set), one per charted series.
    private static let palette = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]

    /// 50 µs, 2 ms, 1.5 s: a bucket bound as a person reads it.
    static func durationText(_ micros: UInt64) -> String {
        if micros < 1_000 { return "\(micros) µs" }
        if micros < 1_000_000 { return BarChart.number(Double(micros) / 1_000) + " ms" }
        return BarChart.number(Double(micros) / 1_000_000) + " s"
    }

    // MARK: - Tables and style

    struct Row {
        /// Already HTML: each cell escapes what it takes from the evidence.
        var cells: [String]
        var css: String? = nil
    }

    /// A table whose columns from `numericFrom` on are right-aligned figures.
    static func table(_ head: [String], numericFrom: Int = Int.max, _ rows: [Row]) -> String {
        func cell(_ tag: String, _ index: Int, _ content: String) -> String {
            "<\(tag)\(index >= numericFrom ? " class=\"num\"" : "")>\(content)</\(tag)>"
        }
        var out = "<table>\n<thead><tr>" + head.enumerated().map { cell("th", $0, $1.htmlEscaped) }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows {
            out += "<tr\(row.css.map { " class=\"\($0)\"" } ?? "")>" + row.cells.enumerated().map { cell("td", $0, $1) }.joined() + "</tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }

    private static func percentiles(_ p50: UInt64, _ p95: UInt64, _ p99: UInt64) -> [String] {
        [p50, p95, p99].map { String(milliseconds($0)) }
    }

    /// System fonts only: a font file would be one more thing to fetch.
    private static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px auto;max-width:1180px;padding:0 16px;line-height:1.4}
        h1{font-size:1.6em;margin:0 0 12px}h2{margin-top:32px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
        code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:.9em}
        pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:320px}
        .verdict{border-radius:8px;padding:12px 20px;color:#fff}.verdict .word{font-size:2.4em;font-weight:700;margin:0}
        .verdict.go{background:#1e7e34}.verdict.nogo{background:#b3261e}.verdict ul{margin:4px 0 8px}
        .meta{color:#4a5568}
        table{border-collapse:collapse;margin:8px 0 16px;font-size:.92em}
        th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f1f3f7}
        td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
        tr.fail td{background:#fdecea}tr.pass td:nth-child(2){color:#1e7e34}tr.guardrail td{background:#fff4d6}
        .badge{background:#b3261e;color:#fff;border-radius:4px;padding:0 6px;font-size:.85em}
        figure{margin:16px 0}svg.chart{width:100%;height:auto;background:#fafbfc;border:1px solid #e3e7ee;border-radius:6px}
        svg .chart-title{font-weight:700;font-size:15px}svg text{font-size:12px;fill:#1d2330}svg .empty{fill:#6b7280;font-size:14px}
        svg .grid{stroke:#e3e7ee}svg .axis{stroke:#4a5568}svg .tick{fill:#4a5568;font-size:11px}svg .axis-label{font-size:12px;fill:#4a5568}
        """
}
