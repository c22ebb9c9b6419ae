// Each flag's shadow sampler, shared by the event loops: which reads go to the shadow-read pool.
import Synchronization
import SwitchyardConfig
import SwitchyardShadow

extension ShadowSampler.Settings {
    /// A flag's `shadow:` section.
    public init(_ config: FlagShadowConfig) {
        self.init(
            samplePercentBasisPoints: config.samplePercentBasisPoints,
            calibrationPercentBasisPoints: config.calibrationPercentBasisPoints,
            maxPerFingerprintPerSecond: config.maxPerFingerprintPerSecond)
    }
}

/// The samplers of every configured flag behind one lock, with the monotonic clock their caps count in.
/// Deciding costs one random draw, and for drawn reads one dictionary update.
public final class ShadowSamplers: Sendable {
    private let samplers = Mutex<[String: ShadowSampler]>([:])
    private let origin = ContinuousClock.now
    private let cappedCount = Atomic<UInt64>(0)

    /// Reads drawn for a sample but not shadowed because their query had its samples for the second
    /// (max_per_fingerprint_per_second): with the pool's drops, why fewer reads were compared than drawn.
    public var capped: UInt64 { cappedCount.load(ordering: .relaxed) }
    private let seed: UInt64

    /// `seed` fixes the draws (tests); by default every process draws differently.
    public init(flags: [FlagConfig] = [], seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        self.seed = seed
        configure(flags)
    }

    /// Applies a configuration (at start and on reload). A flag whose settings did not change keeps its
    /// sampler, and so its counts for the current second.
    public func configure(_ flags: [FlagConfig]) {
        samplers.withLock { all in
            var next: [String: ShadowSampler] = [:]
            for (i, flag) in flags.enumerated() {
                let settings = ShadowSampler.Settings(flag.shadow)
                if var existing = all[flag.name] {
                    existing.settings = settings
                    next[flag.name] = existing
                } else {
                    next[flag.name] = ShadowSampler(settings: settings, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
                }
            }
            all = next
        }
    }

    /// Whether to shadow one read of `fingerprint` under `flag` (`.skip` for a flag not configured).
    public func decide(flag: String, fingerprint: String) -> ShadowSampler.Decision {
        // The clock is read for a sampled read only: most are not, and this runs for every read.
        samplers.withLock { all in
            guard let i = all.index(forKey: flag) else { return .skip }
            let decision = all.values[i].decide(fingerprint: fingerprint, now: ContinuousClock.now - origin)
            if decision == .capped { cappedCount.add(1, ordering: .relaxed) }
            return decision
        }
    }
}
