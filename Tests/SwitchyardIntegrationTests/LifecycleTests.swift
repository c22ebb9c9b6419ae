// The switchyard binary: config errors, graceful SIGTERM, and SIGHUP reload.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite("Process lifecycle", .serialized)
struct LifecycleTests {
    static func writeConfig(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "switchyard-test-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func config(port: Int, cluster: PostgresCluster, extra: String = "") -> String {
        """
        listen: 127.0.0.1:\(port)
        upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres
        admin_listen: off
        shutdown_timeout: 10s
        \(extra)
        """
    }

    @Test("a config error names the key and line and exits with status 2")
    func configErrorExits2() throws {
        let path = try Self.writeConfig("listen: 127.0.0.1:6432\nupstream: postgresql://127.0.0.1:5432/postgres\nshutdown_timeout: soon\n")
        defer { unlink(path) }
        let result = try runProcess(try switchyardBinaryPath, ["serve", "--config", path], timeout: .seconds(30))
        #expect(result.status == 2)
        #expect(result.stderr.contains("shutdown_timeout"))
        #expect(result.stderr.contains(":3:"), "\(result.stderr)")
        let flag = try runProcess(try switchyardBinaryPath, ["serve", "--upstream", "mysql://nope"], timeout: .seconds(30))
        #expect(flag.status == 2)
        #expect(flag.stderr.contains("--upstream"))
    }

    @Test("SIGTERM stops accepting, lets an open transaction commit, then exits 0")
    func gracefulShutdown() throws {
        let cluster = try PostgresCluster.shared()
        let port = freeTCPPort()
        let path = try Self.writeConfig(Self.config(port: port, cluster: cluster))
        defer { unlink(path) }
        let logPath = path + ".log"
        let proxy = try ChildProcess.start(executable: try switchyardBinaryPath, arguments: ["serve", "--config", path], stdoutPath: logPath)
        defer { _ = proxy.terminate(); unlink(logPath) }
        try waitForTCPPort(port, timeout: .seconds(20))
        let conninfo = "host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=disable connect_timeout=5"
        _ = try cluster.psql("drop table if exists graceful; create table graceful (id int)")
        let inTx = try PQConnection(conninfo)
        let idle = try PQConnection(conninfo)
        try inTx.query("begin; insert into graceful values (1)")
        #expect(proxy.sendSignal(SIGTERM))
        usleep(500_000)
        // New sessions are refused while shutting down.
        #expect(throws: PQConnection.Failure.self) { try PQConnection(conninfo) }
        // The idle session was closed; the one in a transaction may finish.
        #expect(throws: PQConnection.Failure.self) { try idle.query("select 1") }
        try inTx.query("insert into graceful values (2); commit")
        #expect(proxy.waitForExit(timeout: .seconds(10)) == 0)
        #expect(try cluster.psql("select count(*) from graceful") == "2")
        _ = try cluster.psql("drop table graceful")
    }

    @Test("SIGTERM closes a transaction still open after shutdown_timeout")
    func shutdownTimeout() throws {
        let cluster = try PostgresCluster.shared()
        let port = freeTCPPort()
        let path = try Self.writeConfig(Self.config(port: port, cluster: cluster).replacingOccurrences(of: "shutdown_timeout: 10s", with: "shutdown_timeout: 1s"))
        defer { unlink(path) }
        let proxy = try ChildProcess.start(executable: try switchyardBinaryPath, arguments: ["serve", "--config", path])
        defer { _ = proxy.terminate() }
        try waitForTCPPort(port, timeout: .seconds(20))
        let conn = try PQConnection("host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=disable")
        try conn.query("begin")
        let started = Date()
        #expect(proxy.sendSignal(SIGTERM))
        #expect(proxy.waitForExit(timeout: .seconds(10)) == 0)
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(throws: PQConnection.Failure.self) { try conn.query("select 1") }
    }

    @Test("SIGHUP applies a good config and keeps the running one when the new one is bad")
    func reload() throws {
        let cluster = try PostgresCluster.shared()
        let port = freeTCPPort()
        let path = try Self.writeConfig(Self.config(port: port, cluster: cluster, extra: "admin_console:\n  users: [postgres]\n"))
        defer { unlink(path) }
        let logPath = path + ".log"
        let proxy = try ChildProcess.start(executable: try switchyardBinaryPath, arguments: ["serve", "--config", path], stdoutPath: logPath)
        defer { _ = proxy.terminate(); unlink(logPath) }
        try waitForTCPPort(port, timeout: .seconds(20))
        let conninfo = { (db: String, user: String) in "host=127.0.0.1 port=\(port) user=\(user) dbname=\(db) sslmode=disable" }
        #expect(try PQConnection(conninfo("switchyard", "postgres")).query("show version").count == 1)

        // A bad config: reported, the running one kept.
        try (Self.config(port: port, cluster: cluster) + "\nmax_client_connections: many\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(proxy.sendSignal(SIGHUP))
        usleep(700_000)
        #expect(proxy.isRunning)
        #expect(try PQConnection(conninfo("postgres", "postgres")).query("select 1") == [["1"]])
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(log.contains("max_client_connections"), "\(log)")

        // A good config that moves the console to another user takes effect for new sessions.
        try Self.config(port: port, cluster: cluster, extra: "admin_console:\n  users: [switchyard]\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(proxy.sendSignal(SIGHUP))
        usleep(700_000)
        #expect(throws: PQConnection.Failure.self) { try PQConnection(conninfo("switchyard", "postgres")) }
        #expect(try PQConnection(conninfo("switchyard", "switchyard")).query("show version").count == 1)
        #expect(proxy.sendSignal(SIGTERM))
        #expect(proxy.waitForExit(timeout: .seconds(15)) == 0)
    }
}
