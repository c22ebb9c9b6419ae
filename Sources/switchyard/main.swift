// The switchyard command: serve the proxy, or check a configuration file.
import ArgumentParser
import Foundation
import Glibc
import Logging
import SwitchyardConfig
import SwitchyardIO
import SwitchyardServer

struct Switchyard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A PostgreSQL wire-protocol proxy for provable, zero-downtime schema migrations.",
        version: SwitchyardVersion.string,
        subcommands: [Serve.self, CheckConfig.self],
        defaultSubcommand: Serve.self)
}

/// Flags shared by the commands that read a configuration. Their names match the YAML keys.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Path of the YAML configuration file (see proxy-config/switchyard.yaml).")
    var config: String?

    @Option(name: .long, help: "Address to accept clients on, HOST:PORT (overrides `listen`).")
    var listen: String?

    @Option(name: .long, help: "The PostgreSQL server, as a libpq URI postgresql://HOST:PORT/DB (overrides `upstream`).")
    var upstream: String?

    @Option(name: .customLong("admin-listen"), help: "Address of the admin HTTP port for /metrics, HOST:PORT or off (overrides `admin_listen`).")
    var adminListen: String?

    var overrides: ConfigOverrides {
        ConfigOverrides(listen: listen, upstream: upstream, adminListen: adminListen)
    }

    func load() throws(ConfigError) -> SwitchyardConfiguration {
        if let config { return try ConfigLoader.load(path: config, overrides: overrides) }
        return try ConfigLoader.fromOverrides(overrides)
    }
}

/// A configuration error exits with status 2 and names the key and line.
func loadOrExit(_ options: ConfigOptions) throws -> SwitchyardConfiguration {
    do {
        return try options.load()
    } catch {
        FileHandle.standardError.write(Data("switchyard: config error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        // Block the signals before any thread starts, so only the signalfd sees them.
        let signals = try SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP])
        let config = try loadOrExit(options)
        let level = Logger.Level(rawValue: config.log.level) ?? .info
        let format: StructuredLogHandler.Format = config.log.format == .json ? .json : .text
        LoggingSystem.bootstrap { StructuredLogHandler(label: $0, format: format, level: level) }
        let logger = Logger(label: "switchyard")

        let options = self.options
        let reload: (@Sendable () throws -> SwitchyardConfiguration)? = options.config == nil ? nil : { @Sendable in
            try options.load()
        }
        let server: SwitchyardServer
        do {
            server = try SwitchyardServer(config: config, logger: logger, reload: reload)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        server.start()
        while true {
            guard let signal = signals.wait(timeoutMs: 1000) else { continue }
            switch signal {
            case SIGHUP:
                logger.notice("SIGHUP: reloading the configuration")
                _ = server.reload()
            default:
                let timeout = server.context.settings.config.shutdownTimeout
                // A second SIGINT/SIGTERM during the graceful wait stops at once.
                let forced = Thread {
                    while true {
                        if let s = signals.wait(timeoutMs: 500), s != SIGHUP {
                            logger.warning("second signal: stopping now")
                            Glibc.exit(1)
                        }
                    }
                }
                forced.start()
                server.shutdown(timeout: timeout)
                return
            }
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file and print the settings it gives; exit 2 if it is invalid.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadOrExit(options)
        for line in config.summaryLines() {
            print("\(line.key) = \(line.value)")
        }
    }
}

Switchyard.main()
