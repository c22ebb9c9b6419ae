// An SQL text with its text parameters: what the pure builders hand to the code that talks to PostgreSQL.

/// One statement to run with the extended protocol: `$1`, `$2`, ... in `text` are `parameters`, all sent
/// as text (nil is SQL NULL); the text casts each one to the type it needs.
public struct SQLStatement: Sendable, Equatable, CustomStringConvertible {
    public var text: String
    public var parameters: [String?]

    public init(_ text: String, parameters: [String?] = []) {
        self.text = text
        self.parameters = parameters
    }

    public var description: String {
        parameters.isEmpty ? text : "\(text) -- parameters: \(parameters.map { $0 ?? "NULL" })"
    }
}

/// Collects parameters while a statement is built, handing out their `$n` placeholders.
struct ParameterList {
    private(set) var values: [String?] = []

    /// `$n::type` for a new parameter holding `value`.
    mutating func add(_ value: String?, as type: String) -> String {
        values.append(value)
        return "$\(values.count)::\(type)"
    }
}
