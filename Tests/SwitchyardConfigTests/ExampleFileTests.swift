// The documented example proxy-config/switchyard.yaml loads, sets every key, and matches the defaults.

import Foundation
import Testing
import SwitchyardConfig

@Suite("The example file and reading files")
struct ExampleFileTests {
    @Test("proxy-config/switchyard.yaml loads and holds the defaults")
    func exampleLoads() throws {
        let config = try ConfigLoader.load(path: Fixture.examplePath)
        let upstream = try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:5432/postgres")
        #expect(config.upstream == upstream)
        // The example documents the defaults, so apart from the required upstream and the illustrative
        // migration and flag it changes nothing.
        var withoutExamples = config
        withoutExamples.migrations = []
        withoutExamples.flags = []
        #expect(withoutExamples == SwitchyardConfiguration(upstream: upstream))
    }

    @Test("the example migration and flag are the documented ones, held at stage off")
    func exampleMigration() throws {
        let config = try ConfigLoader.load(path: Fixture.examplePath)
        #expect(config.migrations == [
            MigrationConfig(
                name: "users_v2", old: RelationName(name: "users"), new: RelationName(name: "users_v2"), key: ["id"],
                columns: [
                    ColumnMapping(oldColumn: "id", newColumn: "id"),
                    ColumnMapping(oldColumn: "name", newColumn: "full_name"),
                    ColumnMapping(oldColumn: "created", newColumn: "created_at",
                                  forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'"),
                ],
                extraNewColumns: [ExtraNewColumn(column: "tenant_id", expression: "0")]),
        ])
        // Every flag key at its default, written out.
        #expect(config.flags == [FlagConfig(name: "users_v2", migration: "users_v2")])
        #expect(config.flags[0].stage == .off)
    }

    @Test("the example file sets every key it documents")
    func exampleHasEveryKey() throws {
        let text = try String(contentsOfFile: Fixture.examplePath, encoding: .utf8)
        let config = try ConfigLoader.parse(yaml: text)
        for (key, _) in config.summaryLines() {
            let parts = key.split(separator: ".")
            #expect(text.contains("\n\(parts[0]):"), "\(parts[0]) missing")
            if parts[0] == "migrations" || parts[0] == "flags" {
                // One line per entry, under its name.
                #expect(text.contains("- name: \(parts[1])\n"), "\(key) missing")
            } else if parts.count == 2 {
                #expect(text.contains("\n  \(parts[1]):"), "\(key) missing")
            }
        }
        // The list entries' keys are documented too.
        for key in ["name", "old", "new", "key", "columns", "extra_new_columns",
                    "migration", "stage", "percent", "cohort_key", "salt", "routing"] {
            #expect(text.contains("\n    \(key):") || text.contains("- \(key):"), "\(key) missing")
        }
    }

    @Test("proxy-config/migration-example.yaml loads: users to users_v2 at canary 10%")
    func migrationExampleLoads() throws {
        let config = try ConfigLoader.load(path: Fixture.migrationExamplePath)
        #expect(config.upstream.database == "app")
        let migration = try #require(config.migrations.first)
        #expect(config.migrations.count == 1)
        #expect(migration.name == "users_v2")
        #expect(migration.old == RelationName(schema: "public", name: "users"))
        #expect(migration.new == RelationName(schema: "public", name: "users_v2"))
        #expect(migration.key == ["id"])
        #expect(migration.columns.map(\.oldColumn) == ["id", "email", "name", "created"])
        #expect(migration.column(old: "name") == ColumnMapping(oldColumn: "name", newColumn: "full_name"))
        #expect(migration.column(old: "created") == ColumnMapping(
            oldColumn: "created", newColumn: "created_at",
            forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'"))
        #expect(migration.extraNewColumns == [ExtraNewColumn(column: "tenant_id", expression: "0")])
        #expect(config.flags == [
            FlagConfig(name: "users_v2", migration: "users_v2", stage: .canary, percentBasisPoints: 1000,
                       shadow: FlagShadowConfig(samplePercentBasisPoints: 500),
                       guardrails: GuardrailConfig(maxDivergencePPM: 10_000, maxP99RatioHundredths: 200, maxErrorRateIncreasePPM: 10_000,
                                                   minSamples: 100)),
        ])
        #expect(config.control == ControlConfig())
        #expect(config.summaryLines().first { $0.key == "flags.users_v2" }?.value.hasPrefix("canary 10.00% ") == true)
    }

    @Test("an unreadable file is an error under the key config")
    func unreadableFile() throws {
        let missing = "/nonexistent/switchyard-\(UInt64.random(in: 0...UInt64.max)).yaml"
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: missing) }
        #expect(error.key == "config")
        #expect(error.file == missing)
        #expect(error.line == nil)
        #expect(error.message.contains("No such file or directory"))

        let directory = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: NSTemporaryDirectory()) }
        #expect(directory.key == "config")
        #expect(directory.message.contains("it is a directory"))
    }

    @Test("errors in a loaded file carry its path")
    func fileErrorsCarryPath() throws {
        let path = NSTemporaryDirectory() + "switchyard-config-test-\(UInt64.random(in: 0...UInt64.max)).yaml"
        try "\(Fixture.upstreamLine)\nworkers: lots\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error.description == "\(path):2: workers: expected a whole number from 0 (half the CPU cores) to 256, got \"lots\"")
    }

    @Test("a file that is not UTF-8 is refused")
    func notUTF8() throws {
        let path = NSTemporaryDirectory() + "switchyard-config-test-\(UInt64.random(in: 0...UInt64.max)).yaml"
        try Data([0x77, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error.key == "config")
        #expect(error.message.contains("not valid UTF-8"))
    }
}
