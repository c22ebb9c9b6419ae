// The shadow-read pool: sampled reads answered on both paths in one snapshot, off the clients' critical path.
import Dispatch
import Foundation
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardShadow

/// The pool's counters. Every job accepted ends in exactly one of same, divergent, nondeterministic,
/// skipped or errors, and then counts as completed.
public struct ShadowCounters: Sendable, Equatable {
    /// Every call of ``ShadowReader/submit(_:)``, accepted or not.
    public var submitted: UInt64 = 0
    /// Refused: the queue was full (or the reader not running).
    public var dropped: UInt64 = 0
    public var completed: UInt64 = 0
    public var same: UInt64 = 0
    /// Including a new path that failed where the old one answered (kind error).
    public var divergent: UInt64 = 0
    public var nondeterministic: UInt64 = 0
    /// Nothing to compare: the old path failed, or an answer was over the size limits.
    public var skipped: UInt64 = 0
    /// The side connection failed during the job (lost, or silent past the statement timeout).
    public var errors: UInt64 = 0
    /// Jobs waiting for a side connection, and side connections up, now.
    public var queued: Int = 0
    public var connected: Int = 0
    /// Side connections opened after a failure.
    public var reconnects: UInt64 = 0
    /// Drawn reads not shadowed because their query had its samples for the second (the samplers count these).
    public var capped: UInt64 = 0

    public init() {}
}

