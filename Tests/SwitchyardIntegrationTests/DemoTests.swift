// `make demo`'s script end to end: a migration through every stage under a workload, ending with a GO report.
import Foundation
import SwitchyardTestSupport
import Testing

@Suite("The demo")
struct DemoTests {
    @Test("scripts/demo.sh takes the migration from dual_write to live with no client error and writes a GO report")
    func wholeStory() throws {
        let reports = NSTemporaryDirectory() + "switchyard-demo-report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: reports) }
        let result = try runProcess("bash", [packageRootDirectory + "/scripts/demo.sh"], environment: [
            "SWITCHYARD_BIN": try switchyardBinaryPath, "DEMO_SECONDS": "0", "DEMO_REPORT_DIR": reports,
        ], timeout: .seconds(600))
        let output = result.stdout + result.stderr
        #expect(result.status == 0, "\(output)")
        for stage in ["dual_write", "shadow", "canary 5", "canary 50", "live"] {
            #expect(output.contains("switchyard flag set accounts_v2 \(stage)\n"), "\(stage) missing:\n\(output)")
        }
        #expect(output.contains("backfill accounts_v2: finished"), "\(output)")
        #expect(output.components(separatedBy: "verify accounts_v2: EQUAL").count == 3, "\(output)")
        #expect(output.contains("demo: cutover report (GO): \(reports)/cutover-report.html"), "\(output)")
        let json = try Data(contentsOf: URL(fileURLWithPath: reports + "/cutover-report.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["verdict"] as? String == "GO", "\(object)")
        #expect(object["stage"] as? String == "live")
        // Every cohort and path served some reads: control on old, canary and live on new.
        let served = (object["latency"] as? [[String: Any]] ?? []).map { "\($0["cohort"] ?? "")/\($0["path"] ?? "")" }
        #expect(Set(served).isSuperset(of: ["control/old", "canary/new", "live/new"]), "\(served)")
        let html = try String(contentsOfFile: reports + "/cutover-report.html", encoding: .utf8)
        #expect(html.contains("<svg"), "the HTML report draws no chart")
    }
}
