// Shadow reads' settings: a flag's shadow section and the shadow_reads section, defaults, every key, each mistake at its line.

import Foundation
import Testing
import SwitchyardConfig

@Suite("The shadow sections")
struct ShadowConfigTests {
    /// MigrationDocument with lines after the flag's percent (line 17): they start at 18.
    static func flag(_ lines: String) -> String {
        MigrationDocument.replacing([17: "    percent: 12.5\n" + lines])
    }

    /// The document with a shadow_reads section at the end: its lines start at 20.
    static func reads(_ lines: String) -> String {
        MigrationDocument.text + "\n" + lines
    }

    @Test("without the sections, or with empty ones, the defaults apply")
    func defaults() throws {
        for text in [MigrationDocument.text, Self.flag("    shadow:"), Self.flag("    shadow: {}"), Self.reads("shadow_reads:")] {
            let config = try ConfigLoader.parse(yaml: text)
            #expect(config.flags[0].shadow == FlagShadowConfig())
            #expect(config.shadowReads == ShadowReadsConfig())
        }
        let flag = FlagShadowConfig()
        #expect(flag.samplePercentBasisPoints == 100)
        #expect(flag.calibrationPercentBasisPoints == 1000)
        #expect(!flag.redactParameters)
        #expect(flag.maxPerFingerprintPerSecond == 50)
        #expect(flag.nonDefaultSettings.isEmpty)
        let reads = ShadowReadsConfig()
        #expect(reads.connections == 2 && reads.queue == 100 && reads.statementTimeout == .seconds(5))
    }

