// `switchyard verify`: prove that the new relation holds the old one's data through the forward mapping.
import ArgumentParser
import Foundation
import Logging
import SwitchyardConfig
import SwitchyardServer

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the old and new relations through the forward mapping, online, and name the keys that differ.",
        discussion: """
            Chunks of old rows in key order are compared by count and checksum, each in one REPEATABLE READ \
            snapshot, so writes mirrored by the proxy never show as differences. A differing chunk is split \
            down to ranges of at most 64 rows and compared row by row to name its keys: missing in new, extra \
            in new, or different values. The result is recorded in the control schema's verify_runs table.

            Exit status: 0 equal, 1 different, 2 configuration or usage error, 3 database error.
            """)

    @OptionGroup var options: ConfigOptions
    @Argument(help: "The migration's name (migrations[].name).") var migration: String
    @Option(help: "Old rows per chunk.") var chunkSize: Int = 1000
    @Option(help: "Name at most this many differing keys (every differing chunk is still counted).") var maxKeys: Int = 100

    func run() throws {
        let config = try loadOrExit(options)
        guard chunkSize >= 1, maxKeys >= 0 else {
            FileHandle.standardError.write(Data("switchyard: --chunk-size must be at least 1 and --max-keys at least 0\n".utf8))
            throw ExitCode(2)
        }
        let logger = bootstrapLogging(config, label: "switchyard.verify")
        let report: VerifyReport
        do {
            report = try VerifyRunner.run(config, migration: migration, options: VerifyOptions(chunkSize: chunkSize, maxKeys: maxKeys),
                                          logger: logger)
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
            switch error.kind {
            case .usage, .refused: throw ExitCode(2)
            case .database, .gaveUp: throw ExitCode(3)
            }
        }
        for line in report.lines { print(line) }
        if !report.tally.equal { throw ExitCode(1) }
    }
}

/// Log lines go to standard error in the configured format, as the proxy writes them.
func bootstrapLogging(_ config: SwitchyardConfiguration, label: String) -> Logger {
    let level = Logger.Level(rawValue: config.log.level) ?? .info
    let format: StructuredLogHandler.Format = config.log.format == .json ? .json : .text
    LoggingSystem.bootstrap { StructuredLogHandler(label: $0, format: format, level: level) }
    return Logger(label: label)
}
