// Whether a flag's evidence breaks its guardrails: the decision, without the I/O that gathers or acts on it.
import Foundation
import SwitchyardConfig

/// The evidence a guardrail weighs, and the verdict. Pure: the control thread gathers the counts
/// (shadow reads, latency per path) and moves the flag when a breach is found.
public enum Guardrails {
    /// p99 latency of one query on each path, and how many requests each figure rests on.
    public struct LatencyEvidence: Sendable, Equatable {
        public var fingerprint: String
        public var newP99Micros: UInt64
        public var newRequests: UInt64
        public var oldP99Micros: UInt64
        public var oldRequests: UInt64

        public init(fingerprint: String, newP99Micros: UInt64, newRequests: UInt64, oldP99Micros: UInt64, oldRequests: UInt64) {
            self.fingerprint = fingerprint
            self.newP99Micros = newP99Micros
            self.newRequests = newRequests
            self.oldP99Micros = oldP99Micros
            self.oldRequests = oldRequests
        }
    }

    /// Failed requests against all requests, on the new path (any cohort) and on the control cohort's old path.
    public struct ErrorEvidence: Sendable, Equatable {
        public var newErrors: UInt64
        public var newRequests: UInt64
        public var oldErrors: UInt64
        public var oldRequests: UInt64

        public init(newErrors: UInt64 = 0, newRequests: UInt64 = 0, oldErrors: UInt64 = 0, oldRequests: UInt64 = 0) {
            self.newErrors = newErrors
            self.newRequests = newRequests
            self.oldErrors = oldErrors
            self.oldRequests = oldRequests
        }

        /// The new path's error rate minus the old path's, in parts per million; nil while either path has no request.
        public var increasePPM: Int64? {
            guard newRequests > 0, oldRequests > 0 else { return nil }
            let new = Double(newErrors) / Double(newRequests), old = Double(oldErrors) / Double(oldRequests)
            return Int64(((new - old) * 1_000_000).rounded())
        }

        /// "3 of 400 requests failed on the new path (0.75%), 0 of 900 on the old (0.00%)".
        public var description: String {
            "\(newErrors) of \(newRequests) requests failed on the new path (\(Guardrails.share(newErrors, newRequests))), "
                + "\(oldErrors) of \(oldRequests) on the old (\(Guardrails.share(oldErrors, oldRequests)))"
        }
    }

    /// Only canary and live are guarded: before them no client reads the new path, after them there is no old one.
    public static func guards(_ stage: FlagStage) -> Bool { stage == .canary || stage == .live }

    /// The breach, worded for the flag history, or nil. `divergent` of `judged` shadow reads
    /// (same or divergent) and `errors` since the flag entered its stage.
    public static func breach(_ g: GuardrailConfig, divergent: UInt64, judged: UInt64, latency: [LatencyEvidence],
                              errors: ErrorEvidence? = nil) -> String? {
        let minimum = UInt64(max(g.minSamples, 1))
        if let limit = g.maxDivergencePPM, judged >= minimum, divergent * 1_000_000 > UInt64(limit) * judged {
            return "guardrail: \(divergent) of \(judged) shadow reads diverged (\(share(divergent, judged))), "
                + "over max_divergence_rate \(GuardrailConfig.describe(ppm: limit))"
        }
        if let limit = g.maxErrorRateIncreasePPM, let e = errors, e.newRequests >= minimum, e.oldRequests >= minimum,
           let increase = e.increasePPM, increase > Int64(limit) {
            return "guardrail: \(e.description), an increase over max_error_rate_increase \(GuardrailConfig.describe(ppm: limit))"
        }
        if let limit = g.maxP99RatioHundredths {
            for e in latency.sorted(by: { $0.fingerprint < $1.fingerprint })
            where e.newRequests >= minimum && e.oldRequests >= minimum && e.oldP99Micros > 0
                && e.newP99Micros * 100 > UInt64(limit) * e.oldP99Micros {
                let ratio = Double(e.newP99Micros) / Double(e.oldP99Micros)
                return "guardrail: p99 of query \(e.fingerprint) is \(e.newP99Micros) µs on the new path, "
                    + "\(String(format: "%.2f", ratio))× the old path's \(e.oldP99Micros) µs, over max_p99_ratio "
                    + String(format: "%.2f", Double(limit) / 100)
            }
        }
        return nil
    }

    /// `part` of `whole` as a percentage with two decimals.
    public static func share(_ part: UInt64, _ whole: UInt64) -> String {
        whole == 0 ? "0.00%" : String(format: "%.2f%%", Double(part) * 100 / Double(whole))
    }
}
