// The admin console (`psql ... switchyard`) and the /metrics endpoint.
import Foundation
@testable import SwitchyardServer
import SwitchyardTestSupport
import Testing

@Suite("Admin console and metrics")
struct AdminConsoleTests {
    @Test("SHOW commands answer with the expected columns and live numbers")
    func showCommands() throws {
        try ProxyFixture.with { proxy in
            let conn = try PQConnection(proxy.connectionString())
            try conn.query("select 1")
            try conn.query("begin; select 2")
            let console = try PQConnection(proxy.connectionString(database: "switchyard"))
            let clients = try console.query("SHOW CLIENTS;")
            // The open session shows as idle in transaction with its backend pid.
            let row = try #require(clients.first { $0[10] == "\(conn.backendPID)" })
            #expect(row[1] == "postgres")
            #expect(row[2] == "postgres")
            #expect(row[5] == "idle in transaction")
            let servers = try console.query("show servers")
            #expect(servers.contains { $0[4] == "\(conn.backendPID)" })
            let stats = try console.query("SHOW STATS")
            #expect(Int(stats[0][4] ?? "") ?? 0 >= 2, "total_statements")
            let config = try console.query("SHOW CONFIG")
            #expect(config.contains { $0[0] == "max_message_size" })
            #expect(try console.query("SHOW VERSION")[0][0]?.hasPrefix("Switchyard ") == true)
            #expect(throws: PQConnection.Failure.self) { try console.query("SHOW NONSENSE") }
            do {
                try console.query("DROP TABLE x")
            } catch let e as PQConnection.Failure {
                #expect(e.sqlState == "42601")
            }
            // The console stays usable after errors.
            #expect(try console.query("show help").count >= 5)
        }
    }

    @Test("access is controlled by admin_console.users and .password")
    func accessControl() throws {
        try ProxyFixture.with(configure: { $0.adminConsole = .init(users: ["md5_user"], password: "console-secret") }) { proxy in
            do {
                _ = try PQConnection(proxy.connectionString(database: "switchyard"))
                Issue.record("postgres was let into the console")
            } catch let e as PQConnection.Failure {
                #expect(e.message.contains("not allowed to use the Switchyard admin console"))
            }
            #expect(throws: PQConnection.Failure.self) {
                try PQConnection(proxy.connectionString(user: "md5_user", database: "switchyard", password: "wrong"))
            }
            let console = try PQConnection(proxy.connectionString(user: "md5_user", database: "switchyard", password: "console-secret"))
            #expect(try console.query("show version").count == 1)
            // With a password set, /metrics asks for it too (HTTP Basic, a user of admin_console.users); /health does not.
            let port = try #require(proxy.adminPort)
            func basic(_ credentials: String) -> [String] { ["Authorization: Basic " + Data(credentials.utf8).base64EncodedString()] }
            let refused = try httpGet(port: port, path: "/metrics")
            #expect(refused.status == 401 && refused.body.contains("authentication required"), "\(refused)")
            #expect(try httpGet(port: port, path: "/metrics", headers: basic("md5_user:wrong")).status == 401)
            #expect(try httpGet(port: port, path: "/metrics", headers: basic("postgres:console-secret")).status == 401)
            let allowed = try httpGet(port: port, path: "/metrics", headers: basic("md5_user:console-secret"))
            #expect(allowed.status == 200 && allowed.body.contains("switchyard_clients_active"), "\(allowed.status)")
            #expect(!allowed.body.contains("console-secret"))
            #expect(try httpGet(port: port, path: "/health").status == 200)
            // SHOW CONFIG never shows the secret.
            let shown = try console.query("show config").map { $0.compactMap { $0 }.joined(separator: "=") }.joined(separator: "\n")
            #expect(shown.contains("admin_console.password=********") && !shown.contains("console-secret"), "\(shown)")
        }
    }

    @Test("without a password the console takes local clients only", arguments: [
        ("127.0.0.1:50000", true), ("127.8.9.10:1", true), ("::1:50000", true), ("unix", true),
        ("10.0.0.5:50000", false), ("192.168.1.2:5432", false), ("2001:db8::1:5432", false),
    ])
    func localOnly(address: String, local: Bool) {
        #expect(AdminConsoleSession.isLocal(address) == local)
    }

    @Test("/metrics serves Prometheus text with connection, byte, statement and latency series")
    func metrics() throws {
        try ProxyFixture.with { proxy in
            let conn = try PQConnection(proxy.connectionString())
            for i in 0..<20 { try conn.query("select \(i)") }
            let port = try #require(proxy.adminPort)
            let (status, text) = try httpGet(port: port, path: "/metrics")
            #expect(status == 200)
            for name in ["switchyard_client_connections_total", "switchyard_clients_active", "switchyard_client_bytes_received_total",
                         "switchyard_server_bytes_received_total", "switchyard_statements_total",
                         "switchyard_request_duration_seconds_bucket", "switchyard_request_duration_seconds_count"] {
                #expect(text.contains(name), "missing \(name)")
            }
            let count = text.split(separator: "\n").first { $0.hasPrefix("switchyard_request_duration_seconds_count") }
            let value = Int(count?.split(separator: " ").last ?? "") ?? 0
            #expect(value >= 20)
            #expect(try httpGet(port: port, path: "/nope").status == 404)
        }
    }
}
