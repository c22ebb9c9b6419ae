// Aggregates shadow-read reports: identical divergences counted together, and per-query tallies for a divergence rate.

/// Identifies one aggregated divergence: the same kind of difference of the same query for the same cohort.
public struct DivergenceKey: Sendable, Hashable {
    public var flag: String
    public var cohort: String
    public var fingerprint: String
    public var kind: DivergenceKind

    public init(flag: String, cohort: String, fingerprint: String, kind: DivergenceKind) {
        self.flag = flag
        self.cohort = cohort
        self.fingerprint = fingerprint
        self.kind = kind
    }
}

/// Every report of one divergence, aggregated: how often and when, and the latest occurrence's details.
public struct DivergenceRecord: Sendable, Equatable {
    public var key: DivergenceKey
    public var count: UInt64
    /// Timestamps as the caller passed them (milliseconds since the Unix epoch in the server).
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var normalizedQuery: String
    /// The latest occurrence's parameters, as `$1 = 'value'` (or `$1 = <redacted>`).
    public var parameters: [String]
    public var oldRowCount: Int?
    public var newRowCount: Int?
    /// The latest occurrence's rows found on one side only, bounded in number and in value length.
    public var onlyInOld: [[String?]]
    public var onlyInNew: [[String?]]
    /// What differed, in words: the column mismatches, the new path's error, or the row counts.
    public var detail: String
    /// The new path's SQLSTATE, for kind error.
    public var sqlState: String?

    public var flag: String { key.flag }
    public var cohort: String { key.cohort }
    public var fingerprint: String { key.fingerprint }
    public var kind: DivergenceKind { key.kind }
}

/// Counts of sampled reads, for a divergence rate and the time each path took.
public struct ShadowTally: Sendable, Equatable {
    public var samples: UInt64 = 0
    public var same: UInt64 = 0
    public var divergent: UInt64 = 0
    public var nondeterministic: UInt64 = 0
    /// Samples with nothing to compare (the old path failed, a result too large, the connection lost).
    public var skipped: UInt64 = 0
    /// Total time on each path over the samples that measured it.
    public var oldTime: Duration = .zero
    public var newTime: Duration = .zero

    public init() {}

    /// Divergent samples among those that could be judged (same or divergent); nil before any.
    public var divergenceRate: Double? {
        let judged = same + divergent
        return judged == 0 ? nil : Double(divergent) / Double(judged)
    }

    mutating func add(_ other: ShadowTally) {
        samples += other.samples
        same += other.same
        divergent += other.divergent
        nondeterministic += other.nondeterministic
        skipped += other.skipped
        oldTime += other.oldTime
        newTime += other.newTime
    }
}

/// The tally of one query (fingerprint) under one flag.
public struct FingerprintStats: Sendable, Equatable {
    public var flag: String
    public var fingerprint: String
    public var normalizedQuery: String
    public var tally: ShadowTally
}

/// A flag's shadow reads in one minute, for divergences over time.
public struct TimelinePoint: Sendable, Equatable {
    /// Minutes since the Unix epoch (the caller's time divided by 60,000 ms).
    public var minute: Int64
    public var same: UInt64 = 0
    public var divergent: UInt64 = 0
    public var nondeterministic: UInt64 = 0

    public init(minute: Int64, same: UInt64 = 0, divergent: UInt64 = 0, nondeterministic: UInt64 = 0) {
        self.minute = minute
        self.same = same
        self.divergent = divergent
        self.nondeterministic = nondeterministic
    }
}

