// Guardrail verdicts: divergence rate and p99 latency ratio, each only past the minimum sample size.
import SwitchyardConfig
import SwitchyardRouting
import Testing

@Suite("Guardrails")
struct GuardrailsTests {
    static let divergence = GuardrailConfig(maxDivergenceBasisPoints: 100, minSamples: 50)

    @Test("the divergence rate breaks the threshold only above it and past min_samples")
    func divergenceRate() {
        #expect(Guardrails.breach(Self.divergence, divergent: 1, judged: 100, latency: []) == nil)
        #expect(Guardrails.breach(Self.divergence, divergent: 5, judged: 40, latency: []) == nil)
        #expect(Guardrails.breach(Self.divergence, divergent: 2, judged: 100, latency: [])
                == "guardrail: 2 of 100 shadow reads diverged (2.00%), over max_divergence_percent 1.00%")
        #expect(Guardrails.breach(GuardrailConfig(minSamples: 1), divergent: 100, judged: 100, latency: []) == nil)
    }

    @Test("the p99 ratio of one fingerprint breaks the threshold when both paths have enough requests")
    func latencyRatio() {
        let g = GuardrailConfig(maxP99LatencyRatioHundredths: 150, minSamples: 10)
        let slow = Guardrails.LatencyEvidence(fingerprint: "f1", newP99Micros: 400, newRequests: 20, oldP99Micros: 200, oldRequests: 20)
        let fine = Guardrails.LatencyEvidence(fingerprint: "f2", newP99Micros: 290, newRequests: 20, oldP99Micros: 200, oldRequests: 20)
        let thin = Guardrails.LatencyEvidence(fingerprint: "f3", newP99Micros: 900, newRequests: 5, oldP99Micros: 200, oldRequests: 20)
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [fine, thin]) == nil)
        #expect(Guardrails.breach(g, divergent: 0, judged: 0, latency: [fine, slow])
                == "guardrail: p99 of query f1 is 400 µs on the new path, 2.00× the old path's 200 µs, over max_p99_latency_ratio 1.50")
    }

    @Test("only canary and live are guarded")
    func stages() {
        #expect(FlagStage.allCases.filter(Guardrails.guards) == [.canary, .live])
    }
}
