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

    /// Only canary and live are guarded: before them no client reads the new path, after them there is no old one.
    public static func guards(_ stage: FlagStage) -> Bool { stage == .canary || stage == .live }

    /// The breach, worded for the flag history, or nil. `divergent` of `judged` shadow reads
    /// (same or divergent) since the flag entered its stage.
    public static func breach(_ g: GuardrailConfig, divergent: UInt64, judged: UInt64, latency: [LatencyEvidence]) -> String? {
        let minimum = UInt64(max(g.minSamples, 1))
        if let limit = g.maxDivergenceBasisPoints, judged >= minimum, divergent * 10_000 > UInt64(limit) * judged {
            return "guardrail: \(divergent) of \(judged) shadow reads diverged (\(percent(divergent * 10_000 / judged))), "
                + "over max_divergence_percent \(percent(UInt64(limit)))"
        }
        if let limit = g.maxP99LatencyRatioHundredths {
            for e in latency.sorted(by: { $0.fingerprint < $1.fingerprint })
            where e.newRequests >= minimum && e.oldRequests >= minimum && e.oldP99Micros > 0
                && e.newP99Micros * 100 > UInt64(limit) * e.oldP99Micros {
                let ratio = Double(e.newP99Micros) / Double(e.oldP99Micros)
                return "guardrail: p99 of query \(e.fingerprint) is \(e.newP99Micros) µs on the new path, "
                    + "\(String(format: "%.2f", ratio))× the old path's \(e.oldP99Micros) µs, over max_p99_latency_ratio "
                    + String(format: "%.2f", Double(limit) / 100)
            }
        }
        return nil
    }

    private static func percent(_ basisPoints: UInt64) -> String {
        String(format: "%.2f%%", Double(basisPoints) / 100)
    }
}
