// Shared helpers for the configuration tests: the example file's location and error assertions.

import Testing
import SwitchyardConfig

enum Fixture {
    /// The first line of most test documents, so the lines after it are numbered from 2.
    static let upstreamLine = "upstream: postgresql://switchyard@db.internal:5432/postgres"

    /// proxy-config/switchyard.yaml, found from this source file so it works from any working directory.
    static var examplePath: String { proxyConfigPath("switchyard.yaml") }

    /// proxy-config/migration-example.yaml.
    static var migrationExamplePath: String { proxyConfigPath("migration-example.yaml") }

    private static func proxyConfigPath(_ file: String) -> String {
        let components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        // .../Tests/SwitchyardConfigTests/TestSupport.swift -> the package root is three levels up.
        return (components.dropLast(3) + ["proxy-config", Substring(file)]).joined(separator: "/")
    }

    /// Parses and returns the error, recording an issue if parsing unexpectedly succeeded.
    static func error(
        _ yaml: String, file: String? = nil, overrides: ConfigOverrides = .init(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ConfigError? {
        do {
            let config = try ConfigLoader.parse(yaml: yaml, file: file, overrides: overrides)
            Issue.record("expected an error, got \(config)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    /// Parses `upstreamLine` followed by `body`.
    static func parse(_ body: String) throws(ConfigError) -> SwitchyardConfiguration {
        try ConfigLoader.parse(yaml: upstreamLine + "\n" + body)
    }
}

/// A document with a migration, its flag and the control section, one key per line, and variants of it
/// with single lines replaced, so each test case states the line it breaks and keeps every other line's number.
enum MigrationDocument {
    static let lines = [
        Fixture.upstreamLine,                      // 1
        "migrations:",                             // 2
        "  - name: users_v2",                      // 3
        "    old: public.users",                   // 4
        "    new: public.users_v2",                // 5
        "    key: [id]",                           // 6
        "    columns:",                            // 7
        "      id: id",                            // 8
        "      name: full_name",                   // 9
        "      created: { new: created_at, forward: \"created AT TIME ZONE 'UTC'\", "
            + "inverse: \"created_at AT TIME ZONE 'UTC'\" }",  // 10
        "    extra_new_columns:",                  // 11
        "      tenant_id: \"0\"",                // 12
        "flags:",                                  // 13
        "  - name: users_v2",                      // 14
        "    migration: users_v2",                 // 15
        "    stage: canary",                       // 16
        "    percent: 12.5",                       // 17
        "control:",                                // 18
        "  schema: switchyard",                    // 19
    ]

    static var text: String { lines.joined(separator: "\n") }

    /// The document with the given 1-based lines replaced; a replacement may span several lines.
    static func replacing(_ replacements: [Int: String]) -> String {
        var lines = lines
        for (number, text) in replacements {
            lines[number - 1] = text
        }
        return lines.joined(separator: "\n")
    }
}

/// A setting in YAML and the error it should produce.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var yaml: String
    var key: String
    var line: Int?
    var messageContains: String

    init(_ yaml: String, key: String, line: Int?, _ messageContains: String) {
        self.yaml = yaml
        self.key = key
        self.line = line
        self.messageContains = messageContains
    }

    var testDescription: String { yaml.replacingNewlines() }
}

extension String {
    func replacingNewlines() -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "⏎")
    }
}
