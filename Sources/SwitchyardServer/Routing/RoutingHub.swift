// The flag table every session routes by, the shared query cache, and routing counters.
import Foundation
import Histogram
import Synchronization
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardShadow

/// Errors from changing a flag at run time.
public enum FlagChangeError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownFlag(String, known: [String])
    case invalidPercent(String)

    public var description: String {
        switch self {
        case let .unknownFlag(name, known):
            "unknown flag \"\(name)\"" + (known.isEmpty ? "; no flags are configured" : "; known flags: \(known.joined(separator: ", "))")
        case let .invalidPercent(text): "invalid percent \"\(text)\": use 0 to 100 with at most two decimals"
        }
    }
}

/// The timings of one latency series, and how many of its requests failed.
public struct LatencySeries: Sendable {
    public var histogram: Histogram<UInt64>
    public var errors: UInt64 = 0

    public init(histogram: Histogram<UInt64> = RoutingHub.emptyLatencyHistogram(), errors: UInt64 = 0) {
        self.histogram = histogram
        self.errors = errors
    }

    public var requests: UInt64 { histogram.totalCount }

    mutating func record(_ micros: UInt64, failed: Bool) {
        _ = histogram.record(micros)
        if failed { errors += 1 }
    }

    mutating func add(_ other: LatencySeries) {
        histogram.add(other.histogram)
        errors += other.errors
    }
}

extension Histogram<UInt64> {
    /// The values recorded since `base` was a copy of this histogram (all of them when there is none).
    func since(_ base: Histogram<UInt64>?) -> Histogram<UInt64> {
        guard let base, base.totalCount > 0 else { return self }
        var out = RoutingHub.emptyLatencyHistogram()
        for v in recordedValues() {
            let before = base.countForValue(v.value)
            if v.count > before { _ = out.record(v.value, count: v.count - before) }
        }
        return out
    }
}

/// Holds the routing table in force. Sessions read it at transaction boundaries;
/// the console, a reload or (later) the control schema replace it.
public final class RoutingHub: Sendable {
    private let table = Mutex(RoutingTable())
    /// The table's version, readable without the lock: sessions copy the table only when it moved.
    private let version = Atomic<UInt64>(0)
    /// One cache and one set of counters per event loop, so the loops never wait on each other's locks.
    private let shards: [Shard]

    final class Shard: Sendable {
        let cache = QueryInfoCache()
        let routed = Mutex<[String: UInt64]>([:])
        /// Per flag (a handful, found by comparing names), the cohorts seen, and the keys past
        /// ``RoutingHub/cohortsKept`` counted together.
        let cohorts = Mutex<[(flag: String, seen: [String: CohortSeen], other: CohortSeen?)]>([])
        let latency = Mutex(LatencyShard())
    }

    /// A loop's latency series, and where the last few labels it recorded are. A session records
    /// the same few labels request after request, with their strings shared: comparing them is
    /// cheaper than hashing them. An insertion moves the dictionary's indices, and forgets them.
    struct LatencyShard {
        var series: [LatencyLabel: LatencySeries] = [:]
        var recent: [(label: LatencyLabel, index: Dictionary<LatencyLabel, LatencySeries>.Index)] = []
        static let recentKept = 4

        mutating func record(_ label: LatencyLabel, micros: UInt64, failed: Bool) {
            for r in recent where r.label == label {
                series.values[r.index].record(micros, failed: failed)
                return
            }
            if let i = series.index(forKey: label) {
                if recent.count == Self.recentKept { recent.removeFirst() }
                recent.append((label, i))
                series.values[i].record(micros, failed: failed)
                return
            }
            let key = series.count >= RoutingHub.latencySeriesKept ? label.with(fingerprint: "other") : label
            let before = series.count
            series[key, default: LatencySeries()].record(micros, failed: failed)
            if series.count != before { recent.removeAll(keepingCapacity: true) }
        }
    }

    /// Distinct (flag, cohort, path, fingerprint) latency series kept per loop; later fingerprints
    /// are counted under "other", so a flood of distinct statements costs no memory.
    static let latencySeriesKept = 200