/// Answers sampled reads on both paths with a bounded pool of threads, each with its own libpq
/// connection to the upstream, fed by a bounded queue: ``submit(_:)`` never waits, and refuses (and
/// counts) a sample when the queue is full. For each job, on one side connection and in one round trip
/// (a libpq pipeline): the session's settings, the old SQL, the old SQL again when calibrating, the new
/// SQL, then a Sync. The statements up to a Sync are one implicit transaction, and the side connection's
/// transactions are REPEATABLE READ and read-only, so both paths read one snapshot and concurrent writes
/// cannot show up as divergences. Outcomes go to a ``DivergenceAggregator`` and
/// to `onReport`.
public final class ShadowReader: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Side connections, each on a thread of its own.
        public var connections: Int
        /// Jobs waiting for a side connection, at most.
        public var queueCapacity: Int
        /// The side connections' statement_timeout.
        public var statementTimeout: Duration
        /// An answer with more rows or bytes than this is not compared (the sample is skipped).
        public var maxRows: Int
        public var maxResultBytes: Int
        /// How many differing rows of each side a divergence keeps, and the aggregator's other bounds.
        public var limits: DivergenceAggregator.Limits
        /// Fingerprints remembered as nondeterministic.
        public var noiseCapacity: Int

        public init(
            connections: Int = 2, queueCapacity: Int = 100, statementTimeout: Duration = .seconds(5), maxRows: Int = 100_000,
            maxResultBytes: Int = 64 << 20, limits: DivergenceAggregator.Limits = .init(),
            noiseCapacity: Int = NoiseRegistry.defaultCapacity
        ) {
            self.connections = connections
            self.queueCapacity = queueCapacity
            self.statementTimeout = statementTimeout
            self.maxRows = maxRows
            self.maxResultBytes = maxResultBytes
            self.limits = limits
            self.noiseCapacity = noiseCapacity
        }

        /// The `shadow_reads:` section's settings, the rest at their defaults.
        public init(_ config: ShadowReadsConfig) {
            self.init(connections: config.connections, queueCapacity: config.queue, statementTimeout: config.statementTimeout)
        }
    }

    /// How long a side connection waits for an answer beyond the statement timeout before giving up on it.
    static let answerGrace: Duration = .seconds(2)
    /// The longest pause between reconnection attempts.
    static let maxBackoff: Duration = .seconds(5)
    /// How long a worker waits for a job before looking at the stop flag again.
    static let idleWait: Duration = .milliseconds(200)

    public let settings: Settings
    private let upstream: UpstreamURI
    private let logger: Logger
    private let now: @Sendable () -> Int64
    private let onReport: (@Sendable (ShadowReport) -> Void)?

    private let queue: Mutex<BoundedQueue<ShadowJob>>
    /// Signalled once per queued job (and once per worker at stop); workers wait on it with a timeout.
    private let available = DispatchSemaphore(value: 0)
    private let aggregator: Mutex<DivergenceAggregator>
    private let noise: Mutex<NoiseRegistry>
    /// 0 not started, 1 running, 2 stopped.
    private let state = Atomic<Int>(0)
    private let workers = DispatchGroup()

    private let submitted = Atomic<UInt64>(0)
    private let dropped = Atomic<UInt64>(0)
    private let same = Atomic<UInt64>(0)
    private let divergent = Atomic<UInt64>(0)
    private let nondeterministic = Atomic<UInt64>(0)
    private let skipped = Atomic<UInt64>(0)
    private let errors = Atomic<UInt64>(0)
    private let connected = Atomic<Int>(0)
    private let reconnects = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - upstream: the upstream URI: its host, port, user, password and database (Switchyard's own).
    ///   - now: the time stamped on divergence records, milliseconds since the Unix epoch.
    ///   - onReport: called on a pool thread with each job's report, after the aggregator counted it.
    public init(
        upstream: UpstreamURI, settings: Settings = Settings(), logger: Logger = Logger(label: "switchyard.shadow"),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        onReport: (@Sendable (ShadowReport) -> Void)? = nil
    ) {
        self.upstream = upstream
        self.settings = settings
        self.logger = logger
        self.now = now
        self.onReport = onReport
        queue = Mutex(BoundedQueue(capacity: settings.queueCapacity))
        aggregator = Mutex(DivergenceAggregator(limits: settings.limits))
        noise = Mutex(NoiseRegistry(capacity: settings.noiseCapacity))
    }

    /// Starts the pool's threads; they connect on their own, and reconnect with a backoff (100 ms doubling
    /// to 5 s). Jobs queued while no side connection is up wait for one.
    public func start() {
        guard state.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else { return }
        for index in 0..<max(1, settings.connections) {
            workers.enter()
            let thread = Thread { [self] in
                work()
                workers.leave()
            }
            thread.name = "switchyard-shadow-\(index)"
            thread.start()
        }
    }

    /// Stops taking jobs, abandons the queued ones and closes the connections; a statement in flight is
    /// abandoned at once (the server ends it at its statement_timeout at the latest). Waits for the
    /// threads at most the connect timeout plus two seconds. The threads hold the reader until then.
    public func stop() {
        guard state.exchange(2, ordering: .acquiringAndReleasing) == 1 else { return }
        for _ in 0..<max(1, settings.connections) { available.signal() }
        if workers.wait(timeout: .now() + .seconds(7)) == .timedOut {
            logger.warning("shadow reads: side connections still closing after 7s")
        }
        queue.withLock { _ = $0.removeAll() }
    }

    /// Queues a job for the pool. Never waits: false (and the job counted as dropped) when the queue is
    /// full or the reader is not running.
    @discardableResult
    public func submit(_ job: ShadowJob) -> Bool {
        submitted.add(1, ordering: .relaxed)
        guard state.load(ordering: .acquiring) == 1, queue.withLock({ $0.push(job) }) else {
            dropped.add(1, ordering: .relaxed)
            return false
        }
        available.signal()
        return true
    }

    public var counters: ShadowCounters {
        var c = ShadowCounters()
        c.submitted = submitted.load(ordering: .relaxed)
        c.dropped = dropped.load(ordering: .relaxed)
        c.same = same.load(ordering: .relaxed)
        c.divergent = divergent.load(ordering: .relaxed)
        c.nondeterministic = nondeterministic.load(ordering: .relaxed)
        c.skipped = skipped.load(ordering: .relaxed)
        c.errors = errors.load(ordering: .relaxed)
        c.completed = c.same + c.divergent + c.nondeterministic + c.skipped + c.errors
        c.queued = queue.withLock { $0.count }
        c.connected = connected.load(ordering: .relaxed)
        c.reconnects = reconnects.load(ordering: .relaxed)
        return c
    }

    /// The aggregated divergences, most frequent first.
    public var divergences: [DivergenceRecord] { aggregator.withLock { $0.divergences } }
    /// Per flag and fingerprint: samples, same, divergent, nondeterministic, skipped, and time on each path.
    public var fingerprints: [FingerprintStats] { aggregator.withLock { $0.fingerprints } }
    /// One flag's tally, for its divergence rate.
    public func totals(flag: String) -> ShadowTally { aggregator.withLock { $0.totals(flag: flag) } }

    public func timeline(flag: String) -> [TimelinePoint] { aggregator.withLock { $0.timeline(flag: flag) } }
    /// The fingerprints found nondeterministic, oldest first.
    public var nondeterministicFingerprints: [String] { noise.withLock { $0.fingerprints } }

    private var stopping: Bool { state.load(ordering: .acquiring) != 1 }

    // MARK: - The pool's threads

    private func work() {
        var connection: SideConnection?
        var backoff: Duration = .milliseconds(100)
        var failing = false
        defer { if connection != nil { connected.subtract(1, ordering: .relaxed) } }
        while !stopping {
            if connection == nil {
                do {
                    connection = try SideConnection(upstream, statementTimeout: settings.statementTimeout, limits: .init(
                        answerTimeout: settings.statementTimeout + Self.answerGrace, maxRows: settings.maxRows,
                        maxBytes: settings.maxResultBytes))
                    connected.add(1, ordering: .relaxed)
                    if failing {
                        reconnects.add(1, ordering: .relaxed)
                        logger.info("shadow reads: side connection restored")
                    }
                    failing = false
                    backoff = .milliseconds(100)
                } catch {
                    if !failing { logger.warning("shadow reads: cannot open a side connection", metadata: ["error": "\(error)"]) }
                    failing = true
                    pause(backoff)
                    backoff = min(backoff * 2, Self.maxBackoff)
                    continue
                }
            }
            guard let job = nextJob(), let side = connection else { continue }
            let (report, usable) = execute(job, on: side)
            if !usable {
                connection = nil
                connected.subtract(1, ordering: .relaxed)
                if !stopping {
                    failing = true
                    logger.warning("shadow reads: side connection lost", metadata: ["reason": "\(report.outcome)"])
                }
            }
            finish(report, connectionFailed: !usable)
        }
    }

    private func nextJob() -> ShadowJob? {
        let ms = Int(Self.idleWait / .milliseconds(1))
        guard available.wait(timeout: .now() + .milliseconds(ms)) == .success, !stopping else { return nil }
        return queue.withLock { $0.pop() }
    }

    /// Sleeps for `duration` in short slices, returning early when the reader stops.
    private func pause(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !stopping && ContinuousClock.now < deadline { usleep(20_000) }
    }

    /// Runs one job on `side` in one round trip: the settings, the old SQL (twice when calibrating) and
    /// the new SQL go out as one pipeline, one implicit REPEATABLE READ transaction, and the answers are
    /// judged in order, as if each had been waited for: the first failure decides the outcome, and the
    /// server skipped what followed it.
    /// Returns the job's report and whether the connection is still usable.
    private func execute(_ job: ShadowJob, on side: SideConnection) -> (ShadowReport, Bool) {
        let stop = { [self] in stopping }
        let known = noise.withLock { $0.isNondeterministic(job.fingerprint) }
        let calibrating = job.calibrate && !known
        // The client session's settings that shape answers (search_path, TimeZone...), for this transaction only.
        let sessionSettings = job.settings.sorted { $0.key < $1.key }
        var statements: [SideStatement] = []
        statements.reserveCapacity(sessionSettings.count + 3)
        for (name, value) in sessionSettings {
            statements.append(SideStatement(sql: "SELECT set_config($1, $2, true)", parameters: [ShadowParameter(name), ShadowParameter(value)]))
        }
        // Flushes around the old SQL (and its second run) make each path's answer arrive on its own.
        if !statements.isEmpty { statements[statements.count - 1].flush = true }
        let oldIndex = statements.count
        statements.append(SideStatement(sql: job.oldSQL, parameters: job.parameters, flush: true))
        if calibrating { statements.append(SideStatement(sql: job.oldSQL, parameters: job.parameters, flush: true)) }
        let newIndex = statements.count
        statements.append(SideStatement(sql: job.newSQL, parameters: job.parameters))

        let sent = ContinuousClock.now
        let answers = side.pipeline(statements, shouldStop: stop)
        // The server runs a pipeline's statements one after the other, so a path's time is the gap between
        // its answer's arrival and the previous answer's. The Flush after the statement before it makes
        // that previous answer arrive when it is ready; a reader slow to wake sees both arrive together
        // and counts less.
        func took(_ index: Int) -> Duration { answers[index].arrival - (index == 0 ? sent : answers[index - 1].arrival) }
        func lost(_ why: String) -> (ShadowReport, Bool) { (ShadowReport(job: job, outcome: .skipped("side connection: \(why)")), false) }
        /// Reports `outcome`; the connection stays in use if it is out of any transaction.
        func abandon(_ outcome: ShadowOutcome, old: Int? = nil, oldTime: Duration? = nil, newTime: Duration? = nil) -> (ShadowReport, Bool) {
            let report = ShadowReport(job: job, outcome: outcome, oldRowCount: old, oldDuration: oldTime, newDuration: newTime)
            return (report, side.endTransaction(shouldStop: stop))
        }

        for (i, answer) in answers[..<oldIndex].enumerated() {
            let what = "setting \(sessionSettings[i].key)"
            switch answer.answer {
            case .result, .tooLarge: break
            case let .failed(error): return abandon(.skipped("\(what) failed: \(error)"))
            case .aborted: return abandon(.skipped("\(what) was not run"))
            case let .lost(why): return lost(why)
            }
        }

        let oldTime = took(oldIndex)
        let old: QueryResult
        switch answers[oldIndex].answer {
        case let .result(result): old = result
        case let .failed(error): return abandon(.skipped("old path failed: \(error)"), oldTime: oldTime)
        case .tooLarge: return abandon(.skipped("old path's answer is over the size limits"), oldTime: oldTime)
        case .aborted: return abandon(.skipped("old path was not run"))
        case let .lost(why): return lost(why)
        }

        var calibration: QueryResult?
        if calibrating {
            switch answers[oldIndex + 1].answer {
            case let .result(result): calibration = result
            case let .failed(error): return abandon(.skipped("old path failed on its second run: \(error)"), old: old.rowCount, oldTime: oldTime)
            case .tooLarge: return abandon(.skipped("old path's second answer is over the size limits"), old: old.rowCount, oldTime: oldTime)
            case .aborted: return abandon(.skipped("old path's second run was not run"), old: old.rowCount, oldTime: oldTime)
            case let .lost(why): return lost(why)
            }
        }

        let newTime = took(newIndex)
        let new: QueryResult
        switch answers[newIndex].answer {
        case let .result(result): new = result
        case let .failed(error):
            return abandon(.compared(.divergent(.error(error))), old: old.rowCount, oldTime: oldTime, newTime: newTime)
        case .tooLarge:
            return abandon(.skipped("new path's answer is over the size limits"), old: old.rowCount, oldTime: oldTime, newTime: newTime)
        case .aborted: return abandon(.skipped("new path was not run"), old: old.rowCount, oldTime: oldTime)
        case let .lost(why): return lost(why)
        }
        // The Sync ended the implicit transaction; a connection left in one is not reused.
        let committed = side.endTransaction(shouldStop: stop)

        let verdict = NoiseClassifier.classify(
            old: old, calibration: calibration, new: new, ordered: job.ordered, knownNondeterministic: known,
            sampleLimit: settings.limits.sampleRows)
        if verdict == .nondeterministic && !known {
            noise.withLock { _ = $0.markNondeterministic(job.fingerprint) }
        }
        let report = ShadowReport(
            job: job, outcome: .compared(verdict), oldRowCount: old.rowCount, newRowCount: new.rowCount,
            oldDuration: oldTime, newDuration: newTime)
        return (report, committed)
    }

    /// Counts a finished job, aggregates it, and hands it to `onReport`.
    private func finish(_ report: ShadowReport, connectionFailed: Bool) {
        switch report.outcome {
        case .compared(.same): same.add(1, ordering: .relaxed)
        case .compared(.divergent): divergent.add(1, ordering: .relaxed)
        case .compared(.nondeterministic): nondeterministic.add(1, ordering: .relaxed)
        case .skipped:
            if connectionFailed { errors.add(1, ordering: .relaxed) } else { skipped.add(1, ordering: .relaxed) }
        }
        let opened = aggregator.withLock { $0.record(report, at: now()) }
        if let key = opened {
            logger.notice("shadow read divergence", metadata: [
                "flag": "\(key.flag)", "cohort": "\(key.cohort)", "fingerprint": "\(key.fingerprint)", "kind": "\(key.kind.rawValue)",
                "query": "\(report.normalizedQuery.prefix(200))",
            ])
        }
        onReport?(report)
    }
}
