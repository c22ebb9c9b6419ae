// Keeps this instance's flags in step with the control schema: LISTEN for flips, reload on notice.
import Foundation
import Histogram
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardRouting

/// A thread of its own with a libpq connection to the control database. At start it
/// creates the control schema if needed and seeds it from the config; then it listens
/// for flips and applies them within a second. If the control database becomes
/// unreachable, traffic keeps flowing on the last known flag state (fail-static) and
/// the thread reconnects with a backoff.
final class ControlSync: Sendable {
    private let hub: RoutingHub
    private let logger: Logger
    private let settings: @Sendable () -> SwitchyardConfiguration
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    /// True while connected and listening.
    let healthy = Atomic<Bool>(false)
    /// Whether the last read of the role and database settings failed (said once, not every pass).
    private let roleSettingsFailing = Atomic<Bool>(false)
    let lastError = Mutex<String?>(nil)

    /// How often the flag table is re-read even without a notification (a missed NOTIFY is never fatal).
    static let refreshInterval: Duration = .seconds(10)

    /// The shadow-read tally of a flag (divergent, judged), when shadow reads run.
    private let shadowTally: @Sendable (String) -> (divergent: UInt64, judged: UInt64)?
    /// Per flag: the counts when the flag entered its current stage, so a guardrail judges only
    /// what happened since.
    private let baselines = Mutex<[String: Baseline]>([:])

    /// What a flag's counts were when it entered its stage.
    struct Baseline {
        var state: String
        var divergent: UInt64 = 0
        var judged: UInt64 = 0
        var errors = Guardrails.ErrorEvidence()
        /// The flag's served latency histograms, so the p99 guardrail also judges only the stage's requests.
        var latency: [LatencyLabel: Histogram<UInt64>] = [:]
    }

    /// The baseline state between a step-back and the flip's return through the control schema.
    static let steppedBack = "stepped back"

    /// This instance's evidence for the cutover report, stored every few seconds under `instance`.
    private let evidence: @Sendable () -> [EvidenceRow]
    private let instance: String
    static let evidenceInterval: Duration = .seconds(2)

    init(hub: RoutingHub, logger: Logger, settings: @escaping @Sendable () -> SwitchyardConfiguration,
         shadowTally: @escaping @Sendable (String) -> (divergent: UInt64, judged: UInt64)? = { _ in nil },
         evidence: @escaping @Sendable () -> [EvidenceRow] = { [] }, instance: String = ControlSync.defaultInstance) {
        self.hub = hub
        self.logger = logger
        self.settings = settings
        self.shadowTally = shadowTally
        self.evidence = evidence
        self.instance = instance
    }

