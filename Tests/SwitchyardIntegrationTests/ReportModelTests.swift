// The cutover report's model without a database: evidence of several instances added up, criteria, and the JSON shape.
import Foundation
@testable import SwitchyardServer
import SwitchyardConfig
import SwitchyardShadow
import Testing

@Suite("Cutover report model")
struct ReportModelTests {
    static func report(guardrails: GuardrailConfig) -> CutoverReport {
        CutoverReport(
            flag: "users_v2", migration: "users_v2", stage: "canary", percent: "50.00%", generatedAt: "2026-11-26 05:00:00+00",
            instances: [], shadow: (0, 0, 0, 0, 0), latency: [], readDivergences: [], writeDivergences: [],
            backfill: CutoverReport.Backfill(rowsInserted: 100, finishedAt: "2026-11-26 04:00:00+00"),
            verify: CutoverReport.Verify(equal: true, finishedAt: "2026-11-26 04:10:00+00", differingKeys: 0, rowsOld: 100),
            history: [], guardrails: guardrails)
    }

    /// An instance's latency row as Evidence stores it: `count` requests at `micros`, `errors` of them failed.
    static func latencyRow(cohort: String, path: String, micros: UInt64, count: UInt64, errors: UInt64 = 0,
                           source: String = "served", fingerprint: String = "f1") -> EvidenceRow {
        var h = RoutingHub.emptyLatencyHistogram()
        _ = h.record(micros, count: count)
        let series = LatencySeries(histogram: h, errors: errors)
        return EvidenceRow(flag: "users_v2", kind: "latency", key: "\(source)|\(cohort)|\(path)|\(fingerprint)", json: Evidence.json([
            "source": source, "cohort": cohort, "path": path, "fingerprint": fingerprint, "requests": series.requests, "errors": errors,
            "values": h.recordedValues().map { [$0.value, $0.count] },
        ]))
    }

    static func shadowRow(same: UInt64, divergent: UInt64, minute: Int64) -> EvidenceRow {
        EvidenceRow(flag: "users_v2", kind: "shadow", key: "", json: Evidence.json([
            "samples": same + divergent, "same": same, "divergent": divergent, "nondeterministic": 0, "skipped": 0,
            "timeline": [[minute, same, divergent, 0]],
        ]))
    }

    @Test("two instances add up: histograms merged exactly, errors and tallies summed, timelines added per minute")
    func merge() throws {
        var report = Self.report(guardrails: GuardrailConfig(maxDivergencePPM: 10_000, minSamples: 10))
        report.absorb(evidence: [
            ("a:1", Self.latencyRow(cohort: "control", path: "old", micros: 1_000, count: 90)),
            ("b:2", Self.latencyRow(cohort: "control", path: "old", micros: 9_000, count: 10, errors: 1)),
            ("a:1", Self.latencyRow(cohort: "canary", path: "new", micros: 2_000, count: 50)),
            ("a:1", Self.latencyRow(cohort: "sampled", path: "new", micros: 3_000, count: 5, source: "shadow")),
            ("a:1", Self.shadowRow(same: 40, divergent: 0, minute: 29_000_000)),
            ("b:2", Self.shadowRow(same: 20, divergent: 1, minute: 29_000_000)),
            ("b:2", EvidenceRow(flag: "users_v2", kind: "read_divergence", key: "x", json: Evidence.json([
                "cohort": "t-1", "fingerprint": "f1", "kind": "rows", "count": 1, "query": "select name from users where id = $1",
                "old_rows": 1, "new_rows": 1, "detail": "1 rows only on the old path, 1 only on the new",
                "only_in_old": [["old-3"]], "only_in_new": [["wrong"]],
            ]))),
            ("a:1", EvidenceRow(flag: "users_v2", kind: "read_divergence", key: "y", json: Evidence.json([
                "cohort": "t-2", "fingerprint": "f1", "kind": "rows", "count": 2, "query": "select name from users where id = $1",
                "old_rows": 1, "new_rows": 1, "detail": "", "only_in_old": [], "only_in_new": [],
            ]))),
        ])
        #expect(report.instances == ["a:1", "b:2"])
        let old = try #require(report.paths.first { $0.source == "served" && $0.cohort == "control" })
        #expect(old.requests == 100 && old.errors == 1)
        // Merged, the p50 is the first instance's 1 ms and the p95 the second's 9 ms: no instance saw both.
        #expect(old.p50Micros / 10 == 100, "\(old)")
        #expect(old.p95Micros / 100 == 90, "\(old)")
        #expect(old.distribution.map(\.count).reduce(0, +) == 100)
        #expect(report.paths.map { "\($0.source)/\($0.cohort)/\($0.path)" } == ["served/canary/new", "served/control/old", "shadow/sampled/new"])
        #expect(report.shadow.same == 60 && report.shadow.divergent == 1)
        #expect(report.timeline == [TimelinePoint(minute: 29_000_000, same: 60, divergent: 1)])
        // One divergence per query and kind, whichever cohorts saw it.
        #expect(report.readDivergences.count == 1)
        #expect(report.readDivergences.first?.count == 3)
        #expect(report.readDivergences.first?.cohort == "t-1 and 1 more cohorts")
        #expect(!report.isGo)
        #expect(report.reasons == ["shadow reads agree: 1 of 61 diverged (1.64%), max_divergence_rate 0.01; 0 nondeterministic"])
    }

    @Test("the JSON names the verdict, the reasons, each divergence and the latency per cohort and path in milliseconds")
    func json() throws {
        var report = Self.report(guardrails: GuardrailConfig(maxDivergencePPM: 0, maxErrorRateIncreasePPM: 10_000, minSamples: 10))
        report.absorb(evidence: [
            ("a:1", Self.latencyRow(cohort: "control", path: "old", micros: 1_000, count: 100)),
            ("a:1", Self.latencyRow(cohort: "canary", path: "new", micros: 2_000, count: 100, errors: 5)),
            ("a:1", Self.shadowRow(same: 20, divergent: 0, minute: 29_000_000)),
        ])
        let object = try #require(JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["verdict"] as? String == "NO-GO")
        #expect(object["reasons"] as? [String] == [
            "error rate within limit: 5 of 100 requests failed on the new path (5.00%), 0 of 100 on the old (0.00%); max_error_rate_increase 0.01",
        ])
        let latency = try #require(object["latency"] as? [[String: Any]])
        #expect(latency.count == 2)
        let canary = try #require(latency.first { $0["cohort"] as? String == "canary" })
        #expect(canary["path"] as? String == "new")
        #expect((canary["p50"] as? Double).map { abs($0 - 2.0) < 0.05 } == true, "\(canary)")
        #expect(canary["p95"] != nil && canary["p99"] != nil && canary["errors"] as? Int == 5)
        #expect(object["divergences"] as? [Any] != nil)
    }

    @Test("a latency histogram since a copy of it holds only what was recorded after, so a guardrail judges the stage alone")
    func histogramSince() {
        var h = RoutingHub.emptyLatencyHistogram()
        _ = h.record(50_000, count: 100)
        let base = h
        _ = h.record(1_000, count: 300)
        _ = h.record(50_000, count: 1)
        let since = h.since(base)
        #expect(since.totalCount == 301)
        #expect(since.valueAtPercentile(50) / 10 == 100)
        #expect(h.since(nil).totalCount == 401)
        #expect(h.since(h).totalCount == 0)
    }
}
