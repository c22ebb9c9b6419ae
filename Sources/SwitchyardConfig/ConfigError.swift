// The single error type of configuration loading: where the problem is (file, line, key) and what is wrong.

/// A configuration problem, pointing at the file, line and key so an operator can fix it without guessing.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file's path, when the setting came from a file.
    public var file: String?
    /// The 1-based line of the offending key or value; nil for command-line flags and missing keys.
    public var line: Int?
    /// The dotted key path (e.g. "tcp_keepalive.idle"), or the flag name (e.g. "--listen") for overrides.
    public var key: String
    /// What is wrong and what is accepted.
    public var message: String

    public init(file: String? = nil, line: Int? = nil, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    /// "switchyard.yaml:12: tcp_keepalive.idle: expected ...", the compiler-style form editors can jump to.
    public var description: String {
        var prefix = ""
        switch (file, line) {
        case let (file?, line?): prefix = "\(file):\(line): "
        case let (file?, nil): prefix = "\(file): "
        // Without a file a bare number would read as part of the message, so say what it is.
        case let (nil, line?): prefix = "line \(line): "
        case (nil, nil): break
        }
        return "\(prefix)\(key): \(message)"
    }

    /// The same error, attributed to a position; used when a value parser that knows no positions fails.
    func located(file: String?, line: Int?) -> ConfigError {
        var copy = self
        copy.file = file
        copy.line = line
        return copy
    }

    /// The same error, reported under another key (a flag name instead of the YAML key).
    func renamed(to key: String) -> ConfigError {
        var copy = self
        copy.key = key
        return copy
    }
}
