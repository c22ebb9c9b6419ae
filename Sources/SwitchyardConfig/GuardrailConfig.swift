// The guardrails of a flag: when the evidence breaks a threshold during canary or live, the flag steps back.

/// `guardrails:` under a flag. Each threshold is off unless set; `min_samples` keeps a decision
/// from resting on a handful of reads.
public struct GuardrailConfig: Sendable, Equatable {
    /// max_divergence_percent: most divergent shadow reads, in basis points of the judged ones.
    public var maxDivergenceBasisPoints: Int?
    /// max_p99_latency_ratio: the new path's p99 over the old path's, per fingerprint, in hundredths.
    public var maxP99LatencyRatioHundredths: Int?
    /// min_samples: shadow reads (or requests on each path, for latency) before a guardrail may act.
    public var minSamples: Int
    /// step_back_to: the stage a breach moves the flag back to.
    public var stepBackTo: FlagStage

    public static let defaultMinSamples = 100

    public init(maxDivergenceBasisPoints: Int? = nil, maxP99LatencyRatioHundredths: Int? = nil,
                minSamples: Int = GuardrailConfig.defaultMinSamples, stepBackTo: FlagStage = .shadow) {
        self.maxDivergenceBasisPoints = maxDivergenceBasisPoints
        self.maxP99LatencyRatioHundredths = maxP99LatencyRatioHundredths
        self.minSamples = minSamples
        self.stepBackTo = stepBackTo
    }

    public var isEnabled: Bool { maxDivergenceBasisPoints != nil || maxP99LatencyRatioHundredths != nil }
}

import Yams

extension DocumentReader {
    static let guardrailKeys = ["max_divergence_percent", "max_p99_latency_ratio", "min_samples", "step_back_to"]

    func guardrails(_ entry: Entry) throws(ConfigError) -> GuardrailConfig {
        var result = GuardrailConfig()
        for field in try nestedEntries(entry, keys: Self.guardrailKeys, example: "{max_divergence_percent: 1, min_samples: 100}") {
            switch field.name {
            case "max_divergence_percent":
                let text = try scalarText(field, expecting: "a percentage from 0 to 100, such as 1 or 0.5")
                result.maxDivergenceBasisPoints = try located(field) { () throws(ConfigError) in
                    try ConfigValues.percentBasisPoints(text, key: field.path)
                }
            case "max_p99_latency_ratio":
                let text = try scalarText(field, expecting: "a ratio above 1 with up to two decimals, such as 1.5")
                // A ratio is read like a percentage without the cap: 1.5 → 150 hundredths.
                guard let value = Double(text), value >= 1, value <= 1000, (value * 100).rounded() == value * 100 else {
                    throw error(field.valueLine, field.path, "expected a ratio from 1 to 1000 with up to two decimals, such as 1.5, got \(text)")
                }
                result.maxP99LatencyRatioHundredths = Int((value * 100).rounded())
            case "min_samples":
                let text = try scalarText(field, expecting: "a whole number of samples, at least 1")
                result.minSamples = try located(field) { () throws(ConfigError) in
                    try ConfigValues.integer(text, key: field.path, in: 1...100_000_000, what: "a whole number from 1 to 100000000")
                }
            case "step_back_to":
                let text = try scalarText(field, expecting: "off, dual_write or shadow")
                let stage = try located(field) { () throws(ConfigError) in try FlagStage.parse(text, key: field.path) }
                guard stage < .canary else {
                    throw error(field.valueLine, field.path, "a guardrail steps back to a stage before canary (off, dual_write or shadow), got \(text)")
                }
                result.stepBackTo = stage
            default:
                throw unknownKey(field, known: Self.guardrailKeys)
            }
        }
        return result
    }
}
