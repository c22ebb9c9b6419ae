// The HTML cutover report: verdict, charts and escaping from hand-built reports, then the page as a headless browser draws it.
import Foundation
import Glibc
@testable import SwitchyardServer
import SwitchyardConfig
import SwitchyardShadow
import SwitchyardTestSupport
import Testing

@Suite("Cutover report as HTML")
struct ReportHTMLTests {
    /// Text a hostile or unlucky query could carry into the page.
    static let hostileQuery = "select * from users where note = '<script>alert(1)</script>' and a & b = 1"
    static let firstMinute: Int64 = 29_400_000

    static func path(_ source: String, _ cohort: String, _ path: String, requests: UInt64, errors: UInt64 = 0,
                     percentiles: (UInt64, UInt64, UInt64), counts: [UInt64: UInt64]) -> CutoverReport.PathSummary {
        var summary = CutoverReport.PathSummary(source: source, cohort: cohort, path: path)
        summary.requests = requests
        summary.errors = errors
        (summary.p50Micros, summary.p95Micros, summary.p99Micros) = percentiles
        summary.distribution = CutoverReport.distributionBoundsMicros.map { .init(upToMicros: $0, count: counts[$0] ?? 0) }
        return summary
    }

    /// Reads diverging, a write not mirrored, and a guardrail step-back as the last flip.
    static var noGo: CutoverReport {
        var report = CutoverReport(
            flag: "users_v2", migration: "users_split", stage: "shadow", percent: "0.00%", generatedAt: "2025-11-26 04:00:00+00",
            instances: ["proxy-a", "proxy-b"], shadow: (samples: 220, same: 200, divergent: 5, nondeterministic: 3, skipped: 12),
            latency: [
                .init(source: "served", cohort: "control", path: "old", fingerprint: "a1b2c3", requests: 900, errors: 0,
                      p50Micros: 400, p95Micros: 900, p99Micros: 1_000),
                .init(source: "served", cohort: "canary", path: "new", fingerprint: "a1b2c3", requests: 50, errors: 2,
                      p50Micros: 900, p95Micros: 4_000, p99Micros: 5_000),
            ],
            readDivergences: [
                .init(cohort: "canary", fingerprint: "a1b2c3", kind: "rows", count: 5, query: hostileQuery, oldRows: 1, newRows: 1,
                      detail: "column full_name: 'Zoë <O'Brien>' became 'Zo'", examplesOld: "(7, Zoë <O'Brien>)", examplesNew: "(7, Zo)"),
            ],
            writeDivergences: [.init(migration: "users_split", fingerprint: "d4e5f6", reason: "new table rejected it", query: hostileQuery, count: 1)],
            backfill: .init(rowsInserted: 10_000, finishedAt: "2025-11-26 03:00:00+00"),
            verify: .init(equal: true, finishedAt: "2025-11-26 03:10:00+00", differingKeys: 0, rowsOld: 10_000),
            history: [
                .init(flag: "users_v2", at: "2025-11-26 03:50:00+00", from: "canary", to: "shadow", by: "switchyard guardrail",
                      why: "shadow reads diverged: 5 of 205 > 0.001"),
                .init(flag: "users_v2", at: "2025-11-26 03:40:00+00", from: "shadow", to: "canary", by: "ops", why: "canary 5%"),
                .init(flag: "other_flag", at: "2025-11-26 03:30:00+00", from: "off", to: "live", by: "ops", why: "not this flag"),
            ],
            guardrails: GuardrailConfig(maxDivergencePPM: 1_000, minSamples: 20))
        // Buckets in use run from 200 µs to 5 ms: five of them.
        report.paths = [
            path("served", "canary", "new", requests: 50, errors: 2, percentiles: (900, 4_000, 5_000), counts: [500: 10, 1_000: 30, 5_000: 10]),
            path("served", "canary", "old", requests: 50, percentiles: (400, 500, 500), counts: [200: 20, 500: 30]),
            path("served", "control", "old", requests: 900, percentiles: (400, 900, 1_000), counts: [200: 300, 500: 500, 1_000: 100]),
            path("shadow", "canary", "new", requests: 30, percentiles: (1_000, 1_000, 1_000), counts: [1_000: 30]),
            path("shadow", "canary", "old", requests: 0, percentiles: (0, 0, 0), counts: [:]),
        ]
        // Minute 2 is quiet: it is drawn as an empty slot, so four slots in all.
        report.timeline = [
            TimelinePoint(minute: firstMinute, same: 80, divergent: 0, nondeterministic: 1),
            TimelinePoint(minute: firstMinute + 1, same: 70, divergent: 3, nondeterministic: 2),
            TimelinePoint(minute: firstMinute + 3, same: 50, divergent: 2),
        ]
        return report
    }

