// `switchyard report`: the cutover decision for a flag, GO or NO-GO, with the evidence of every instance.
import ArgumentParser
import Foundation
import SwitchyardServer

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the cutover report of a flag: GO or NO-GO, with the criteria applied and the evidence.",
        discussion: """
            The report reads the control schema, where every instance stores its evidence: shadow-read \
            tallies and divergences, latency per cohort and path, write divergences, the backfill and \
            verify results, and the flag history with guardrail events. GO needs every criterion to pass: \
            backfill complete, verify equal, no write divergences, shadow reads agreeing within the \
            flag's guardrail (min_samples judged), the p99 latency ratio within its limit when one is set, \
            and no guardrail step-back as the last flip.

            Exit status: 0 GO, 1 NO-GO, 2 configuration or usage error, 3 control schema unreachable.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case md, json, html
    }

    @OptionGroup var options: ConfigOptions
    @Argument(help: "The flag's name (flags[].name).") var flag: String
    @Option(help: "md (Markdown), json, or html (one self-contained page with inline SVG charts, opens without a network).")
    var format: Format = .md
    @Option(help: "Write the report to this file instead of standard output.") var output: String?

    func run() throws {
        let config = try loadOrExit(options)
        let report: CutoverReport
        do {
            report = try ReportRunner.run(config, flag: flag)
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
            throw ExitCode(error.isUsage ? 2 : 3)
        }
        let text: String
        switch format {
        case .md: text = report.markdown()
        case .json: text = report.json() + "\n"
        case .html: text = report.html()
        }
        if let output {
            do {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(Data("switchyard: cannot write \(output): \(error)\n".utf8))
                throw ExitCode(2)
            }
            // The absolute path, so a script's output says where to open it whatever its directory.
            let shown = output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output
            print("\(report.isGo ? "GO" : "NO-GO"): report written to \(shown)")
        } else {
            print(text, terminator: "")
        }
        if !report.isGo { throw ExitCode(1) }
    }
}
