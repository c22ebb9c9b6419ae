// Guardrail verdicts: divergence rate, error-rate increase and p99 latency ratio, each only past the minimum sample size.
import SwitchyardConfig
import SwitchyardRouting
import Testing

@Suite("Guardrails")
struct GuardrailsTests {
    static let divergence = GuardrailConfig(maxDivergencePPM: 10_000, minSamples: 50)

    @Test("the divergence rate breaks the threshold only above it and past min_samples")
    func divergenceRate() {
        #expect(Guardrails.breach(Self.divergence, divergent: 1, judged: 100, latency: []) == nil)
        #expect(Guardrails.breach(Self.divergence, divergent: 5, judged: 40, latency: []) == nil)
        #expect(Guardrails.breach(Self.divergence, divergent: 2, judged: 100, latency: [])
                == "guardrail: 2 of 100 shadow reads diverged (2.00%), over max_divergence_rate 0.01")
        #expect(Guardrails.breach(GuardrailConfig(minSamples: 1), divergent: 100, judged: 100, latency: []) == nil)
    }

    @Test("the p99 ratio of one fingerprint breaks the threshold when both paths have enough requests")
    func latencyRatio() {
        let g = GuardrailConfig(maxP99RatioHundredths: 150, minSamples: 10)
        let slow = Guardrails.LatencyEvidence(fingerprint: "f1", newP99Micros: 400, newRequests: 20, oldP99Micros: 200, oldRequests: 20)
        let fine = Guardrails.LatencyEvidence(fingerprint: "f2", newP99Micros: 290, newRequests: 20, oldP99Micros: 200, oldRequests: 20)
        let thin = Guardrails.LatencyEvidence(fingerprint: "f3", newP99Micros: 900, newRequests: 5, oldP99Micros: 200, oldRequests: 20)
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [fine, thin]) == nil)
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [fine, slow])
                == "guardrail: p99 of query f1 is 400 µs on the new path, 2.00× the old path's 200 µs, over max_p99_ratio 1.50")
    }

    @Test("the error rate of the new path breaks the threshold when it rises more than allowed over the old path's")
    func errorRate() {
        let g = GuardrailConfig(maxErrorRateIncreasePPM: 10_000, minSamples: 100)
        func errors(_ newErrors: UInt64, _ newRequests: UInt64, _ oldErrors: UInt64, _ oldRequests: UInt64) -> Guardrails.ErrorEvidence {
            Guardrails.ErrorEvidence(newErrors: newErrors, newRequests: newRequests, oldErrors: oldErrors, oldRequests: oldRequests)
        }
        // One point more is allowed; 1.5 points more is not; the old path's own errors are subtracted.
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [], errors: errors(1, 100, 0, 1000)) == nil)
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [], errors: errors(3, 200, 0, 1000))
                == "guardrail: 3 of 200 requests failed on the new path (1.50%), 0 of 1000 on the old (0.00%), "
                    + "an increase over max_error_rate_increase 0.01")
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [], errors: errors(22, 200, 100, 1000)) == nil)
        // Below min_samples on either path, no decision.
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [], errors: errors(50, 99, 0, 1000)) == nil)
        #expect(Guardrails.breach(GuardrailConfig(minSamples: 1), divergent: 0, judged: 0, latency: [], errors: errors(50, 100, 0, 100)) == nil)
    }

    @Test("only canary and live are guarded")
    func stages() {
        #expect(FlagStage.allCases.filter(Guardrails.guards) == [.canary, .live])
    }
}
