// Renders /metrics in the Prometheus text format from the server's counters.
import Prometheus
import SwitchyardConfig
import Synchronization

/// Keeps a PrometheusCollectorRegistry in step with `ServerStats`. The stats
/// atomics are the single source of truth; at each scrape the registry's counters
/// are advanced by what changed since the last one, and gauges are set.
final class MetricsRenderer: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let stats: ServerStats
    private let counters: [(@Sendable (ServerStats.Snapshot) -> UInt64, Counter)]
    private let exported: Mutex<[UInt64]>
    private let clientsActive: Gauge
    private let serversActive: Gauge

    /// Upper bounds of the latency histogram buckets, in seconds.
    static let latencyBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let routing: RoutingHub?
    private let shadowCounters: @Sendable () -> ShadowCounters?
    /// Whether the control schema is connected and listening; nil when flags are not shared through one.
    private let controlReachable: @Sendable () -> Bool?

    init(stats: ServerStats, routing: RoutingHub? = nil, shadowCounters: @escaping @Sendable () -> ShadowCounters? = { nil },
         controlReachable: @escaping @Sendable () -> Bool? = { nil }) {
        self.stats = stats
        self.routing = routing
        self.shadowCounters = shadowCounters
        self.controlReachable = controlReachable
        let defs: [(@Sendable (ServerStats.Snapshot) -> UInt64, String, String)] = [
            ({ $0.clientsAccepted }, "client_connections_total", "Client connections accepted."),
            ({ $0.clientsRejected }, "client_connections_rejected_total", "Client connections refused (limits, shutdown)."),
            ({ $0.serverConnectFailures }, "server_connect_failures_total", "Failed connections to the upstream."),
            ({ $0.bytesFromClients }, "client_bytes_received_total", "Bytes read from clients."),
            ({ $0.bytesFromServers }, "server_bytes_received_total", "Bytes read from the upstream."),
            ({ $0.statements }, "statements_total", "Statements sent (simple queries and executes)."),
            ({ $0.transactions }, "transactions_total", "Transactions completed (including autocommit statements)."),
            ({ $0.requests }, "requests_total", "Requests answered by ReadyForQuery (Query, Sync, FunctionCall)."),
            ({ $0.cancelsForwarded }, "cancel_requests_forwarded_total", "Cancel requests routed to a backend."),
            ({ $0.protocolErrors }, "protocol_errors_total", "Sessions closed for malformed protocol input."),
            ({ $0.preparedReads }, "prepared_reads_total", "Routed reads sent as EXECUTE of a statement their session prepared (prepare_routed_reads)."),
            ({ $0.preparedReadStatements }, "prepared_read_statements_total", "Statements prepared for routed reads."),
            ({ $0.preparedReadsPreparedAgain }, "prepared_reads_prepared_again_total",
             "Prepared reads the server refused (a table's columns changed, or the statement was gone), prepared and run again."),
        ]
        let registry = self.registry
        counters = defs.map { def in
            (def.0, registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "switchyard", metricName: def.1, unitName: "", helpText: def.2)))
        }
        exported = Mutex([UInt64](repeating: 0, count: defs.count))
        clientsActive = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "switchyard", metricName: "clients_active", unitName: "", helpText: "Client sessions open now."))
        serversActive = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "switchyard", metricName: "servers_active", unitName: "", helpText: "Upstream connections open now."))
    }

    func render() -> String {
        let snapshot = stats.snapshot()
        exported.withLock { last in
            for (i, (path, counter)) in counters.enumerated() {
                let value = path(snapshot)
                if value > last[i] { counter.increment(by: Int64(value - last[i])) }
                last[i] = max(last[i], value)
            }
        }
        clientsActive.set(Double(snapshot.clientsActive))
        serversActive.set(Double(snapshot.serversActive))
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        var text = String(decoding: bytes, as: UTF8.self)
        text += renderLatency(sumNanos: snapshot.requestNanos)
        if let routing { text += renderRouting(routing) }
        if let reachable = controlReachable() {
            // 0 means routing runs fail-static on the last known flag state; SHOW FLAGS says why.
            text += "# HELP switchyard_control_schema_reachable Whether the control schema is connected and listening for flips (0: routing keeps the last known flag state).\n"
                + "# TYPE switchyard_control_schema_reachable gauge\nswitchyard_control_schema_reachable \(reachable ? 1 : 0)\n"
        }
        if let shadow = shadowCounters() { text += Self.renderShadow(shadow) }
        return text
    }

    /// Flag stages and routing counters. Labels are flag names (few, chosen by the operator),
    /// never fingerprints, so cardinality stays bounded.
    private func renderRouting(_ routing: RoutingHub) -> String {
        let table = routing.current
        guard !table.flags.isEmpty else { return "" }
        let routed = routing.routedReads
        let fallbacks = routing.fallbackList.reduce(UInt64(0)) { $0 + $1.count }
        var out = "# HELP switchyard_flag_stage The stage each flag is in (1 for the current stage).\n# TYPE switchyard_flag_stage gauge\n"
        for f in table.flags {
            for stage in FlagStage.allCases {
                out += "switchyard_flag_stage{flag=\"\(f.name)\",stage=\"\(stage.rawValue)\"} \(f.stage == stage ? 1 : 0)\n"
            }
        }
        out += "# HELP switchyard_flag_canary_percent The canary share of each flag, in percent.\n# TYPE switchyard_flag_canary_percent gauge\n"
        for f in table.flags {
            out += "switchyard_flag_canary_percent{flag=\"\(f.name)\"} \(Double(f.percentBasisPoints) / 100)\n"
        }
        out += "# HELP switchyard_routed_reads_total Reads served from the new relation, by flag.\n# TYPE switchyard_routed_reads_total counter\n"
        for f in table.flags {
            out += "switchyard_routed_reads_total{flag=\"\(f.name)\"} \(routed[f.name] ?? 0)\n"
        }
        out += "# HELP switchyard_routing_fallbacks_total Reads of a routed relation kept on the old path because they could not be rewritten safely (SHOW ROUTING lists them by fingerprint).\n# TYPE switchyard_routing_fallbacks_total counter\n"
        out += "switchyard_routing_fallbacks_total \(fallbacks)\n"
        out += renderRoutedLatency(routing)
        return out
    }

    /// Request latency of reads of migrated tables, per flag, cohort and path (fingerprints summed:
    /// they would make too many series; SHOW LATENCY has them).
    private func renderRoutedLatency(_ routing: RoutingHub) -> String {
        let series = routing.latencyBuckets(boundsMicros: Self.latencyBuckets.map { UInt64($0 * 1_000_000) })
        guard !series.isEmpty else { return "" }
        let name = "switchyard_routed_read_duration_seconds"
        var out = "# HELP \(name) Time from a client request that reads a migrated table to its ReadyForQuery, per flag, cohort (canary, control, or the stage) and the path that served it.\n"
        out += "# TYPE \(name) histogram\n"
        for s in series {
            let labels = "flag=\"\(s.flag)\",cohort=\"\(s.cohort)\",path=\"\(s.path)\""
            for (bound, count) in zip(Self.latencyBuckets, s.cumulativeCounts) {
                out += "\(name)_bucket{\(labels),le=\"\(bound)\"} \(count)\n"
            }
            out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(s.total)\n"
            out += "\(name)_count{\(labels)} \(s.total)\n"
        }
        return out
    }

    /// Shadow reads: outcomes of the compared samples, and samples dropped because the pool was full.
    static func renderShadow(_ c: ShadowCounters) -> String {
        var out = "# HELP switchyard_shadow_reads_total Sampled reads answered on both paths, by outcome.\n# TYPE switchyard_shadow_reads_total counter\n"
        for (outcome, value) in [("same", c.same), ("divergent", c.divergent), ("nondeterministic", c.nondeterministic),
                                 ("skipped", c.skipped), ("error", c.errors)] {
            out += "switchyard_shadow_reads_total{outcome=\"\(outcome)\"} \(value)\n"
        }
        out += "# HELP switchyard_shadow_reads_dropped_total Sampled reads dropped because the side connections were busy.\n# TYPE switchyard_shadow_reads_dropped_total counter\n"
        out += "switchyard_shadow_reads_dropped_total \(c.dropped)\n"
        out += "# HELP switchyard_shadow_reads_capped_total Reads drawn for a sample but not shadowed: their query had its samples for the second "
            + "(max_per_fingerprint_per_second).\n# TYPE switchyard_shadow_reads_capped_total counter\n"
        out += "switchyard_shadow_reads_capped_total \(c.capped)\n"
        return out
    }

    /// The HdrHistogram as a Prometheus histogram: cumulative counts per bucket.
    private func renderLatency(sumNanos: UInt64) -> String {
        let bounds = Self.latencyBuckets.map { UInt64($0 * 1_000_000) }
        let summary = stats.latencySummary(boundsMicros: bounds)
        let name = "switchyard_request_duration_seconds"
        var out = "# HELP \(name) Time from a client request (Query, Sync, FunctionCall) to the server's ReadyForQuery.\n"
        out += "# TYPE \(name) histogram\n"
        for (bound, count) in zip(Self.latencyBuckets, summary.cumulativeCounts) {
            out += "\(name)_bucket{le=\"\(bound)\"} \(count)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(summary.count)\n"
        out += "\(name)_sum \(Double(sumNanos) / 1e9)\n"
        out += "\(name)_count \(summary.count)\n"
        return out
    }
}

