// What every session shares: the current configuration, stats, the registry and the logger.
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardIO

/// The settings a session reads when it starts. Replaced as a whole on reload,
/// so a session never sees half of an old config and half of a new one.
public struct SessionSettings: Sendable {
    public var config: SwitchyardConfiguration
    public var upstreamAddress: SocketAddress

    public init(config: SwitchyardConfiguration) throws(SocketError) {
        self.config = config
        self.upstreamAddress = try SocketAddress.resolve(host: config.upstream.host, port: config.upstream.port)
    }
}

public final class ServerContext: Sendable {
    private let current: Mutex<SessionSettings>
    public let stats: ServerStats
    public let registry = SessionRegistry()
    public let routing = RoutingHub()
    public let logger: Logger
    public let clock: any ClockSource
    /// Set once shutdown begins: sessions close when idle and no new ones start.
    public let shuttingDown = Atomic<Bool>(false)
    /// Installed by the server: re-reads the config file (the console's RELOAD, SIGHUP).
    let reloadHandler = Mutex<(@Sendable () -> Result<String, ReloadError>)?>(nil)

    public init(settings: SessionSettings, loops: Int, logger: Logger, clock: any ClockSource = SystemClock()) {
        current = Mutex(settings)
        stats = ServerStats(loops: loops)
        routing.load(settings.config)
        self.logger = logger
        self.clock = clock
    }

    public var settings: SessionSettings { current.withLock { $0 } }

    func reload() -> Result<String, ReloadError> {
        guard let handler = reloadHandler.withLock({ $0 }) else {
            return .failure(ReloadError(message: "this server was started without a config file; nothing to reload"))
        }
        return handler()
    }

    func replaceSettings(_ s: SessionSettings) {
        current.withLock { $0 = s }
        routing.load(s.config)
    }
}

public struct ReloadError: Error, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}
