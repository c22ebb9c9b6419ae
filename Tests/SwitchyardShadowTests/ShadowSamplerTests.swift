// The sampler: a seeded, replayable share of reads, calibration among them, and a per-fingerprint cap per second.

import Testing
import SwitchyardShadow

@Suite("Shadow sampler")
struct ShadowSamplerTests {
    static func settings(_ sample: Int, _ calibration: Int = 0, cap: Int = 0) -> ShadowSampler.Settings {
        .init(samplePercentBasisPoints: sample, calibrationPercentBasisPoints: calibration, maxPerFingerprintPerSecond: cap)
    }

    /// Decisions for `count` reads of distinct fingerprints spread over time so no cap bites.
    static func decisions(_ sampler: inout ShadowSampler, count: Int) -> [ShadowSampler.Decision] {
        (0..<count).map { sampler.decide(fingerprint: "f\($0 % 1000)", now: .milliseconds($0)) }
    }

    @Test("the same seed gives the same decisions; another seed others")
    func deterministic() {
        var a = ShadowSampler(settings: Self.settings(500, 5000), seed: 42)
        var b = ShadowSampler(settings: Self.settings(500, 5000), seed: 42)
        var c = ShadowSampler(settings: Self.settings(500, 5000), seed: 43)
        let first = Self.decisions(&a, count: 5000)
        #expect(first == Self.decisions(&b, count: 5000))
        #expect(first != Self.decisions(&c, count: 5000))
    }

    @Test("the sample and calibration shares come out as configured, to two decimals", arguments: [0, 1, 500, 1250, 10_000])
    func rates(basisPoints: Int) {
        var sampler = ShadowSampler(settings: Self.settings(basisPoints, 1000), seed: 7)
        let n = 200_000
        let decisions = Self.decisions(&sampler, count: n)
        let sampled = decisions.filter { $0 != .skip }.count
        let calibrated = decisions.filter { $0 == .sample(calibrate: true) }.count
        let expected = Double(n) * Double(basisPoints) / 10_000
        // Within 5 standard deviations of the binomial: never flaky, still tight.
        let sd = (expected * (1 - Double(basisPoints) / 10_000)).squareRoot()
        #expect(abs(Double(sampled) - expected) <= 5 * sd + 1, "\(sampled) sampled, \(expected) expected")
        if basisPoints == 0 { #expect(sampled == 0) }
        if basisPoints == 10_000 { #expect(sampled == n) }
        if sampled > 1000 {
            let share = Double(calibrated) / Double(sampled)
            #expect(abs(share - 0.1) < 0.02, "calibration share \(share)")
        }
    }

    @Test("at most the cap per fingerprint in one second; the next second starts again; other fingerprints unaffected")
    func cap() {
        var sampler = ShadowSampler(settings: Self.settings(10_000, 0, cap: 3), seed: 1)
        let hot = (0..<10).map { i in sampler.decide(fingerprint: "hot", now: .milliseconds(100 + i)) }
        #expect(hot.filter { $0 == .sample(calibrate: false) }.count == 3)
        #expect(hot.filter { $0 == .capped }.count == 7)
        let cold = sampler.decide(fingerprint: "cold", now: .milliseconds(200))
        let hotLate = sampler.decide(fingerprint: "hot", now: .milliseconds(999))
        let hotNext = sampler.decide(fingerprint: "hot", now: .milliseconds(1000))
        #expect(cold == .sample(calibrate: false))
        #expect(hotLate == .capped)
        #expect(hotNext == .sample(calibrate: false))
    }

    @Test("cap 0 means no cap; unsampled reads never use the cap")
    func noCap() {
        var sampler = ShadowSampler(settings: Self.settings(10_000, 0, cap: 0), seed: 1)
        let all = (0..<1000).map { _ in sampler.decide(fingerprint: "hot", now: .zero) }
        #expect(all.allSatisfy { $0 == .sample(calibrate: false) })
        var none = ShadowSampler(settings: Self.settings(0, 0, cap: 1), seed: 1)
        let nothing = (0..<1000).map { _ in none.decide(fingerprint: "hot", now: .zero) }
        #expect(nothing.allSatisfy { $0 == .skip })
    }

    @Test("the per-second table is bounded: past it new fingerprints are capped until the next second")
    func boundedTable() {
        var sampler = ShadowSampler(settings: Self.settings(10_000, 0, cap: 1), seed: 1)
        let tracked = (0..<ShadowSampler.trackedFingerprints).map { sampler.decide(fingerprint: "f\($0)", now: .zero) }
        #expect(tracked.allSatisfy { $0 == .sample(calibrate: false) })
        let beyond = sampler.decide(fingerprint: "one more", now: .zero)
        let nextSecond = sampler.decide(fingerprint: "one more", now: .seconds(1))
        #expect(beyond == .capped)
        #expect(nextSecond == .sample(calibrate: false))
    }
}