    /// host:pid, so rows of instances that share a host stay apart.
    static var defaultInstance: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Checks every guarded flag at canary or live and steps back the ones whose evidence breaks a
    /// threshold: through the control schema, so every instance follows and the history says why.
    private func enforceGuardrails(_ config: SwitchyardConfiguration, _ store: ControlStore, _ connection: ControlConnection) throws(ControlError) {
        let table = hub.current
        let latency = hub.latencySeries
        for flag in table.flags {
            guard let guardrails = config.flags.first(where: { $0.name == flag.name })?.guardrails, guardrails.isEnabled else { continue }
            let tally = shadowTally(flag.name) ?? (0, 0)
            // The flag's served reads: the new path (any cohort) and the control cohort's old path.
            let series = latency.filter { $0.key.flag == flag.name && $0.key.source == .served }
            var errors = Guardrails.ErrorEvidence()
            for (label, s) in series {
                if label.path == .new {
                    errors.newErrors += s.errors
                    errors.newRequests += s.requests
                } else if label.cohort == "control" {
                    errors.oldErrors += s.errors
                    errors.oldRequests += s.requests
                }
            }
            let now = Baseline(state: "\(flag.stage.rawValue)/\(flag.percentBasisPoints)", divergent: tally.divergent, judged: tally.judged,
                               errors: errors, latency: series.mapValues(\.histogram))
            let baseline = baselines.withLock { all -> Baseline? in
                guard let b = all[flag.name] else {
                    // First seen: all the evidence so far belongs to the stage the flag is in.
                    all[flag.name] = Baseline(state: now.state)
                    return Baseline(state: now.state)
                }
                if b.state == now.state { return b }
                // Stepped back, and the flip has not come back yet: nothing to judge (judging the
                // same evidence again would step back a second time).
                if b.state == Self.steppedBack && Guardrails.guards(flag.stage) { return nil }
                all[flag.name] = now
                return now
            }
            guard let baseline, Guardrails.guards(flag.stage) else { continue }
            // Per fingerprint, since the stage began: the new path's requests (any cohort) against
            // the control cohort's old path.
            let sinceStage = series.map { label, s in (label, s.histogram.since(baseline.latency[label])) }
            var evidence: [Guardrails.LatencyEvidence] = []
            for (label, new) in sinceStage where label.path == .new {
                guard let old = sinceStage.first(where: { $0.0.fingerprint == label.fingerprint && $0.0.path == .old && $0.0.cohort == "control" })?.1
                else { continue }
                evidence.append(Guardrails.LatencyEvidence(
                    fingerprint: label.fingerprint, newP99Micros: new.valueAtPercentile(99), newRequests: new.totalCount,
                    oldP99Micros: old.valueAtPercentile(99), oldRequests: old.totalCount))
            }
            let errorsSinceStage = Guardrails.ErrorEvidence(
                newErrors: errors.newErrors &- baseline.errors.newErrors, newRequests: errors.newRequests &- baseline.errors.newRequests,
                oldErrors: errors.oldErrors &- baseline.errors.oldErrors, oldRequests: errors.oldRequests &- baseline.errors.oldRequests)
            guard let reason = Guardrails.breach(guardrails, divergent: tally.divergent &- baseline.divergent,
                                                 judged: tally.judged &- baseline.judged, latency: evidence, errors: errorsSinceStage) else { continue }
            _ = try store.setFlag(connection, name: flag.name, stage: guardrails.stepBackTo, percentBasisPoints: nil, by: CutoverReport.guardrailActor, why: reason)
            // Until the flip comes back through NOTIFY the table still says canary or live: judge from scratch.
            baselines.withLock {
                var stepped = now
                stepped.state = Self.steppedBack
                $0[flag.name] = stepped
            }
            logger.warning("guardrail stepped a flag back", metadata: [
                "flag": "\(flag.name)", "from": "\(flag.stage.rawValue)", "to": "\(guardrails.stepBackTo.rawValue)", "reason": "\(reason)",
            ])
        }
    }

    func start() {
        let t = Thread { [self] in
            run()
            finished.store(true, ordering: .releasing)
        }
        t.name = "switchyard-control"
        t.start()
    }