    @Test("every key is read; the summary shows the flag's non-default keys and the side connections")
    func everyKey() throws {
        let config = try ConfigLoader.parse(yaml: Self.flag("""
                shadow_sample: 0.05
                shadow:
                  calibration_percent: 12.5
                  redact_parameters: true
                  max_per_fingerprint_per_second: 0
            """) + "\nshadow_reads:\n  connections: 4\n  queue: 250\n  statement_timeout: 1500ms")
        #expect(config.flags[0].shadow == FlagShadowConfig(
            samplePercentBasisPoints: 500, calibrationPercentBasisPoints: 1250, redactParameters: true, maxPerFingerprintPerSecond: 0))
        #expect(config.shadowReads == ShadowReadsConfig(connections: 4, queue: 250, statementTimeout: .milliseconds(1500)))
        // The flag's other keys are read as before.
        #expect(config.flags[0].stage == .canary && config.flags[0].percentBasisPoints == 1250)
        let values = Dictionary(uniqueKeysWithValues: config.summaryLines().map { ($0.key, $0.value) })
        #expect(values["flags.users_v2"]?.hasSuffix(" shadow={shadow_sample: 0.05, calibration_percent: 12.50%, "
            + "redact_parameters: true, max_per_fingerprint_per_second: 0}") == true)
        #expect(values["shadow_reads.connections"] == "4")
        #expect(values["shadow_reads.queue"] == "250")
        #expect(values["shadow_reads.statement_timeout"] == "1500ms")
    }

    @Test("flow mappings, and shadow anywhere among a flag's keys")
    func flow() throws {
        let config = try ConfigLoader.parse(yaml: """
            \(Fixture.upstreamLine)
            migrations: [{name: m, old: a, new: b, key: [id], columns: {id: id}}]
            flags:
              - {shadow: {calibration_percent: 5}, name: f, migration: m, shadow_sample: 0.0025}
            shadow_reads: {queue: 5}
            """)
        #expect(config.flags == [FlagConfig(name: "f", migration: "m", shadow: FlagShadowConfig(samplePercentBasisPoints: 25, calibrationPercentBasisPoints: 500))])
        #expect(config.shadowReads == ShadowReadsConfig(queue: 5))
    }

    @Test("mistakes name the key and line", arguments: [
        InvalidCase(flag("    shadow_sample: 1.01"), key: "flags[0].shadow_sample", line: 18, "a rate from 0 to 1"),
        InvalidCase(flag("    shadow_sample: 0.00001"), key: "flags[0].shadow_sample", line: 18, "up to four decimals"),
        InvalidCase(flag("    shadow:\n      calibration_percent: 101"), key: "flags[0].shadow.calibration_percent", line: 19,
                    "a percentage is at most 100"),
        InvalidCase(flag("    shadow:\n      calibration_percent: 0.125"), key: "flags[0].shadow.calibration_percent", line: 19,
                    "more than two decimals"),
        InvalidCase(flag("    shadow:\n      calibration_percent: lots"), key: "flags[0].shadow.calibration_percent", line: 19,
                    "expected a percentage from 0 to 100"),
        InvalidCase(flag("    shadow:\n      redact_parameters: maybe"), key: "flags[0].shadow.redact_parameters", line: 19,
                    "expected true or false, got \"maybe\""),
        InvalidCase(flag("    shadow:\n      max_per_fingerprint_per_second: -1"),
                    key: "flags[0].shadow.max_per_fingerprint_per_second", line: 19,
                    "samples per second (0: no cap) from 0 to 1000000, got -1"),
        InvalidCase(flag("    shadow:\n      calibraton_percent: 5"), key: "flags[0].shadow.calibraton_percent", line: 19,
                    "unknown key; did you mean calibration_percent?"),
        InvalidCase(flag("    shadow: 5"), key: "flags[0].shadow", line: 18,
                    "expected a mapping with the keys calibration_percent, redact_parameters"),
        InvalidCase(flag("    shadw: {}"), key: "flags[0].shadw", line: 18, "did you mean shadow?"),
        InvalidCase(flag("    redact_parameters: true"), key: "flags[0].redact_parameters", line: 18,
                    "redact_parameters belongs under the flag's shadow:"),
        InvalidCase(flag("    shadow:\n      sample_percent: 5"), key: "flags[0].shadow.sample_percent", line: 19, "unknown key"),
        InvalidCase(reads("shadow_reads:\n  connections: 0"), key: "shadow_reads.connections", line: 21,
                    "side connections from 1 to 64, got 0"),
        InvalidCase(reads("shadow_reads:\n  queue: 1e9"), key: "shadow_reads.queue", line: 21, "got \"1e9\""),
        InvalidCase(reads("shadow_reads:\n  statement_timeout: 0s"), key: "shadow_reads.statement_timeout", line: 21,
                    "expected a duration from 1ms to 1h, got \"0s\""),
        InvalidCase(reads("shadow_reads:\n  statement_timeout: 1500us"), key: "shadow_reads.statement_timeout", line: 21,
                    "counts whole milliseconds"),
        InvalidCase(reads("shadow_reads:\n  statement_timeout: soon"), key: "shadow_reads.statement_timeout", line: 21,
                    "expected a duration"),
        InvalidCase(reads("shadow_reads:\n  conections: 2"), key: "shadow_reads.conections", line: 21,
                    "did you mean connections?"),
        InvalidCase(reads("shadow_reads: 3"), key: "shadow_reads", line: 20,
                    "expected a mapping with the keys connections, queue, statement_timeout"),
        InvalidCase(reads("queue: 3"), key: "queue", line: 20, "queue belongs under shadow_reads:"),
    ])
    func rejected(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("a flag's other mistakes are still reported as before")
    func otherFlagErrors() throws {
        let error = try #require(Fixture.error(Self.flag("    shadow: {calibration_percent: 5}\n    stage: sideways")))
        #expect(error.key == "flags[0].stage")
        #expect(error.line == 19)
    }

    @Test("migration-example.yaml sets a flag's sampling; switchyard.yaml documents the defaults")
    func examples() throws {
        let example = try ConfigLoader.load(path: Fixture.migrationExamplePath)
        #expect(example.flags[0].shadow == FlagShadowConfig(
            samplePercentBasisPoints: 500, calibrationPercentBasisPoints: 1000, redactParameters: false, maxPerFingerprintPerSecond: 50))
        #expect(example.shadowReads == ShadowReadsConfig())
        let documented = try ConfigLoader.load(path: Fixture.examplePath)
        #expect(documented.flags[0].shadow == FlagShadowConfig())
        let text = try String(contentsOfFile: Fixture.examplePath, encoding: .utf8)
        #expect(text.contains("\n    shadow_sample:"), "shadow_sample missing")
        for key in ["shadow"] + ["calibration_percent", "redact_parameters", "max_per_fingerprint_per_second"]
            .map({ "  \($0)" }) {
            #expect(text.contains("\n    \(key):"), "\(key) missing")
        }
        for key in ["connections", "queue", "statement_timeout"] {
            #expect(text.contains("\n  \(key):"), "\(key) missing")
        }
    }
}