/// Aggregates reports into divergence records, per-fingerprint tallies and per-minute timelines, all bounded: past the
/// limits, new keys are counted together under ``DivergenceAggregator/other`` per flag (and kind), so a
/// flood of distinct queries or cohorts costs no memory. Pure: the caller passes the time.
public struct DivergenceAggregator: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Divergence records kept, not counting the per-flag overflow records.
        public var maxRecords: Int
        /// (flag, fingerprint) tallies kept, not counting the per-flag overflow tallies.
        public var maxFingerprints: Int
        /// Rows kept per side in a record.
        public var sampleRows: Int
        /// Values are cut at this many characters, rows at this many columns.
        public var maxValueLength: Int
        public var maxColumns: Int
        /// The normalized query and the detail text are cut at these lengths.
        public var maxQueryLength: Int
        public var maxDetailLength: Int
        /// Minutes of timeline kept per flag, the latest.
        public var timelineMinutes: Int = 1440

        public init(
            maxRecords: Int = 1000, maxFingerprints: Int = 10_000, sampleRows: Int = ResultComparison.defaultSampleLimit,
            maxValueLength: Int = 200, maxColumns: Int = 64, maxQueryLength: Int = 2000, maxDetailLength: Int = 1000
        ) {
            self.maxRecords = maxRecords
            self.maxFingerprints = maxFingerprints
            self.sampleRows = sampleRows
            self.maxValueLength = maxValueLength
            self.maxColumns = maxColumns
            self.maxQueryLength = maxQueryLength
            self.maxDetailLength = maxDetailLength
        }
    }

    /// The cohort and fingerprint of the overflow entries.
    public static let other = "(other)"
    /// The cohort of statements that had no cohort key.
    public static let noCohort = "(none)"

    public let limits: Limits
    private var records: [DivergenceKey: DivergenceRecord] = [:]
    /// How many of `records` are not overflow records, and how many overflow records keep their query.
    private var regularRecords = 0
    private var overflowRecords = 0
    private var stats: [FingerprintKey: FingerprintStats] = [:]
    private var regularStats = 0
    private var timelines: [String: [TimelinePoint]] = [:]

    struct FingerprintKey: Hashable {
        var flag: String
        var fingerprint: String
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Adds one report seen at `time`. Returns the key of the divergence record it counted into when it
    /// opened one (the first report of a divergence), for a log line; nil otherwise.
    @discardableResult
    public mutating func record(_ report: ShadowReport, at time: Int64) -> DivergenceKey? {
        tally(report)
        mark(report, minute: time / 60_000)
        guard case let .compared(.divergent(divergence)) = report.outcome else { return nil }
        var key = DivergenceKey(
            flag: report.flag, cohort: report.cohort ?? Self.noCohort, fingerprint: report.fingerprint, kind: divergence.kind)
        var opened = false
        if records[key] == nil {
            if regularRecords >= limits.maxRecords {
                // Past the limit a query keeps its own record for all further cohorts, so the report
                // still names it; past the limit again, everything new counts together.
                key.cohort = Self.other
                if records[key] == nil {
                    if overflowRecords >= limits.maxRecords {
                        key.fingerprint = Self.other
                    } else {
                        overflowRecords += 1
                    }
                }
            } else {
                regularRecords += 1
            }
            if records[key] == nil {
                opened = true
                records[key] = DivergenceRecord(
                    key: key, count: 0, firstSeen: time, lastSeen: time, normalizedQuery: "", parameters: [],
                    oldRowCount: nil, newRowCount: nil, onlyInOld: [], onlyInNew: [], detail: "", sqlState: nil)
            }
        }
        update(&records[key]!, with: report, divergence: divergence, at: time)
        return opened ? key : nil
    }

    /// Counts a judged report in its minute; reports arrive in time order, so the minute is the last or a new one.
    private mutating func mark(_ report: ShadowReport, minute: Int64) {
        guard case let .compared(verdict) = report.outcome else { return }
        // In place: a copy taken out of the dictionary would be copied again, whole, on the first change.
        timelines[report.flag, default: []].record(verdict, minute: minute, keeping: limits.timelineMinutes)
    }

    /// A flag's judged shadow reads per minute, oldest first.
    public func timeline(flag: String) -> [TimelinePoint] { timelines[flag] ?? [] }

    private mutating func tally(_ report: ShadowReport) {
        var key = FingerprintKey(flag: report.flag, fingerprint: report.fingerprint)
        if stats[key] == nil {
            if regularStats >= limits.maxFingerprints {
                key.fingerprint = Self.other
            } else {
                regularStats += 1
            }
        }
        stats[key, default: FingerprintStats(
            flag: key.flag, fingerprint: key.fingerprint,
            normalizedQuery: key.fingerprint == Self.other ? Self.other : truncated(report.normalizedQuery, to: limits.maxQueryLength),
            tally: ShadowTally())]
            .tally.count(report)
    }

    private func update(_ record: inout DivergenceRecord, with report: ShadowReport, divergence: Divergence, at time: Int64) {
        record.count += 1
        record.firstSeen = min(record.firstSeen, time)
        record.lastSeen = max(record.lastSeen, time)
        let overflow = record.key.fingerprint == Self.other
        record.normalizedQuery = overflow ? Self.other : truncated(report.normalizedQuery, to: limits.maxQueryLength)
        record.parameters = overflow ? [] : report.parameters
        record.oldRowCount = report.oldRowCount
        record.newRowCount = report.newRowCount
        record.onlyInOld = []
        record.onlyInNew = []
        record.sqlState = nil
        switch divergence {
        case let .columns(difference):
            record.detail = difference.description
        case let .rows(difference):
            record.onlyInOld = difference.onlyInOld.prefix(limits.sampleRows).map(bounded)
            record.onlyInNew = difference.onlyInNew.prefix(limits.sampleRows).map(bounded)
            if difference.orderOnly {
                record.detail = "the same rows in another order" + (difference.firstDifference.map { ", from row \($0 + 1)" } ?? "")
            } else {
                record.detail = "\(difference.onlyInOldCount) rows only on the old path, \(difference.onlyInNewCount) only on the new"
            }
        case let .error(error):
            record.detail = error.description
            record.sqlState = error.sqlState
        }
        record.detail = truncated(record.detail, to: limits.maxDetailLength)
    }

    /// A sample row cut to the limits.
    private func bounded(_ row: [String?]) -> [String?] {
        row.prefix(limits.maxColumns).map { $0.map { truncated($0, to: limits.maxValueLength) } }
    }

    /// The divergence records, most frequent first.
    public var divergences: [DivergenceRecord] {
        records.values.sorted { a, b in
            if a.count != b.count { return a.count > b.count }
            return (a.flag, a.fingerprint, a.cohort, a.kind.rawValue) < (b.flag, b.fingerprint, b.cohort, b.kind.rawValue)
        }
    }

    /// The per-fingerprint tallies, most sampled first.
    public var fingerprints: [FingerprintStats] {
        stats.values.sorted { a, b in
            if a.tally.samples != b.tally.samples { return a.tally.samples > b.tally.samples }
            return (a.flag, a.fingerprint) < (b.flag, b.fingerprint)
        }
    }

    /// One flag's tally over all its fingerprints: its divergence rate.
    public func totals(flag: String) -> ShadowTally {
        var total = ShadowTally()
        for s in stats.values where s.flag == flag { total.add(s.tally) }
        return total
    }

    /// One fingerprint's tally under a flag, if it was sampled (and not counted under the overflow entry).
    public func tally(flag: String, fingerprint: String) -> ShadowTally? {
        stats[FingerprintKey(flag: flag, fingerprint: fingerprint)]?.tally
    }

    /// Forgets everything, for a reset from the console.
    public mutating func removeAll() {
        records.removeAll()
        stats.removeAll()
        timelines.removeAll()
        regularRecords = 0
        overflowRecords = 0
        regularStats = 0
    }
}

extension ShadowTally {
    mutating func count(_ report: ShadowReport) {
        samples += 1
        switch report.outcome {
        case .compared(.same): same += 1
        case .compared(.divergent): divergent += 1
        case .compared(.nondeterministic): nondeterministic += 1
        case .skipped: skipped += 1
        }
        if let d = report.oldDuration { oldTime += d }
        if let d = report.newDuration { newTime += d }
    }
}

extension Array where Element == TimelinePoint {
    /// Counts `verdict` in its minute (the last point or a new one: reports arrive in time order) and
    /// keeps the last `minutes` points.
    fileprivate mutating func record(_ verdict: ShadowVerdict, minute: Int64, keeping minutes: Int) {
        if last.map({ $0.minute < minute }) ?? true { append(TimelinePoint(minute: minute)) }
        let i = lastIndex { $0.minute <= minute } ?? count - 1
        switch verdict {
        case .same: self[i].same += 1
        case .divergent: self[i].divergent += 1
        case .nondeterministic: self[i].nondeterministic += 1
        }
        if count > minutes { removeFirst(count - minutes) }
    }
}
