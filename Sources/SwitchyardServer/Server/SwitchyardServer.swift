// Starts and stops the proxy: loops, listener, admin HTTP port, reload and graceful shutdown.
import Foundation
import Glibc
import Logging
import Synchronization
import SwitchyardConfig
import SwitchyardIO

public enum ServerError: Error, Sendable, CustomStringConvertible {
    case cannotResolveUpstream(SocketError)
    case tls(TLSError)
    case cannotListen(address: String, SocketError)
    case eventLoop(SocketError)

    public var description: String {
        switch self {
        case let .cannotResolveUpstream(e): "cannot resolve the upstream: \(e.reason)"
        case let .tls(e): "cannot set up TLS: \(e)"
        case let .cannotListen(address, e): "cannot listen on \(address): \(e.reason)"
        case let .eventLoop(e): "cannot start event loops: \(e)"
        }
    }
}

/// The running proxy. `start` binds everything or fails without leaving anything half-open.
public final class SwitchyardServer: Sendable {
    public let context: ServerContext
    private let group: EventLoopGroup
    private let listener: Socket
    private let acceptor: Acceptor
    private let adminHTTP: AdminHTTPServer?
    /// The port the proxy listens on (useful with `listen: 127.0.0.1:0`).
    public let port: Int
    /// The admin HTTP port, when enabled.
    public let adminPort: Int?
    private let stopped = Atomic<Bool>(false)

    public init(config: SwitchyardConfiguration, logger: Logger, reload: (@Sendable () throws -> SwitchyardConfiguration)? = nil) throws(ServerError) {
        let settings: SessionSettings
        do {
            settings = try SessionSettings(config: config)
        } catch {
            switch error {
            case let .upstream(e): throw .cannotResolveUpstream(e)
            case let .tls(e): throw .tls(e)
            }
        }
        let loops = config.workers > 0 ? config.workers : SwitchyardConfiguration.defaultWorkers(cores: ProcessInfo.processInfo.activeProcessorCount)
        let context = ServerContext(settings: settings, loops: loops, logger: logger)
        self.context = context
        do { group = try EventLoopGroup(count: loops) } catch { throw .eventLoop(error) }
        do {
            listener = try Socket.listen(host: config.listen.host, port: config.listen.port)
        } catch {
            throw .cannotListen(address: config.listen.description, error)
        }
        port = listener.localPort
        acceptor = Acceptor(listener: listener, context: context, group: group)
        if let admin = config.adminListen {
            do {
                let http = try AdminHTTPServer(host: admin.host, port: admin.port, renderer: MetricsRenderer(
                    stats: context.stats, routing: context.routing, shadowCounters: { [context] in
                        context.shadow.withLock { $0 }.map { shadow in
                            var counters = shadow.reader.counters
                            counters.capped = shadow.samplers.capped
                            return counters
                        }
                    },
                    controlReachable: { [context] in context.control.withLock { $0 }?.healthy.load(ordering: .relaxed) }),
                    credentials: { [context] in context.settings.config.adminConsole }, logger: logger)
                adminHTTP = http
                adminPort = http.port
            } catch {
                listener.close()
                throw .cannotListen(address: admin.description, error)
            }
        } else {
            adminHTTP = nil
            adminPort = nil
        }
        if let reload {
            context.reloadHandler.withLock { [context] in
                $0 = { @Sendable in SwitchyardServer.applyReload(context: context, load: reload) }
            }
        }
    }