    public static func emptyLatencyHistogram() -> Histogram<UInt64> {
        // Microseconds, 1 µs to 1 minute, 2 significant digits: small enough to keep one per series.
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)
    }

    /// The latency of one client request served for a read of a migrated relation (or of one path of a
    /// shadow read), and whether it failed.
    func recordLatency(loop: Int, label: LatencyLabel, nanoseconds: UInt64, failed: Bool = false) {
        let micros = min(max(nanoseconds / 1000, 1), 60_000_000)
        shards[loop % shards.count].latency.withLock { $0.record(label, micros: micros, failed: failed) }
    }

    /// A shadow read's time on each path, side by side on one side connection, under source `shadow`
    /// and cohort `sampled`; the new path failing counts as its error.
    func recordShadowTimings(_ report: ShadowReport) {
        var newFailed = false
        if case .compared(.divergent(.error)) = report.outcome { newFailed = true }
        for (path, duration, failed) in [(ReadPath.old, report.oldDuration, false), (.new, report.newDuration, newFailed)] {
            guard let duration else { continue }
            let label = LatencyLabel(flag: report.flag, cohort: "sampled", path: path, fingerprint: report.fingerprint, source: .shadow)
            let nanoseconds = UInt64(max(0, duration.components.seconds)) * 1_000_000_000 + UInt64(max(0, duration.components.attoseconds / 1_000_000_000))
            recordLatency(loop: 0, label: label, nanoseconds: nanoseconds, failed: failed)
        }
    }

    /// Latency per flag, cohort and path (fingerprints summed), as cumulative counts at `boundsMicros`.
    func latencyBuckets(boundsMicros: [UInt64]) -> [(flag: String, cohort: String, path: String, cumulativeCounts: [UInt64], total: UInt64)] {
        var merged: [[String]: Histogram<UInt64>] = [:]
        for (label, series) in latencySeries where label.source == .served {
            merged[[label.flag, label.cohort, label.path.rawValue], default: Self.emptyLatencyHistogram()].add(series.histogram)
        }
        return merged.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { key in
            let h = merged[key]!
            return (key[0], key[1], key[2], boundsMicros.map { h.count(within: 0...$0) }, h.totalCount)
        }
    }

    /// Every loop's latency series merged.
    public var latencySeries: [LatencyLabel: LatencySeries] {
        var merged: [LatencyLabel: LatencySeries] = [:]
        for shard in shards {
            shard.latency.withLock { all in
                for (label, series) in all.series { merged[label, default: LatencySeries()].add(series) }
            }
        }
        return merged
    }

    /// The query cache of the loop with this index.
    public func cache(loop: Int) -> QueryInfoCache { shards[loop % shards.count].cache }
    private let fallbacks = Mutex<[String: Fallback]>([:])
    /// Write divergences not yet added to the control schema, and the shared list as last read.
    private let pendingDivergences = Mutex<[String: WriteDivergence]>([:])
    private let sharedDivergences = Mutex<[WriteDivergence]>([])
    /// The last state read from the control schema, by flag name (it wins over the config), and
    /// the ticket of the read that gave it.
    private let stored = Mutex<(flags: [String: StoredFlag], ticket: UInt64)>(([:], 0))
    /// Reads of the stored state begun (see ``applyStored(_:)``).
    private let loadsBegun = Atomic<UInt64>(0)
    /// Held through a rebuild of the table (see ``rebuild()``).
    private let rebuilding = Mutex<Void>(())
    private let configuration = Mutex<(flags: [FlagConfig], migrations: [String: MigrationConfig])>(([], [:]))
    /// What the catalog says per migration (old column types, read form), read by the control thread.
    private let catalogs = Mutex<[String: RouteCatalog]>([:])
    /// The settings roles and databases give their sessions, as the control thread last read them.
    private let roleSettingRows = Mutex(RoleSettings())
    private let oldNameSchemas = Mutex(Set<String>())
    /// Whether any flag is configured: only then do sessions look at query text.
    public let hasFlags = Atomic<Bool>(false)

    public struct Fallback: Sendable, Equatable {
        public var fingerprint: String
        public var reason: String
        public var query: String
        public var count: UInt64
    }

    /// The prefix of the marker row mirrored writes answer with: random per process, so no
    /// application value is mistaken for it by chance.
    let mirrorMarker: String
    /// The comment that ends a mirrored UPDATE in the tag form, with this process's marker.
    let updateTagComment: String

    static let cohortsKept = 1000
    static let otherCohorts = "(other keys)"

    public struct CohortSeen: Sendable, Equatable {
        public var flag: String
        public var key: String
        public var bucket: Int
        public var path: ReadPath
        public var transactions: UInt64
    }

    public init(loops: Int = 1) {
        shards = (0..<max(1, loops)).map { _ in Shard() }
        mirrorMarker = "switchyard_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        updateTagComment = WriteMirror.updateTagComment(marker: mirrorMarker)
    }

    /// Cohorts seen per flag, bounded: past `cohortsKept` keys a flag's new keys are counted
    /// together, so a flood of distinct keys costs no memory.
    func recordCohort(loop: Int, flag: String, key: String?, bucket: Int?, path: ReadPath) {
        shards[loop % shards.count].cohorts.withLock { all in
            // The flag found by name, then one lookup of the key: this runs for every routed statement.
            let shown = key ?? "(no cohort key)"
            func count(in cohorts: inout (flag: String, seen: [String: CohortSeen], other: CohortSeen?)) {
                if let i = cohorts.seen.index(forKey: shown) {
                    cohorts.seen.values[i].transactions += 1
                } else if cohorts.seen.count >= Self.cohortsKept {
                    if cohorts.other == nil { cohorts.other = CohortSeen(flag: flag, key: Self.otherCohorts, bucket: -1, path: path, transactions: 0) }
                    cohorts.other!.transactions += 1
                } else {
                    cohorts.seen[shown] = CohortSeen(flag: flag, key: shown, bucket: bucket ?? -1, path: path, transactions: 1)
                }
            }
            if let i = all.firstIndex(where: { $0.flag == flag }) {
                count(in: &all[i])
            } else {
                var cohorts: (flag: String, seen: [String: CohortSeen], other: CohortSeen?) = (flag, [:], nil)
                count(in: &cohorts)
                all.append(cohorts)
            }
        }
    }

    /// Per flag, the busiest cohorts first, summed over the loops.
    public var cohortList: [CohortSeen] {
        var merged: [String: [String: CohortSeen]] = [:]
        for shard in shards {
            shard.cohorts.withLock { all in
                for (flag, seen, other) in all {
                    for (key, c) in seen.merging(other.map { [Self.otherCohorts: $0] } ?? [:], uniquingKeysWith: { kept, more in
                        var sum = kept
                        sum.transactions += more.transactions
                        return sum
                    }) {
                        if var existing = merged[flag]?[key] {
                            existing.transactions += c.transactions
                            merged[flag]![key] = existing
                        } else {
                            merged[flag, default: [:]][key] = c
                        }
                    }
                }
            }
        }
        return merged.keys.sorted().flatMap { flag in
            (merged[flag] ?? [:]).values.sorted { ($0.transactions, $1.key) > ($1.transactions, $0.key) }
        }
    }

    /// The current table's version, without taking the lock.
    public var currentVersion: UInt64 { version.load(ordering: .acquiring) }

    public var current: RoutingTable { table.withLock { $0 } }

    /// Rebuilds the table from a configuration (at start and on reload).
    public func load(_ config: SwitchyardConfiguration) {
        let migrations = Dictionary(uniqueKeysWithValues: config.migrations.map { ($0.name, $0) })
        configuration.withLock { $0 = (config.flags, migrations) }
        hasFlags.store(!config.flags.isEmpty, ordering: .releasing)
        rebuild()
    }

    /// Applies what the catalog says about each migration, by name: the old relations' column
    /// types, so routed reads cast back to them, and whether reads may name the new relation directly.
    func applyCatalog(_ catalog: [String: RouteCatalog]) {
        catalogs.withLock { $0 = catalog }
        rebuild()
    }

    func applyRoleSettings(_ settings: RoleSettings) {
        roleSettingRows.withLock { $0 = settings }
    }

    /// The schemas of the upstream's database that hold a relation with an old relation's name.
    func applyOldNameSchemas(_ schemas: Set<String>) {
        oldNameSchemas.withLock { $0 = schemas }
    }

    /// The schema a session of `role` finds first through `$user`: the role's own, when it holds
    /// a relation with an old relation's name (else `$user` finds nothing routing needs to know).
    func userSchema(role: String) -> String? {
        oldNameSchemas.withLock { $0.contains(role) } ? role : nil
    }

    /// What a session of `role` in `database` starts with (``RoleSettings/settings(role:database:)``).
    func roleSettings(role: String, database: String) -> [String: String] {
        roleSettingRows.withLock { $0.settings(role: role, database: database) }
    }

    /// Reads the stored flag state with `load` and lays it over the configured flags, unless a
    /// read that began later has been applied in the meantime. The control thread and the admin
    /// console read on connections of their own: a read the control thread began before a SET
    /// FLAG was written, and finished after the console applied its own read, would otherwise put
    /// the flag back where it was until the next read.
    func applyStored<E: Error>(_ load: () throws(E) -> [StoredFlag]) throws(E) {
        let ticket = loadsBegun.add(1, ordering: .relaxed).newValue
        let flags = try load()
        let current = stored.withLock { s -> Bool in
            guard ticket > s.ticket else { return false }
            s = (Dictionary(flags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }), ticket)
            return true
        }
        if current { rebuild() }
    }

    /// Per flag, why it is where it is (the latest flip's author and reason), from the control schema.
    public var lastChanges: [String: String] { stored.withLock { $0.flags.mapValues(\.lastChange) } }

    /// Configured flags with the stored stage and percent laid over them. One rebuild at a time:
    /// one that read the stored state before another thread stored a newer one must not publish
    /// its table after that thread's rebuild has.
    private func rebuild() {
        rebuilding.withLock { _ in rebuildAlone() }
    }

    private func rebuildAlone() {
        let overrides = stored.withLock { $0.flags }
        let (flagConfigs, migrations) = configuration.withLock { $0 }
        let catalog = catalogs.withLock { $0 }
        var flags = flagConfigs.compactMap { flag in
            migrations[flag.migration].map { FlagState(flag: flag, migration: $0, catalog: catalog[$0.name]) }
        }
        for i in flags.indices {
            if let s = overrides[flags[i].name], s.migration == flags[i].migration {
                flags[i].stage = s.stage
                flags[i].percentBasisPoints = s.percentBasisPoints
            }
        }
        table.withLock { t in
            if t.flags != flags {
                t = RoutingTable(version: t.version + 1, flags: flags)
                version.store(t.version, ordering: .releasing)
            }
        }
    }

    /// `SET FLAG name TO stage [percent]`.
    public func setFlag(_ name: String, stage: FlagStage, percentBasisPoints: Int?) throws(FlagChangeError) -> FlagState {
        let result = table.withLock { t -> Result<FlagState, FlagChangeError> in
            guard let i = t.flags.firstIndex(where: { $0.name == name }) else {
                return .failure(.unknownFlag(name, known: t.flags.map(\.name)))
            }
            var flags = t.flags
            flags[i].stage = stage
            if let p = percentBasisPoints { flags[i].percentBasisPoints = p }
            t = RoutingTable(version: t.version + 1, flags: flags)
            version.store(t.version, ordering: .releasing)
            return .success(flags[i])
        }
        return try result.get()
    }

    func recordRewrite(loop: Int, flags: [String]) {
        shards[loop % shards.count].routed.withLock { for f in flags { $0[f, default: 0] += 1 } }
    }

    func recordFallback(fingerprint: String, reason: String, query: String) {
        fallbacks.withLock { all in
            if var f = all[fingerprint] {
                f.count += 1
                all[fingerprint] = f
            } else if all.count < 10_000 {
                all[fingerprint] = Fallback(fingerprint: fingerprint, reason: reason, query: String(query.prefix(500)), count: 1)
            }
        }
    }

    /// A write to a migrated table that was not mirrored; the control thread adds it to the shared counts.
    func recordWriteDivergence(migration: String, fingerprint: String, reason: String, query: String) {
        pendingDivergences.withLock { all in
            let key = Self.divergenceKey(migration, fingerprint, reason)
            if all[key] != nil {
                all[key]!.count += 1
            } else if all.count < 10_000 {
                all[key] = WriteDivergence(migration: migration, fingerprint: fingerprint, reason: reason, query: String(query.prefix(500)), count: 1)
            }
        }
    }

    /// Hands the divergences recorded since the last call to the control thread.
    func takeWriteDivergences() -> [WriteDivergence] {
        pendingDivergences.withLock { all in
            defer { all.removeAll() }
            return Array(all.values)
        }
    }

    /// Put back divergences the control thread could not store (the control database is down).
    func restoreWriteDivergences(_ divergences: [WriteDivergence]) {
        for d in divergences {
            pendingDivergences.withLock { all in
                let key = Self.divergenceKey(d.migration, d.fingerprint, d.reason)
                if all[key] != nil { all[key]!.count += d.count } else { all[key] = d }
            }
        }
    }

    private static func divergenceKey(_ migration: String, _ fingerprint: String, _ reason: String) -> String {
        migration + "\u{0}" + fingerprint + "\u{0}" + reason
    }

    func applySharedDivergences(_ divergences: [WriteDivergence]) { sharedDivergences.withLock { $0 = divergences } }

    /// Every instance's write divergences as last read from the control schema, plus this
    /// instance's not yet stored.
    public var divergenceList: [WriteDivergence] {
        var shared = sharedDivergences.withLock { $0 }
        for d in pendingDivergences.withLock({ Array($0.values) }) {
            if let i = shared.firstIndex(where: { $0.migration == d.migration && $0.fingerprint == d.fingerprint && $0.reason == d.reason }) {
                shared[i].count += d.count
            } else {
                shared.append(d)
            }
        }
        return shared
    }

    public var fallbackList: [Fallback] { fallbacks.withLock { Array($0.values) }.sorted { $0.count > $1.count } }
    public var routedReads: [String: UInt64] {
        var total: [String: UInt64] = [:]
        for shard in shards { shard.routed.withLock { for (k, v) in $0 { total[k, default: 0] += v } } }
        return total
    }
}