    /// Everything passed, and no latency or timeline recorded: the charts show why they are empty.
    static var go: CutoverReport {
        CutoverReport(
            flag: "users_v2", migration: "users_split", stage: "live", percent: "100.00%", generatedAt: "2025-11-26 05:00:00+00",
            instances: ["proxy-a"], shadow: (samples: 300, same: 300, divergent: 0, nondeterministic: 0, skipped: 0),
            latency: [], readDivergences: [], writeDivergences: [],
            backfill: .init(rowsInserted: 10_000, finishedAt: "2025-11-26 03:00:00+00"),
            verify: .init(equal: true, finishedAt: "2025-11-26 03:10:00+00", differingKeys: 0, rowsOld: 10_000),
            history: [.init(flag: "users_v2", at: "2025-11-26 04:50:00+00", from: "canary", to: "live", by: "ops", why: "all clear")],
            guardrails: GuardrailConfig(maxDivergencePPM: 1_000, minSamples: 20))
    }

    /// The page's SVG documents, in order: distribution, percentiles, timeline.
    static func charts(_ html: String) -> [String] {
        html.components(separatedBy: "<svg").dropFirst().map { "<svg" + ($0.components(separatedBy: "</svg>").first ?? "") }
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    static func expectSelfContained(_ html: String) {
        for reference in ["http://", "https://", "src=", "<link", "<script", "url(", "@import"] {
            #expect(!html.contains(reference), "the page must fetch nothing, yet it contains \(reference)")
        }
    }

    @Test("NO-GO: red banner naming every failed criterion, the charts with one bar per series and bucket, guardrail flips marked")
    func noGoPage() throws {
        let report = Self.noGo
        let html = report.html()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<section class=\"verdict nogo\"><p class=\"word\">NO-GO</p>"))
        let failed = report.criteria.filter { !$0.passed }.map(\.name)
        #expect(failed == ["no write divergences", "shadow reads agree", "no guardrail step-back"])
        for name in failed {
            #expect(html.contains("<li><strong>\(name)</strong>"), "the banner names \(name)")
        }
        let charts = Self.charts(html)
        try #require(charts.count == 3)
        // Four series with requests (the shadow old path has none) over the five buckets in use.
        #expect(Self.count("<rect class=\"bar\"", in: charts[0]) == 4 * 5)
        #expect(charts[0].contains(">≤ 200 µs</text>") && charts[0].contains(">≤ 5 ms</text>") && !charts[0].contains(">≤ 100 µs</text>"))
        for series in ["canary · new", "canary · old", "control · old", "shadow canary · new"] {
            #expect(charts[0].contains("class=\"legend-label\">\(series)</text>"))
        }
        #expect(Self.count("<rect class=\"bar\"", in: charts[1]) == 4 * 3)
        // Four minutes (one quiet) times same and divergent.
        #expect(Self.count("<rect class=\"bar\"", in: charts[2]) == 4 * 2)
        #expect(Self.count("data-series=\"divergent\"", in: charts[2]) == 4)
        #expect(charts[2].contains("divergent, \(CutoverReport.minuteText(Self.firstMinute + 1)): 3</title>"))
        // Guardrail flips are marked; another flag's flips are not shown.
        #expect(Self.count("<tr class=\"guardrail\">", in: html) == 1)
        #expect(!html.contains("not this flag"))
        Self.expectSelfContained(html)
    }

    @Test("GO: green banner, no failed criterion, charts explain why they are empty")
    func goPage() {
        let html = Self.go.html()
        #expect(html.contains("<section class=\"verdict go\"><p class=\"word\">GO</p><p>Every criterion passed.</p>"))
        #expect(!html.contains("<tr class=\"fail\">"))
        let charts = Self.charts(html)
        #expect(charts.count == 3)
        #expect(!html.contains("<rect class=\"bar\""))
        #expect(Self.count("No latency recorded", in: html) == 2)
        #expect(html.contains("No shadow read judged yet"))
        Self.expectSelfContained(html)
    }

    @Test("Text from the evidence is escaped everywhere, in tables and in SVG")
    func escaping() {
        var report = Self.noGo
        report.paths[0].cohort = "canary<b>&"
        let html = report.html()
        #expect(!html.contains("<script"))
        #expect(!html.contains("a & b"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&#39; and a &amp; b = 1"))
        #expect(html.contains("Zoë &lt;O&#39;Brien&gt;"))
        #expect(html.contains("class=\"legend-label\">canary&lt;b&gt;&amp; · new</text>"))
        #expect(html.contains("data-series=\"canary&lt;b&gt;&amp; · new\""))
        #expect(!html.contains("<b>"))
    }

    @Test("The same report gives the same bytes")
    func deterministic() {
        #expect(Self.noGo.html() == Self.noGo.html())
    }

    @Test("A long timeline is drawn in slots of several minutes, at most 120 bars")
    func longTimeline() {
        var report = Self.noGo
        report.timeline = (0..<600).map { TimelinePoint(minute: Self.firstMinute + Int64($0), same: 10, divergent: $0 == 599 ? 1 : 0) }
        let slots = report.timelineSlots
        #expect(slots.count == 120)
        #expect(slots.allSatisfy { $0.same == 50 })
        #expect(slots.last?.divergent == 1)
        #expect(report.timelineChart.yLabel == "judged shadow reads per 5 min")
    }

    @Test("Gridlines step by 1, 2 or 5 times a power of ten and reach the top value")
    func ticks() {
        #expect(BarChart.ticks(upTo: 37) == [0, 10, 20, 30, 40])
        #expect(BarChart.ticks(upTo: 100) == [0, 50, 100])
        #expect(BarChart.ticks(upTo: 0) == [0, 1])
        #expect(BarChart.ticks(upTo: 0.5).map(BarChart.number) == ["0", "0.2", "0.4", "0.6"])
    }

    @Test("A headless browser opens the page with no network, parses its charts and draws it (screenshot kept)")
    func browserRendersPage() throws {
        let directory = packageRootDirectory + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let page = directory + "/cutover-report.html"
        let screenshot = directory + "/cutover-report.png"
        try Self.noGo.html().write(toFile: page, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: screenshot)

        let dom = try Self.browser(["--dump-dom", "file://" + page])
        #expect(dom.status == 0, "the browser failed: \(dom.stderr.suffix(2_000))")
        for title in ["Latency distribution per cohort and path", "p50, p95 and p99 per cohort and path", "Divergences over time"] {
            #expect(dom.stdout.contains("<title>\(title)</title>"), "the browser's DOM has the chart \(title)")
        }
        #expect(Self.count("<svg", in: dom.stdout) == 3)
        #expect(Self.count("<rect class=\"bar\"", in: dom.stdout) == 4 * 5 + 4 * 3 + 4 * 2)
        #expect(dom.stdout.contains("NO-GO"))

        let shot = try Self.browser(["--screenshot=" + screenshot, "--window-size=1280,2400", "file://" + page])
        #expect(shot.status == 0, "the browser failed: \(shot.stderr.suffix(2_000))")
        let png = try #require(FileManager.default.contents(atPath: screenshot), "no screenshot at \(screenshot)")
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "not a PNG")
        // The IHDR chunk follows the signature: width and height, big-endian, at bytes 16 and 20.
        let bytes = [UInt8](png.prefix(24))
        func word(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        #expect(bytes.count == 24 && word(16) == 1_280 && word(20) == 2_400)
        // A blank page compresses to a few kilobytes; tables, text and charts do not.
        #expect(png.count > 50_000, "screenshot of \(png.count) bytes is too small to hold the report")
        print("cutover report screenshot: \(screenshot) (\(png.count) bytes), page: \(page)")
    }

    /// Runs the headless browser Debian ships (chromium-headless-shell, else chromium in headless mode),
    /// killed by its pid past 60 s. Missing, it fails the test: scripts/install-deps.sh installs it.
    static func browser(_ arguments: [String]) throws -> ProcessResult {
        var command: (String, [String])?
        for candidate in ["chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell"] {
            if let path = try? findExecutable(candidate) {
                command = (path, [])
                break
            }
        }
        if command == nil, let path = try? findExecutable("chromium") { command = (path, ["--headless"]) }
        guard let (path, mode) = command else {
            throw HarnessError("no headless browser: install chromium-headless-shell (scripts/install-deps.sh does)")
        }
        let profile = NSTemporaryDirectory() + "switchyard-browser-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        // Root has no user namespace sandbox to drop into; the page is our own, with no script.
        let sandbox = getuid() == 0 ? ["--no-sandbox"] : []
        return try runProcess(path, mode + sandbox + ["--disable-gpu", "--hide-scrollbars", "--no-first-run", "--user-data-dir=" + profile] + arguments,
                              timeout: .seconds(60))
    }
}
