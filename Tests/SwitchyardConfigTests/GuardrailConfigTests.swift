// A flag's guardrails: each key's accepted form, the defaults, and errors that name the key and line.
import SwitchyardConfig
import Testing

@Suite("Guardrail config")
struct GuardrailConfigTests {
    @Test("guardrails are off by default; each key is read")
    func keys() throws {
        #expect(try ConfigLoader.parse(yaml: MigrationDocument.replacing([:])).flags.first?.guardrails == GuardrailConfig())
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([
            17: "    guardrails: {max_divergence_rate: 0.001, max_p99_ratio: 1.5, max_error_rate_increase: 0.01, min_samples: 300, step_back_to: dual_write}",
        ]))
        let g = try #require(config.flags.first?.guardrails)
        #expect(g == GuardrailConfig(maxDivergencePPM: 1000, maxP99RatioHundredths: 150, maxErrorRateIncreasePPM: 10_000, minSamples: 300,
                                     stepBackTo: .dualWrite))
        #expect(g.isEnabled)
    }

    @Test("mistakes name the key and line", arguments: [
        ("    guardrails: {step_back_to: canary}", "flags[0].guardrails.step_back_to", "before canary"),
        ("    guardrails: {max_p99_ratio: 0.5}", "flags[0].guardrails.max_p99_ratio", "from 1 to 1000"),
        ("    guardrails: {max_divergence_rate: 5}", "flags[0].guardrails.max_divergence_rate", "a rate from 0 to 1"),
        ("    guardrails: {max_error_rate_increase: 0.0000001}", "flags[0].guardrails.max_error_rate_increase", "six decimals"),
        ("    shadow_sample: 1.5", "flags[0].shadow_sample", "a rate from 0 to 1"),
        ("    guardrails: {min_samples: 0}", "flags[0].guardrails.min_samples", "from 1 to 100000000"),
        ("    guardrails: {max_divergence: 1}", "flags[0].guardrails.max_divergence", "unknown key"),
        ("    guardrails: 5", "flags[0].guardrails", "expected a mapping"),
    ])
    func mistakes(line: String, key: String, message: String) {
        do {
            _ = try ConfigLoader.parse(yaml: MigrationDocument.replacing([17: line]))
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.line == 17, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }
}
