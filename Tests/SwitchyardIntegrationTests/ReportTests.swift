// `switchyard report`: GO when every criterion holds, NO-GO naming what failed, from the control schema.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite("Cutover report", .serialized)
struct ReportTests {
    static let database = "sy_report"

    static func yaml(port: Int, schema: String) -> String {
        RoutingTests.yaml.replacingOccurrences(of: "127.0.0.1:5432/postgres", with: "127.0.0.1:\(port)/\(database)")
            + "\n    shadow_sample: 1\n    shadow: { calibration_percent: 0 }"
            + "\n    guardrails: { max_divergence_rate: 0.05, min_samples: 5 }"
            + "\ncontrol:\n  schema: \(schema)\n"
    }

    static func cli(_ arguments: [String], config: String) throws -> ProcessResult {
        try runProcess(try switchyardBinaryPath, arguments + ["--config", config], timeout: .seconds(120))
    }

    @Test("GO after backfill, verify and agreeing shadow reads; NO-GO naming the divergent query once reads diverge")
    func goThenNoGo() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        _ = try cluster.psql("update users_v2 n set full_name = o.name from users o where o.id = n.id", database: Self.database)
        let schema = "sy_ctl_report_\(UInt32.random(in: 0...UInt32.max))"
        let yaml = Self.yaml(port: cluster.port, schema: schema)
        let path = NSTemporaryDirectory() + "switchyard-report-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster, controlSchema: schema) { proxy in
            let backfill = try Self.cli(["backfill", "users_v2"], config: path)
            try #require(backfill.status == 0, "\(backfill.stdout)\(backfill.stderr)")
            let verify = try Self.cli(["verify", "users_v2"], config: path)
            try #require(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("set switchyard.cohort = '\(RoutingTests.outside)'")
            for id in 10...19 { #expect(try conn.query("select name from users where id = \(id)") == [["old-\(id)"]]) }
            // The control thread stores the evidence every two seconds.
            var report = try Self.cli(["report", "users_v2", "--format", "json"], config: path)
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline, !report.stdout.contains("\"same\" : 10") {
                usleep(200_000)
                report = try Self.cli(["report", "users_v2", "--format", "json"], config: path)
            }
            #expect(report.status == 0, "\(report.stdout)\(report.stderr)")
            #expect(report.stdout.contains("\"verdict\" : \"GO\""), "\(report.stdout)")

            // One read in eleven diverges (9%, over the 5% guardrail): NO-GO, and the guardrail steps back.
            _ = try cluster.psql("update users_v2 set full_name = 'wrong' where id = 3", database: Self.database)
            #expect(try conn.query("select name from users where id = 3") == [["old-3"]])
            var markdown = try Self.cli(["report", "users_v2"], config: path)
            let later = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < later, !(markdown.stdout.contains("1 of 11 diverged") && markdown.stdout.contains("the last flip was a guardrail")) {
                usleep(200_000)
                markdown = try Self.cli(["report", "users_v2"], config: path)
            }
            #expect(markdown.status == 1, "\(markdown.stdout)\(markdown.stderr)")
            #expect(markdown.stdout.contains("**Verdict: NO-GO** — failed: shadow reads agree, no guardrail step-back"), "\(markdown.stdout)")
            #expect(markdown.stdout.contains("select name from users where id = $1"), "\(markdown.stdout)")
            #expect(markdown.stdout.contains("| backfill complete | pass |"), "\(markdown.stdout)")
            #expect(markdown.stdout.contains("| verify equal | pass |"), "\(markdown.stdout)")

            // The same verdict as a page written to a file: one line on stdout says where it is.
            let page = NSTemporaryDirectory() + "switchyard-report-\(UUID().uuidString).html"
            defer { unlink(page) }
            let html = try Self.cli(["report", "users_v2", "--format", "html", "--output", page], config: path)
            #expect(html.status == 1, "\(html.stdout)\(html.stderr)")
            #expect(html.stdout == "NO-GO: report written to \(page)\n")
            let text = try String(contentsOfFile: page, encoding: .utf8)
            #expect(text.contains("<section class=\"verdict nogo\">"))
            #expect(text.contains("select name from users where id = $1"))
            #expect(text.contains("data-series=\"divergent\""))
        }
    }
}
