// The shadow-read settings' model: each flag's sampling (`flags[].shadow`) and the side connections (`shadow_reads`).

/// `flags[].shadow`: from stage `shadow` on, which reads of the migrated relation are also answered on
/// the other path and compared.
public struct FlagShadowConfig: Sendable, Equatable {
    public static let defaultSamplePercentBasisPoints = 100
    public static let defaultCalibrationPercentBasisPoints = 1000
    public static let defaultMaxPerFingerprintPerSecond = 50
    public static let maxPerFingerprintPerSecondRange = 0...1_000_000

    /// The flag's shadow_sample: the share of reads on a migrated relation answered on both paths, in
    /// hundredths of a percent (0...10000; `shadow_sample: 0.10` is 1000). Default 1%.
    public var samplePercentBasisPoints: Int
    /// calibration_percent: of those, the share also run twice on the old path, to find queries that do not
    /// agree with themselves. Default 10%.
    public var calibrationPercentBasisPoints: Int
    /// redact_parameters: record parameters as `$n = <redacted>`. Default false.
    public var redactParameters: Bool
    /// max_per_fingerprint_per_second: at most this many samples of one query per second; 0 means no cap.
    /// Default 50.
    public var maxPerFingerprintPerSecond: Int

    public init(
        samplePercentBasisPoints: Int = FlagShadowConfig.defaultSamplePercentBasisPoints,
        calibrationPercentBasisPoints: Int = FlagShadowConfig.defaultCalibrationPercentBasisPoints,
        redactParameters: Bool = false,
        maxPerFingerprintPerSecond: Int = FlagShadowConfig.defaultMaxPerFingerprintPerSecond
    ) {
        self.samplePercentBasisPoints = samplePercentBasisPoints
        self.calibrationPercentBasisPoints = calibrationPercentBasisPoints
        self.redactParameters = redactParameters
        self.maxPerFingerprintPerSecond = maxPerFingerprintPerSecond
    }

    /// The keys not at their defaults, as the summary shows them ("shadow_sample: 0.05").
    public var nonDefaultSettings: [(key: String, value: String)] {
        let defaults = FlagShadowConfig()
        var out: [(key: String, value: String)] = []
        if samplePercentBasisPoints != defaults.samplePercentBasisPoints {
            out.append(("shadow_sample", GuardrailConfig.describe(ppm: samplePercentBasisPoints * 100)))
        }
        if calibrationPercentBasisPoints != defaults.calibrationPercentBasisPoints {
            out.append(("calibration_percent", ConfigValues.describe(basisPoints: calibrationPercentBasisPoints)))
        }
        if redactParameters != defaults.redactParameters { out.append(("redact_parameters", String(redactParameters))) }
        if maxPerFingerprintPerSecond != defaults.maxPerFingerprintPerSecond {
            out.append(("max_per_fingerprint_per_second", String(maxPerFingerprintPerSecond)))
        }
        return out
    }
}

/// `shadow_reads`: the pool of side connections that answer sampled reads on both paths, off the
/// clients' critical path.
public struct ShadowReadsConfig: Sendable, Equatable {
    public static let connectionsRange = 1...64
    public static let queueRange = 1...100_000
    /// statement_timeout is whole milliseconds on the server.
    public static let statementTimeoutRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(3600)

    /// connections: side connections to the upstream, each on a thread of its own. Default 2.
    public var connections: Int
    /// queue: sampled reads waiting for a side connection; when it is full further samples are dropped
    /// and counted, never queued. Default 100.
    public var queue: Int
    /// statement_timeout: the side connections' statement_timeout, so a slow shadow query cannot pile up.
    /// Default 5s.
    public var statementTimeout: Duration

    public init(connections: Int = 2, queue: Int = 100, statementTimeout: Duration = .seconds(5)) {
        self.connections = connections
        self.queue = queue
        self.statementTimeout = statementTimeout
    }
}
