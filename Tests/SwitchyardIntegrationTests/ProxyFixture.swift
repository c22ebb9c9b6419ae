// Starts an in-process Switchyard in front of the test PostgreSQL cluster.
import Foundation
import Logging
import SwitchyardConfig
import SwitchyardServer
import SwitchyardTestSupport

/// A running proxy on a free port, pointed at a real PostgreSQL. Stopped by `stop()`.
final class ProxyFixture: Sendable {
    let cluster: PostgresCluster
    let server: SwitchyardServer
    var port: Int { server.port }
    var adminPort: Int? { server.adminPort }

    init(cluster: PostgresCluster? = nil, configure: (inout SwitchyardConfiguration) -> Void = { _ in }) throws {
        let cluster = try cluster ?? PostgresCluster.shared()
        self.cluster = cluster
        var config = SwitchyardConfiguration(upstream: try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres"))
        config.listen = HostPort(host: "127.0.0.1", port: 0)
        config.adminListen = HostPort(host: "127.0.0.1", port: 0)
        config.shutdownTimeout = .seconds(5)
        configure(&config)
        var logger = Logger(label: "switchyard-test")
        logger.logLevel = .warning
        server = try SwitchyardServer(config: config, logger: logger)
        server.start()
    }

    func stop() {
        server.shutdown(timeout: .seconds(5))
    }

    /// psql through the proxy.
    func psql(_ sql: String, database: String = "postgres", user: String = "postgres", password: String? = nil) throws -> String {
        try cluster.psql(sql, database: database, user: user, port: port, password: password)
    }

    /// A libpq connection string through the proxy.
    func connectionString(user: String = "postgres", database: String = "postgres", password: String? = nil) -> String {
        var s = "host=127.0.0.1 port=\(port) user=\(user) dbname=\(database) connect_timeout=10 sslmode=disable"
        if let password { s += " password=\(password)" }
        return s
    }

    /// Runs `body` with a proxy and always stops it.
    static func with<T>(configure: (inout SwitchyardConfiguration) -> Void = { _ in }, _ body: (ProxyFixture) throws -> T) throws -> T {
        let proxy = try ProxyFixture(configure: configure)
        defer { proxy.stop() }
        return try body(proxy)
    }
}
