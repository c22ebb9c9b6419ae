// Counters and latency histograms for the whole proxy, shared by every loop.
import Histogram
import Synchronization

/// Process-wide totals. Loops add with relaxed atomics; readers (the admin console,
/// /metrics) take a snapshot. Latency goes into one HdrHistogram per loop, so the
/// lock around it is never contended on the hot path.
public final class ServerStats: Sendable {
    public let clientsAccepted = Atomic<UInt64>(0)
    public let clientsRejected = Atomic<UInt64>(0)
    public let clientsActive = Atomic<Int>(0)
    public let serversActive = Atomic<Int>(0)
    public let serverConnectFailures = Atomic<UInt64>(0)
    public let bytesFromClients = Atomic<UInt64>(0)
    public let bytesFromServers = Atomic<UInt64>(0)
    public let statements = Atomic<UInt64>(0)
    public let transactions = Atomic<UInt64>(0)
    public let requests = Atomic<UInt64>(0)
    public let cancelsForwarded = Atomic<UInt64>(0)
    public let protocolErrors = Atomic<UInt64>(0)
    /// Routed reads sent as an EXECUTE of a statement their session prepared; the PREPAREs that
    /// succeeded; and the reads run again after the server refused their statement as stale or missing.
    public let preparedReads = Atomic<UInt64>(0)
    public let preparedReadStatements = Atomic<UInt64>(0)
    public let preparedReadsPreparedAgain = Atomic<UInt64>(0)
    /// Sum of request latencies in nanoseconds, for averages.
    public let requestNanos = Atomic<UInt64>(0)

    private final class LoopHistogram: Sendable {
        let histogram = Mutex(ServerStats.emptyHistogram())
    }
    private let histograms: [LoopHistogram]

    static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestTrackableMicros, numberOfSignificantValueDigits: .three)
    }

    /// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
    public static let highestTrackableMicros: UInt64 = 3_600_000_000

    public init(loops: Int) {
        histograms = (0..<max(1, loops)).map { _ in LoopHistogram() }
    }

    public func recordRequest(nanoseconds: UInt64, loop: Int) {
        requests.add(1, ordering: .relaxed)
        requestNanos.add(nanoseconds, ordering: .relaxed)
        let micros = min(max(nanoseconds / 1000, 1), Self.highestTrackableMicros)
        histograms[loop % histograms.count].histogram.withLock { _ = $0.record(micros) }
    }

    /// All loops' latencies merged.
    public func latencyHistogram() -> Histogram<UInt64> {
        var merged = Self.emptyHistogram()
        for h in histograms {
            h.histogram.withLock { merged.add($0) }
        }
        return merged
    }

    /// Latency summary for reports: count, cumulative counts at the given bounds (µs), and percentiles.
    public struct LatencySummary: Sendable {
        public var count: UInt64
        public var cumulativeCounts: [UInt64]
        public var p50Micros: UInt64
        public var p99Micros: UInt64
    }

    public func latencySummary(boundsMicros: [UInt64] = []) -> LatencySummary {
        let h = latencyHistogram()
        guard h.totalCount > 0 else {
            return LatencySummary(count: 0, cumulativeCounts: boundsMicros.map { _ in 0 }, p50Micros: 0, p99Micros: 0)
        }
        return LatencySummary(
            count: h.totalCount,
            cumulativeCounts: boundsMicros.map { h.count(within: 0...$0) },
            p50Micros: h.valueAtPercentile(50),
            p99Micros: h.valueAtPercentile(99))
    }

    public struct Snapshot: Sendable {
        public var clientsAccepted: UInt64
        public var clientsRejected: UInt64
        public var clientsActive: Int
        public var serversActive: Int
        public var serverConnectFailures: UInt64
        public var bytesFromClients: UInt64
        public var bytesFromServers: UInt64
        public var statements: UInt64
        public var transactions: UInt64
        public var requests: UInt64
        public var cancelsForwarded: UInt64
        public var protocolErrors: UInt64
        public var preparedReads: UInt64
        public var preparedReadStatements: UInt64
        public var preparedReadsPreparedAgain: UInt64
        public var requestNanos: UInt64
    }

    public func snapshot() -> Snapshot {
        Snapshot(
            clientsAccepted: clientsAccepted.load(ordering: .relaxed),
            clientsRejected: clientsRejected.load(ordering: .relaxed),
            clientsActive: clientsActive.load(ordering: .relaxed),
            serversActive: serversActive.load(ordering: .relaxed),
            serverConnectFailures: serverConnectFailures.load(ordering: .relaxed),
            bytesFromClients: bytesFromClients.load(ordering: .relaxed),
            bytesFromServers: bytesFromServers.load(ordering: .relaxed),
            statements: statements.load(ordering: .relaxed),
            transactions: transactions.load(ordering: .relaxed),
            requests: requests.load(ordering: .relaxed),
            cancelsForwarded: cancelsForwarded.load(ordering: .relaxed),
            protocolErrors: protocolErrors.load(ordering: .relaxed),
            preparedReads: preparedReads.load(ordering: .relaxed),
            preparedReadStatements: preparedReadStatements.load(ordering: .relaxed),
            preparedReadsPreparedAgain: preparedReadsPreparedAgain.load(ordering: .relaxed),
            requestNanos: requestNanos.load(ordering: .relaxed))
    }
}
