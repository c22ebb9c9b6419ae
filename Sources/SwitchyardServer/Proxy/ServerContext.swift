// What every session shares: the current configuration, stats, the registry and the logger.
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardIO

/// The settings a session reads when it starts. Replaced as a whole on reload,
/// so a session never sees half of an old config and half of a new one.
public struct SessionSettings: Sendable {
    public var config: SwitchyardConfiguration
    public var upstreamAddress: SocketAddress
    public var tls: TLSSettings

    public init(config: SwitchyardConfiguration) throws(SettingsError) {
        self.config = config
        do {
            self.upstreamAddress = try SocketAddress.resolve(host: config.upstream.host, port: config.upstream.port)
        } catch {
            throw .upstream(error)
        }
        do {
            self.tls = try TLSSettings(config)
        } catch {
            throw .tls(error)
        }
    }
}

/// Why settings could not be built from a configuration that read correctly.
public enum SettingsError: Error, Sendable, CustomStringConvertible {
    case upstream(SocketError)
    case tls(TLSError)

    public var description: String {
        switch self {
        case let .upstream(error): "cannot resolve the upstream: \(error.reason)"
        case let .tls(error): "TLS: \(error)"
        }
    }
}

public final class ServerContext: Sendable {
    private let current: Mutex<SessionSettings>
    public let stats: ServerStats
    public let registry = SessionRegistry()
    public let routing: RoutingHub
    public let logger: Logger
    public let clock: any ClockSource
    /// Set once shutdown begins: sessions close when idle and no new ones start.
    public let shuttingDown = Atomic<Bool>(false)
    /// Keeps flags in step with the control schema, when flags are configured.
    let control = Mutex<ControlSync?>(nil)
    /// Shadow reads: the samplers per flag and the side connections answering both paths,
    /// when flags are configured.
    let shadow = Mutex<ShadowReads?>(nil)

    /// Installed by the server: re-reads the config file (the console's RELOAD, SIGHUP).
    let reloadHandler = Mutex<(@Sendable () -> Result<String, ReloadError>)?>(nil)

    public init(settings: SessionSettings, loops: Int, logger: Logger, clock: any ClockSource = SystemClock()) {
        current = Mutex(settings)
        stats = ServerStats(loops: loops)
        routing = RoutingHub(loops: loops)
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

    /// Moves a flag for every instance: through the control schema when it is in use,
    /// else in this process only. Blocks on the network: never call it on an event loop.
    func changeFlag(_ name: String, stage: FlagStage, percentBasisPoints: Int?, by: String, why: String) throws(ControlError) -> String {
        let config = settings.config
        let describe = { (stage: FlagStage, bp: Int) in "\(stage.rawValue) \(ConfigValues.describe(basisPoints: bp))" }
        if control.withLock({ $0 }) != nil {
            let (connection, store) = try ControlSync.open(config)
            let flag = try store.setFlag(connection, name: name, stage: stage, percentBasisPoints: percentBasisPoints, by: by, why: why)
            try routing.applyStored { () throws(ControlError) in try store.load(connection) }
            logger.notice("flag changed", metadata: ["flag": "\(name)", "to": "\(describe(flag.stage, flag.percentBasisPoints))", "by": "\(by)"])
            return "flag \(name) is now \(describe(flag.stage, flag.percentBasisPoints)) for every instance"
        }
        do {
            let flag = try routing.setFlag(name, stage: stage, percentBasisPoints: percentBasisPoints)
            logger.notice("flag changed in this instance only", metadata: ["flag": "\(name)", "to": "\(describe(flag.stage, flag.percentBasisPoints))", "by": "\(by)"])
            return "flag \(name) is now \(describe(flag.stage, flag.percentBasisPoints)) in this instance (no control schema)"
        } catch {
            throw ControlError(message: error.description, sqlState: "42704")
        }
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

/// The sampling decisions and the side connections of shadow reads.
final class ShadowReads: Sendable {
    let reader: ShadowReader
    let samplers: ShadowSamplers

    init(reader: ShadowReader, samplers: ShadowSamplers) {
        self.reader = reader
        self.samplers = samplers
    }
}
