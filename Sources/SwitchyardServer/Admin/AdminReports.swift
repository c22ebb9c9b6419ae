// Builds the console's result sets from the registry, the stats and the configuration.
import Foundation
import Histogram
import SwitchyardShadow
import SwitchyardConfig
import SwitchyardRouting

public enum SwitchyardVersion {
    public static let string = "0.1.0"
}

/// Turns live state into `AdminResult`s. Takes plain values, not the server, so it is testable.
enum AdminReports {
    static func clients(_ sessions: [SessionInfo]) -> AdminResult {
        AdminResult(
            columns: ["id", "user", "database", "application_name", "client_addr", "state", "connect_time",
                      "bytes_received", "bytes_sent", "statements", "backend_pid", "loop"],
            rows: sessions.map { s in
                let d = s.snapshotDetails
                return [
                    "\(s.id)", d.user, d.database, d.applicationName, s.clientAddress, s.stateName,
                    timestamp(s.connectedAt),
                    "\(s.bytesIn.load(ordering: .relaxed))", "\(s.bytesOut.load(ordering: .relaxed))",
                    "\(s.statements.load(ordering: .relaxed))",
                    d.backendKey.map { "\($0.processID)" }, "\(s.loopIndex)",
                ]
            })
    }

    static func servers(_ sessions: [SessionInfo]) -> AdminResult {
        AdminResult(
            columns: ["client_id", "user", "database", "upstream", "backend_pid", "state", "connect_time"],
            rows: sessions.compactMap { s in
                let d = s.snapshotDetails
                guard !d.upstream.isEmpty else { return nil }
                return ["\(s.id)", d.user, d.database, d.upstream, d.backendKey.map { "\($0.processID)" },
                        s.stateName, timestamp(s.connectedAt)]
            })
    }

    static func stats(_ s: ServerStats.Snapshot, p50Micros: UInt64, p99Micros: UInt64) -> AdminResult {
        let avg = s.requests == 0 ? 0 : s.requestNanos / s.requests / 1000
        return AdminResult(
            columns: ["total_clients", "active_clients", "active_servers", "rejected_clients", "total_statements",
                      "total_transactions", "total_requests", "bytes_received", "bytes_sent",
                      "avg_request_us", "p50_request_us", "p99_request_us", "cancels_forwarded",
                      "server_connect_failures", "protocol_errors"],
            rows: [[
                "\(s.clientsAccepted)", "\(s.clientsActive)", "\(s.serversActive)", "\(s.clientsRejected)",
                "\(s.statements)", "\(s.transactions)", "\(s.requests)", "\(s.bytesFromClients)",
                "\(s.bytesFromServers)", "\(avg)", "\(p50Micros)", "\(p99Micros)", "\(s.cancelsForwarded)",
                "\(s.serverConnectFailures)", "\(s.protocolErrors)",
            ]])
    }

    static func config(_ c: SwitchyardConfiguration) -> AdminResult {
        let restartOnly: Set<String> = ["listen", "admin_listen", "workers"]
        return AdminResult(
            columns: ["key", "value", "changeable"],
            rows: c.summaryLines().map { [$0.key, $0.value, restartOnly.contains($0.key) ? "no" : "yes"] })
    }

    /// `lastChanges`: per flag, the latest flip's author and reason (a guardrail's step-back says why).
    static func flags(_ table: RoutingTable, routed: [String: UInt64], control: String, lastChanges: [String: String] = [:]) -> AdminResult {
        AdminResult(
            columns: ["name", "migration", "stage", "percent", "cohort_key", "old", "new", "reads_routed_to_new", "control", "last_change"],
            rows: table.flags.map { f in
                [f.name, f.migration, f.stage.rawValue, ConfigValues.describe(basisPoints: f.percentBasisPoints),
                 f.cohortKey.map(\.description).joined(separator: ", "), "\(f.route.oldSchema).\(f.route.oldName)",
                 f.route.readForm, "\(routed[f.name] ?? 0)", control, lastChanges[f.name] ?? ""]
            })
    }

    static func cohorts(_ seen: [RoutingHub.CohortSeen], table: RoutingTable) -> AdminResult {
        AdminResult(
            columns: ["flag", "cohort_key", "bucket", "canary_below", "path", "transactions"],
            rows: seen.map { c in
                let percent = table.flags.first { $0.name == c.flag }?.percentBasisPoints ?? 0
                return [c.flag, c.key, c.bucket >= 0 ? "\(c.bucket)" : nil, "\(percent)", c.path.rawValue, "\(c.transactions)"]
            })
    }

    static func routing(_ fallbacks: [RoutingHub.Fallback]) -> AdminResult {
        AdminResult(
            columns: ["fingerprint", "kept_on_old_path", "reason", "query"],
            rows: fallbacks.map { [$0.fingerprint, "\($0.count)", $0.reason, $0.query] })
    }

    /// Write divergences (by migration) and this instance's read divergences from shadow reads (by flag).
    static func divergences(_ divergences: [WriteDivergence], reads: [DivergenceRecord]) -> AdminResult {
        var rows: [[String?]] = divergences.map { [$0.migration, "write", $0.fingerprint, "\($0.count)", $0.reason, $0.firstSeen, $0.lastSeen, $0.query] }
        for r in reads {
            let oldRows = r.oldRowCount.map { String($0) } ?? "?"
            let newRows = r.newRowCount.map { String($0) } ?? "?"
            var reason = "read \(r.key.kind): old \(oldRows) rows, new \(newRows) rows"
            if !r.detail.isEmpty { reason += "; \(r.detail)" }
            if !r.key.cohort.isEmpty { reason += "; cohort \(r.key.cohort)" }
            rows.append([r.key.flag, "read", r.key.fingerprint, "\(r.count)", reason, timestamp(milliseconds: r.firstSeen),
                         timestamp(milliseconds: r.lastSeen), r.normalizedQuery])
        }
        return AdminResult(columns: ["migration", "kind", "fingerprint", "count", "reason", "first_seen", "last_seen", "query"], rows: rows)
    }

    private static func timestamp(milliseconds: Int64) -> String {
        timestamp(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// Per flag, source (served or shadow), cohort, path and fingerprint, the busiest first: requests,
    /// errors and percentiles in µs.
    static func latency(_ series: [LatencyLabel: LatencySeries]) -> AdminResult {
        let rows = series.sorted { a, b in
            (a.key.flag, a.key.source.rawValue, b.value.requests, a.key.cohort, a.key.path.rawValue, a.key.fingerprint)
                < (b.key.flag, b.key.source.rawValue, a.value.requests, b.key.cohort, b.key.path.rawValue, b.key.fingerprint)
        }.map { label, s -> [String?] in
            let h = s.histogram
            return [label.flag, label.source.rawValue, label.cohort, label.path.rawValue, label.fingerprint, "\(h.totalCount)", "\(s.errors)",
                    "\(h.valueAtPercentile(50))", "\(h.valueAtPercentile(95))", "\(h.valueAtPercentile(99))"]
        }
        return AdminResult(columns: ["flag", "source", "cohort", "path", "fingerprint", "requests", "errors", "p50_us", "p95_us", "p99_us"],
                           rows: rows)
    }

    static func version() -> AdminResult {
        AdminResult(columns: ["version"], rows: [["Switchyard \(SwitchyardVersion.string)"]])
    }

    static func help() -> AdminResult {
        AdminResult(columns: ["command"], rows: AdminCommand.help.map { [$0] })
    }

    private static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
