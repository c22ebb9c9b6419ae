// Runs pgbench (initialisation and TPC-B-like runs in every query mode) through Switchyard and directly, then checks the tables stayed consistent.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite(.serialized, .timeLimit(.minutes(20)))
struct PgbenchTests {
    static let database = "pgbench_sy"
    static let clients = 4
    static let transactionsPerClient = 200

    struct Mode: Sendable, CustomStringConvertible {
        let arguments: [String]
        var description: String { arguments.joined(separator: " ") }
    }

    static let modes: [Mode] = [
        Mode(arguments: ["-M", "simple"]),
        Mode(arguments: ["-M", "extended"]),
        Mode(arguments: ["-M", "prepared"]),
        Mode(arguments: ["-M", "simple", "-C"]),
    ]

    @Test func tpcbThroughTheProxyMatchesDirectAndKeepsBalancesConsistent() throws {
        let cluster = try PostgresCluster.shared()
        let pgbench = try pgbenchPath(cluster)
        _ = try cluster.psql("DROP DATABASE IF EXISTS \(Self.database) WITH (FORCE)")
        _ = try cluster.psql("CREATE DATABASE \(Self.database)")

        var transactionsRun = 0
        try ProxyFixture.with { proxy in
            let initialise = try runPgbench(pgbench, port: proxy.port, ["-i", "-s", "1"], timeout: .seconds(300))
            try #require(
                initialise.status == 0,
                "pgbench -i through switchyard exited \(initialise.status):\n\(initialise.stdout)\n\(initialise.stderr)")
            #expect(initialise.stderr.contains("done in"), "\(initialise.stderr)")
            let sizes = try cluster.psql(
                "select (select count(*) from pgbench_accounts), (select count(*) from pgbench_tellers), "
                    + "(select count(*) from pgbench_branches), (select count(*) from pgbench_history)",
                database: Self.database)
            #expect(sizes == "100000|10|1|0", "table sizes after pgbench -i through switchyard")

            let expected = Self.clients * Self.transactionsPerClient
            for mode in Self.modes {
                for (label, port) in [("through switchyard", proxy.port), ("directly", cluster.port)] {
                    let arguments = ["-n", "-c", String(Self.clients), "-j", "2", "-t", String(Self.transactionsPerClient)]
                        + mode.arguments
                    let run = try runPgbench(pgbench, port: port, arguments, timeout: .seconds(300))
                    transactionsRun += expected
                    let summary = "pgbench \(mode) \(label) (status \(run.status)):\n\(run.stdout)\n\(run.stderr.suffix(3_000))"
                    #expect(run.status == 0, "\(summary)")
                    #expect(run.stdout.contains("number of transactions actually processed: \(expected)/\(expected)"), "\(summary)")
                    #expect(run.stdout.contains("number of failed transactions: 0 "), "\(summary)")
                    #expect(run.stdout.contains("query mode: \(mode.arguments[1])"), "\(summary)")
                    if mode.arguments.contains("-C") {
                        #expect(run.stdout.contains("average connection time"), "\(summary)")
                    }
                }
            }
            // Every proxied session ended with its client: nothing stays connected to the database.
            let deadline = ContinuousClock.now + .seconds(10)
            var connected = ""
            repeat {
                connected = try cluster.psql(
                    "select count(*) from pg_stat_activity where datname = '\(Self.database)'")
                if connected == "0" { break }
                usleep(100_000)
            } while ContinuousClock.now < deadline
            #expect(connected == "0", "backends still connected to \(Self.database) after every pgbench run ended")
        }

        // Each transaction adds the same delta to one account, teller and branch and logs it in history.
        let check = try cluster.psql(
            """
            select (select count(*) from pgbench_history),
                   (select coalesce(sum(delta), 0) from pgbench_history),
                   (select sum(abalance) from pgbench_accounts),
                   (select sum(tbalance) from pgbench_tellers),
                   (select sum(bbalance) from pgbench_branches)
            """,
            database: Self.database)
        let fields = check.split(separator: "|").map(String.init)
        try #require(fields.count == 5, "unexpected consistency query output: \(check)")
        #expect(fields[0] == String(transactionsRun), "history rows \(fields[0]), transactions run \(transactionsRun)")
        #expect(fields[2] == fields[1], "sum(abalance) \(fields[2]) != sum(delta) \(fields[1])")
        #expect(fields[3] == fields[1], "sum(tbalance) \(fields[3]) != sum(delta) \(fields[1])")
        #expect(fields[4] == fields[1], "sum(bbalance) \(fields[4]) != sum(delta) \(fields[1])")
        #expect(transactionsRun == Self.modes.count * 2 * Self.clients * Self.transactionsPerClient)

        _ = try cluster.psql("DROP DATABASE IF EXISTS \(Self.database) WITH (FORCE)")
    }

    /// pgbench of the server's own version, else the one on PATH.
    private func pgbenchPath(_ cluster: PostgresCluster) throws -> String {
        let sameVersion = cluster.binDirectory + "/pgbench"
        if access(sameVersion, X_OK) == 0 {
            return sameVersion
        }
        return try findExecutable("pgbench")
    }

    private func runPgbench(_ pgbench: String, port: Int, _ arguments: [String], timeout: Duration) throws -> ProcessResult {
        try runProcess(
            pgbench,
            arguments + ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", Self.database],
            environment: ["PGCONNECT_TIMEOUT": "10"], timeout: timeout)
    }
}