    public func start() {
        // A write to a socket whose peer has gone must fail with EPIPE, not kill the process:
        // plaintext sends pass MSG_NOSIGNAL, but OpenSSL writes TLS records with plain write().
        // PgBouncer and PostgreSQL ignore SIGPIPE for the same reason.
        signal(SIGPIPE, SIG_IGN)
        group.start()
        let loop = group.loops[0]
        let acceptor = self.acceptor
        let listener = self.listener
        loop.execute {
            do {
                try loop.register(fd: listener.fd, interest: .readable, handler: acceptor)
            } catch {
                acceptor.context.logger.critical("cannot watch the listening socket", metadata: ["error": "\(error)"])
            }
        }
        adminHTTP?.start()
        let config = context.settings.config
        if !config.flags.isEmpty {
            let context = self.context
            let routing = context.routing
            let reader = ShadowReader(upstream: config.upstream, settings: ShadowReader.Settings(config.shadowReads),
                                      logger: context.logger, onReport: { routing.recordShadowTimings($0) })
            context.shadow.withLock { $0 = ShadowReads(reader: reader, samplers: ShadowSamplers(flags: config.flags)) }
            reader.start()
            let sync = ControlSync(hub: context.routing, logger: context.logger, settings: { context.settings.config }, shadowTally: { flag in
                let t = reader.totals(flag: flag)
                return (t.divergent, t.same + t.divergent)
            }, evidence: {
                Evidence.rows(flags: context.settings.config.flags, latency: context.routing.latencySeries, reader: reader)
            })
            context.control.withLock { $0 = sync }
            sync.start()
        }
        context.logger.info("switchyard listening", metadata: [
            "listen": "\(config.listen.host):\(port)",
            "upstream": "\(config.upstream.redacted)",
            "admin_listen": "\(adminPort.map { "\(config.adminListen!.host):\($0)" } ?? "off")",
            "loops": "\(group.loops.count)",
        ])
    }

    /// Re-reads the configuration. A bad new config is reported and the running one kept.
    public func reload() -> Result<String, ReloadError> { context.reload() }

    static func applyReload(context: ServerContext, load: () throws -> SwitchyardConfiguration) -> Result<String, ReloadError> {
        let old = context.settings.config
        let new: SwitchyardConfiguration
        do {
            new = try load()
        } catch {
            context.logger.error("config reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
            return .failure(ReloadError(message: "reload failed, running configuration kept: \(error)"))
        }
        let settings: SessionSettings
        do {
            settings = try SessionSettings(config: new)
        } catch {
            context.logger.error("config reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
            return .failure(ReloadError(message: "reload failed, running configuration kept: \(error)"))
        }
        let restartOnly = old.restartRequiredChanges(to: new)
        var applied = new
        // Keys that need a restart keep their running values, so SHOW CONFIG tells the truth.
        applied.listen = old.listen
        applied.adminListen = old.adminListen
        applied.workers = old.workers
        var appliedSettings = settings
        appliedSettings.config = applied
        context.replaceSettings(appliedSettings)
        context.shadow.withLock { $0 }?.samplers.configure(applied.flags)
        var message = "configuration reloaded; new sessions use it"
        if !restartOnly.isEmpty {
            message += "; these keys change only on restart: \(restartOnly.joined(separator: ", "))"
        }
        context.logger.notice("config reloaded", metadata: ["restart_required": "\(restartOnly.joined(separator: ","))"])
        return .success(message)
    }

    /// Stops accepting, lets open transactions finish for up to `timeout`, then closes everything.
    public func shutdown(timeout: Duration) {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        context.logger.notice("shutting down: no new connections; waiting for transactions in flight", metadata: ["timeout": "\(timeout)"])
        context.shuttingDown.store(true, ordering: .releasing)
        let acceptorLoop = group.loops[0]
        let listener = self.listener
        acceptorLoop.execute {
            acceptorLoop.deregister(fd: listener.fd)
            listener.close()
        }
        for entry in context.registry.allEntries() {
            let target = entry.target
            entry.loop.execute { target.closeWhenIdle() }
        }
        let deadline = ContinuousClock.now + timeout
        while context.registry.count > 0 && ContinuousClock.now < deadline {
            usleep(20_000)
        }
        let remaining = context.registry.allEntries()
        if !remaining.isEmpty {
            context.logger.warning("shutdown_timeout reached; closing sessions still in a transaction", metadata: ["sessions": "\(remaining.count)"])
            for entry in remaining {
                let target = entry.target
                entry.loop.execute { target.forceClose(reason: "switchyard shutdown_timeout reached") }
            }
            let hardDeadline = ContinuousClock.now + .seconds(2)
            while context.registry.count > 0 && ContinuousClock.now < hardDeadline { usleep(10_000) }
        }
        adminHTTP?.stop()
        context.control.withLock { $0 }?.stop()
        context.shadow.withLock { $0 }?.reader.stop()
        group.stop()
        group.join()
        context.logger.notice("switchyard stopped")
    }
}
