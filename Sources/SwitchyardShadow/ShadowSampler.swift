// Decides which reads of a migrated relation are also answered on the other path, and which of those twice on the old.

/// One flag's sampling decisions. A pure value: the randomness is a seeded generator and the time is
/// passed in, so a test can replay every decision. Not thread-safe; callers on several threads share
/// it behind a lock or keep one each.
public struct ShadowSampler: Sendable {
    public struct Settings: Sendable, Equatable {
        /// The share of reads shadowed, in hundredths of a percent (0...10000; 5% is 500).
        public var samplePercentBasisPoints: Int
        /// Of those, the share also run a second time on the old path (noise calibration), 0...10000.
        public var calibrationPercentBasisPoints: Int
        /// At most this many samples of one fingerprint per second, so one hot query cannot take the
        /// whole side-connection pool; 0 means no cap.
        public var maxPerFingerprintPerSecond: Int

        public init(samplePercentBasisPoints: Int, calibrationPercentBasisPoints: Int, maxPerFingerprintPerSecond: Int) {
            self.samplePercentBasisPoints = samplePercentBasisPoints
            self.calibrationPercentBasisPoints = calibrationPercentBasisPoints
            self.maxPerFingerprintPerSecond = maxPerFingerprintPerSecond
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Not drawn for the sample.
        case skip
        /// Drawn, but its fingerprint already had its share of samples this second.
        case capped
        /// Shadow it; `calibrate`: also run the old path a second time.
        case sample(calibrate: Bool)
    }

    /// How many fingerprints one second's cap keeps count of; further fingerprints wait for the next second.
    public static let trackedFingerprints = 10_000

    public var settings: Settings
    private var generator: SplitMix64
    /// The whole second the counts are for, and the samples taken per fingerprint in it.
    private var second: Int64 = .min
    private var counts: [String: Int] = [:]

    public init(settings: Settings, seed: UInt64) {
        self.settings = settings
        generator = SplitMix64(seed: seed)
    }

    /// Decides for one read of fingerprint `fingerprint` at `now`, the time since any fixed origin (the cap
    /// counts per whole second of it; read only for a read the draw samples). Draws a number for every
    /// read, so the same seed and the same sequence of calls give the same decisions.
    public mutating func decide(fingerprint: String, now: @autoclosure () -> Duration) -> Decision {
        guard generator.draw(below: 10_000) < settings.samplePercentBasisPoints else { return .skip }
        let cap = settings.maxPerFingerprintPerSecond
        if cap > 0 {
            let current = now().components.seconds
            if current != second {
                second = current
                counts.removeAll(keepingCapacity: true)
            }
            if let i = counts.index(forKey: fingerprint) {
                guard counts.values[i] < cap else { return .capped }
                counts.values[i] += 1
            } else {
                guard counts.count < Self.trackedFingerprints else { return .capped }
                counts[fingerprint] = 1
            }
        }
        return .sample(calibrate: generator.draw(below: 10_000) < settings.calibrationPercentBasisPoints)
    }
}

/// Steele, Lea and Flood's SplitMix64: a tiny, fast, well-mixed generator whose whole state is one seed.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<bound, by multiplying into the upper half (Lemire), without the bias of `%`
    /// worth mentioning for small bounds.
    mutating func draw(below bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
