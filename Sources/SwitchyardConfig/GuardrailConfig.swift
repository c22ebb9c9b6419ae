// The guardrails of a flag: when the evidence breaks a threshold during canary or live, the flag steps back.

/// `guardrails:` under a flag. Each threshold is off unless set; `min_samples` keeps a decision
/// from resting on a handful of reads.
public struct GuardrailConfig: Sendable, Equatable {
    /// max_divergence_rate: most divergent shadow reads per judged one (0.001 is one in a thousand),
    /// in parts per million.
    public var maxDivergencePPM: Int?
    /// max_p99_ratio: the new path's p99 over the old path's, per fingerprint, in hundredths.
    public var maxP99RatioHundredths: Int?
    /// max_error_rate_increase: how much higher the share of failed requests on the new path may be
    /// than on the control cohort's old path (0.01 is one point), in parts per million.
    public var maxErrorRateIncreasePPM: Int?
    /// min_samples: compared shadow reads (or requests on each path, for latency and errors) before a
    /// guardrail may act or the report may judge.
    public var minSamples: Int
    /// step_back_to: the stage a breach moves the flag back to.
    public var stepBackTo: FlagStage

    public static let defaultMinSamples = 200

    public init(maxDivergencePPM: Int? = nil, maxP99RatioHundredths: Int? = nil, maxErrorRateIncreasePPM: Int? = nil,
                minSamples: Int = GuardrailConfig.defaultMinSamples, stepBackTo: FlagStage = .shadow) {
        self.maxDivergencePPM = maxDivergencePPM
        self.maxP99RatioHundredths = maxP99RatioHundredths
        self.maxErrorRateIncreasePPM = maxErrorRateIncreasePPM
        self.minSamples = minSamples
        self.stepBackTo = stepBackTo
    }

    public var isEnabled: Bool { maxDivergencePPM != nil || maxP99RatioHundredths != nil || maxErrorRateIncreasePPM != nil }

    /// A rate in parts per million as the config writes it: 1000 → "0.001".
    public static func describe(ppm: Int) -> String {
        var text = String(Double(ppm) / 1_000_000)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
}

import Yams

extension DocumentReader {
    static let guardrailKeys = ["max_divergence_rate", "max_p99_ratio", "max_error_rate_increase", "min_samples", "step_back_to"]

    func guardrails(_ entry: Entry) throws(ConfigError) -> GuardrailConfig {
        var result = GuardrailConfig()
        for field in try nestedEntries(entry, keys: Self.guardrailKeys, example: "{max_divergence_rate: 0.001, min_samples: 200}") {
            switch field.name {
            case "max_divergence_rate":
                result.maxDivergencePPM = try rate(field, example: "0.001 for one in a thousand")
            case "max_error_rate_increase":
                result.maxErrorRateIncreasePPM = try rate(field, example: "0.01 for one point")
            case "max_p99_ratio":
                let text = try scalarText(field, expecting: "a ratio above 1 with up to two decimals, such as 1.5")
                // A ratio is read like a percentage without the cap: 1.5 → 150 hundredths.
                guard let value = Double(text), value >= 1, value <= 1000, (value * 100).rounded() == value * 100 else {
                    throw error(field.valueLine, field.path, "expected a ratio from 1 to 1000 with up to two decimals, such as 1.5, got \(text)")
                }
                result.maxP99RatioHundredths = Int((value * 100).rounded())
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

    /// A rate from 0 to 1 with up to `decimals` decimals (0.001), in parts per million.
    func rate(_ field: Entry, example: String, decimals: Int = 6) throws(ConfigError) -> Int {
        let text = try scalarText(field, expecting: "a rate from 0 to 1, such as \(example)")
        let scale = (0..<decimals).reduce(1.0) { product, _ in product * 10 }
        guard let value = Double(text), value >= 0, value <= 1, (value * scale).rounded() == value * scale else {
            throw error(field.valueLine, field.path,
                        "expected a rate from 0 to 1 with up to \(decimals == 6 ? "six" : "four") decimals, such as \(example), got \(text)")
        }
        return Int((value * 1_000_000).rounded())
    }
}
