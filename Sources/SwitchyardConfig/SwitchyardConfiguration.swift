// The configuration model: every setting Switchyard reads, with its default.

/// TCP keepalive on client and upstream sockets, so dead peers behind NAT or firewalls are noticed.
public struct TCPKeepalive: Sendable, Equatable {
    public var enabled: Bool
    /// Idle time before the first probe (TCP_KEEPIDLE). Whole seconds, 1s...32767s.
    public var idle: Duration
    /// Time between probes (TCP_KEEPINTVL). Whole seconds, 1s...32767s.
    public var interval: Duration
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT), 1...127.
    public var count: Int

    public init(enabled: Bool = true, idle: Duration = .seconds(60), interval: Duration = .seconds(10), count: Int = 6) {
        self.enabled = enabled
        self.idle = idle
        self.interval = interval
        self.count = count
    }
}

/// Who may use the admin console (the virtual "switchyard" database).
public struct AdminConsoleConfig: Sendable, Equatable {
    /// User names allowed to connect; an empty list disables the console for everyone.
    public var users: [String]
    /// The console's password; nil means the console accepts these users without one.
    public var password: String?

    public init(users: [String] = ["postgres"], password: String? = nil) {
        self.users = users
        self.password = password
    }
}

public enum LogFormat: String, Sendable {
    case text, json
}

public struct LogConfig: Sendable, Equatable {
    /// The accepted levels, from most to least verbose (swift-log's names).
    public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// One of `levels`.
    public var level: String
    public var format: LogFormat

    public init(level: String = "info", format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}

/// The complete, validated configuration. Keys in comments are the YAML key paths.
public struct SwitchyardConfiguration: Sendable, Equatable {
    /// listen: where clients connect.
    public var listen: HostPort
    /// upstream: the PostgreSQL server, required.
    public var upstream: UpstreamURI
    /// admin_listen: the HTTP metrics/health endpoint; nil when disabled.
    public var adminListen: HostPort?
    /// workers: event-loop threads; 0 means ``defaultWorkers(cores:)``.
    public var workers: Int
    /// max_client_connections: clients beyond this are refused.
    public var maxClientConnections: Int
    /// max_message_size: the largest protocol message accepted, in bytes.
    public var maxMessageSize: Int
    /// Whether a session runs the reads a flag routes (on either path) as statements it prepares
    /// on its server connection, one per query shape and path (`PREPARE` once, then `EXECUTE`
    /// with the statement's integer constants), rather than as texts PostgreSQL plans each time.
    public var prepareRoutedReads: Bool
    /// startup_timeout: a client that connects and sends no startup message in time is dropped.
    public var startupTimeout: Duration
    /// connect_timeout: connecting to the upstream.
    public var connectTimeout: Duration
    /// shutdown_timeout: how long SIGTERM waits for transactions in flight.
    public var shutdownTimeout: Duration
    /// client_idle_timeout: a client idle outside a transaction this long is closed; zero is off.
    public var clientIdleTimeout: Duration
    /// idle_transaction_timeout: a client idle inside a transaction this long is closed (its upstream
    /// transaction rolls back); zero is off.
    public var idleTransactionTimeout: Duration
    /// tcp_keepalive
    public var tcpKeepalive: TCPKeepalive
    /// admin_console
    public var adminConsole: AdminConsoleConfig
    /// log
    public var log: LogConfig
    /// shadow_reads: the side connections that answer sampled reads on both paths.
    public var shadowReads: ShadowReadsConfig
    /// migrations: the schema migrations Switchyard keeps in step, in file order. Default none.
    public var migrations: [MigrationConfig]
    /// flags: the rollout state of each migration, in file order. Default none.
    public var flags: [FlagConfig]
    /// control: where flag state, history and divergences are kept.
    public var control: ControlConfig
    /// client_tls: TLS between applications and Switchyard.
    public var clientTLS: ClientTLSConfig
    /// server_tls: TLS between Switchyard and PostgreSQL.
    public var serverTLS: ServerTLSConfig

    public static let defaultListen = HostPort(host: "127.0.0.1", port: 6432)
    public static let defaultAdminListen = HostPort(host: "127.0.0.1", port: 9187)
    public static let defaultMaxMessageSize = 1 << 30
    public static let maxMessageSizeRange = 1024...Int(Int32.max)
    public static let workersRange = 0...256

    /// Event loops when `workers` is 0: half the cores, at least one. A proxy shares its host
    /// with the database or the application far more often than not, so it leaves them cores.
    public static func defaultWorkers(cores: Int) -> Int { max(1, cores / 2) }

    /// Every setting at its default.
    public init(upstream: UpstreamURI) {
        self.listen = Self.defaultListen
        self.upstream = upstream
        self.adminListen = Self.defaultAdminListen
        self.workers = 0
        self.maxClientConnections = 2000
        self.maxMessageSize = Self.defaultMaxMessageSize
        self.prepareRoutedReads = true
        self.startupTimeout = .seconds(10)
        self.connectTimeout = .seconds(5)
        self.shutdownTimeout = .seconds(30)
        self.clientIdleTimeout = .zero
        self.idleTransactionTimeout = .zero
        self.tcpKeepalive = TCPKeepalive()
        self.adminConsole = AdminConsoleConfig()
        self.log = LogConfig()
        self.shadowReads = ShadowReadsConfig()
        self.migrations = []
        self.flags = []
        self.control = ControlConfig()
        self.clientTLS = ClientTLSConfig()
        self.serverTLS = ServerTLSConfig()
    }
}

/// Command-line flags that override the file. Each is the flag's raw text, parsed like the file's value.
public struct ConfigOverrides: Sendable, Equatable {
    /// --listen
    public var listen: String?
    /// --upstream
    public var upstream: String?
    /// --admin-listen ("off" disables)
    public var adminListen: String?

    public init(listen: String? = nil, upstream: String? = nil, adminListen: String? = nil) {
        self.listen = listen
        self.upstream = upstream
        self.adminListen = adminListen
    }
}