    func stop() {
        stopRequested.store(true, ordering: .releasing)
        let deadline = ContinuousClock.now + .seconds(3)
        while !finished.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// Connects, prepares the schema and seeds it (also used by the CLI).
    static func open(_ config: SwitchyardConfiguration) throws(ControlError) -> (ControlConnection, ControlStore) {
        let store = ControlStore(schema: config.control.schema)
        let connection = try ControlConnection(config.control.database ?? config.upstream)
        try store.ensureSchema(connection)
        try store.seed(connection, flags: config.flags)
        return (connection, store)
    }

    /// The old relations' column types, so routed reads cast back to exactly them, and whether
    /// each new relation has the old row shape, so reads can name it directly.
    /// The migrated tables live in the upstream's database: with a separate control database the
    /// catalog is read over a connection of its own to the upstream.
    private func refreshCatalog(_ config: SwitchyardConfiguration, _ connection: ControlConnection) throws(ControlError) {
        let catalogConnection = config.control.database == nil
            ? connection : try ControlConnection(config.upstream, applicationName: "switchyard-control", purpose: "the upstream's catalog")
        var catalog: [String: RouteCatalog] = [:]
        for m in config.migrations { catalog[m.name] = try MigrationCheck.routeCatalog(m, catalogConnection) }
        hub.applyCatalog(catalog)
        // Clients may connect to any database of the cluster: every database's settings. Flags and
        // routes do not depend on them: a failed read keeps the last one, and the pass goes on.
        do {
            hub.applyRoleSettings(try MigrationCheck.roleSettings(MigrationCheck.routedSettingNames(config), currentDatabaseOnly: false, catalogConnection))
            hub.applyOldNameSchemas(try MigrationCheck.schemasHolding(config.migrations.map(\.old.name), catalogConnection))
            roleSettingsFailing.store(false, ordering: .relaxed)
        } catch {
            if !roleSettingsFailing.exchange(true, ordering: .relaxed) {
                logger.warning("cannot read the settings roles and databases give their sessions, or the schemas holding an old relation's name; sessions start with the ones read last",
                               metadata: ["error": "\(error)"])
            }
        }
    }

    /// Adds the write divergences recorded since the last pass to the control schema and reads
    /// back every instance's; kept for the next pass if the control database is unreachable.
    private func storeDivergences(_ store: ControlStore, _ connection: ControlConnection) throws(ControlError) {
        let pending = hub.takeWriteDivergences()
        guard !pending.isEmpty else { return }
        do throws(ControlError) {
            try store.addDivergences(connection, pending)
            hub.applySharedDivergences(try store.divergences(connection))
        } catch {
            hub.restoreWriteDivergences(pending)
            throw error
        }
    }

    private func run() {
        var backoff: Duration = .milliseconds(250)
        while !stopRequested.load(ordering: .acquiring) {
            let config = settings()
            do {
                let (connection, store) = try Self.open(config)
                try connection.executeScript("LISTEN \(RelationName.quotedIdentifier(store.channel))")
                try refreshCatalog(config, connection)
                try hub.applyStored { () throws(ControlError) in try store.load(connection) }
                hub.applySharedDivergences(try store.divergences(connection))
                if !healthy.exchange(true, ordering: .acquiringAndReleasing) {
                    logger.info("control schema connected", metadata: ["schema": "\(store.schema)"])
                }
                lastError.withLock { $0 = nil }
                backoff = .milliseconds(250)
                var lastRefresh = ContinuousClock.now
                var lastEvidence = ContinuousClock.now
                while !stopRequested.load(ordering: .acquiring) {
                    let notified = try connection.waitForNotifications(timeoutMs: 200)
                    try storeDivergences(store, connection)
                    try enforceGuardrails(config, store, connection)
                    if ContinuousClock.now - lastEvidence > Self.evidenceInterval {
                        let rows = evidence()
                        if !rows.isEmpty { try store.putEvidence(connection, instance: instance, rows: rows) }
                        lastEvidence = ContinuousClock.now
                    }
                    if !notified.isEmpty || ContinuousClock.now - lastRefresh > Self.refreshInterval {
                        // Tables may have been created or altered since: read the catalog again too.
                        try refreshCatalog(config, connection)
                        try hub.applyStored { () throws(ControlError) in try store.load(connection) }
                        lastRefresh = ContinuousClock.now
                    }
                }
            } catch {
                if healthy.exchange(false, ordering: .acquiringAndReleasing) || lastError.withLock({ $0 }) == nil {
                    logger.warning("control schema unreachable; routing keeps the last known flag state", metadata: ["error": "\(error)"])
                }
                lastError.withLock { $0 = error.description }
                let deadline = ContinuousClock.now + backoff
                while ContinuousClock.now < deadline && !stopRequested.load(ordering: .acquiring) { usleep(20_000) }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }
}
