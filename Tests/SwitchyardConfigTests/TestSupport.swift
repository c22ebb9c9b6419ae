// Shared helpers for the configuration tests: the example file's location and error assertions.

import Testing
import SwitchyardConfig

enum Fixture {
    /// The first line of most test documents, so the lines after it are numbered from 2.
    static let upstreamLine = "upstream: postgresql://switchyard@db.internal:5432/postgres"

    /// proxy-config/switchyard.yaml, found from this source file so it works from any working directory.
    static var examplePath: String {
        let components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        // .../Tests/SwitchyardConfigTests/TestSupport.swift -> the package root is three levels up.
        return (components.dropLast(3) + ["proxy-config", "switchyard.yaml"]).joined(separator: "/")
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
