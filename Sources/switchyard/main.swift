// The switchyard command: serve the proxy, check a configuration, move flags, backfill and verify migrations.
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
        subcommands: [Serve.self, CheckConfig.self, Check.self, Flag.self, Backfill.self, Verify.self, Report.self],
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
        // The certificates and keys are loaded as serve would load them, so a key that is not the
        // certificate's, or a file that is not PEM, is found here too.
        do {
            _ = try TLSSettings(config)
        } catch {
            FileHandle.standardError.write(Data("switchyard: config error: TLS: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for line in config.summaryLines() {
            print("\(line.key) = \(line.value)")
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the migrations against the live database: relations, columns, keys and mapping expressions. Exits 1 on any error.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadOrExit(options)
        let findings = try controlOrExit { () throws(ControlError) in try MigrationCheck.run(config) }
        for f in findings { print(f) }
        let errors = findings.filter { $0.level == .error }.count
        let warnings = findings.filter { $0.level == .warning }.count
        print("\(errors) error(s), \(warnings) warning(s)")
        if errors > 0 { throw ExitCode(1) }
    }
}

struct Flag: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read and move feature flags in the control schema, for every running instance.",
        subcommands: [FlagList.self, FlagSet.self, FlagHistory.self])
}

struct FlagList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show each flag's stage and canary share.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadOrExit(options)
        let flags = try controlOrExit { () throws(ControlError) in try FlagAdmin.list(config) }
        print("name\tmigration\tstage\tpercent\tupdated_at\tupdated_by\twhy")
        for f in flags {
            print("\(f.name)\t\(f.migration)\t\(f.stage.rawValue)\t\(ConfigValues.describe(basisPoints: f.percentBasisPoints))\t\(f.updatedAt)"
                + "\t\(f.updatedBy ?? "")\t\(f.updatedWhy)")
        }
    }
}

struct FlagSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Move a flag to a stage (off, dual_write, shadow, canary, live, complete), optionally with a canary percent.")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The flag's name.") var name: String
    @Argument(help: "off, dual_write, shadow, canary, live or complete.") var stage: String
    @Argument(help: "Canary share, 0-100 with up to two decimals (kept when omitted).") var percent: String?
    @Option(help: "Why: recorded in the flag history.") var why: String = ""

    func run() throws {
        let config = try loadOrExit(options)
        let parsedStage: FlagStage
        let basisPoints: Int?
        do {
            parsedStage = try FlagStage.parse(stage)
            basisPoints = try percent.map { p throws(ConfigError) in try ConfigValues.percentBasisPoints(p, key: "percent") }
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        let by = "\(ProcessInfo.processInfo.environment["USER"] ?? "unknown") (switchyard flag set)"
        let flag = try controlOrExit { () throws(ControlError) in
            try FlagAdmin.set(config, name: name, stage: parsedStage, percentBasisPoints: basisPoints, by: by, why: why)
        }
        print("\(flag.name): \(flag.stage.rawValue) \(ConfigValues.describe(basisPoints: flag.percentBasisPoints))")
    }
}

struct FlagHistory: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show recent flips: when, from, to, by whom, why.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "How many flips to show.") var limit: Int = 50

    func run() throws {
        let config = try loadOrExit(options)
        let flips = try controlOrExit { () throws(ControlError) in try FlagAdmin.history(config, limit: limit) }
        print("at\tflag\tfrom\tto\tby\twhy")
        for f in flips { print("\(f.at)\t\(f.flag)\t\(f.from)\t\(f.to)\t\(f.by)\t\(f.why)") }
    }
}

/// A control-database error exits with status 1 and the server's words.
func controlOrExit<T>(_ body: () throws(ControlError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Usage errors (a bad option, a missing argument) exit 2 for backfill and verify, as their configuration
/// errors do: scripts gate on their other statuses (verify's 1 means "different").
func main() {
    do {
        var command: any ParsableCommand = try Switchyard.parseAsRoot()
        try command.run()
    } catch {
        if Switchyard.exitCode(for: error) == .validationFailure,
           let name = CommandLine.arguments.dropFirst().first, ["backfill", "verify"].contains(name) {
            FileHandle.standardError.write(Data((Switchyard.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
        Switchyard.exit(withError: error)
    }
}

main()
