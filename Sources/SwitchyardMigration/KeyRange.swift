// Ranges of primary-key values, and the SQL predicates that select them with row-value comparisons.

/// The keys above `lower` (exclusive) up to `upper` (inclusive), each a key's column values as text in key
/// order; nil is unbounded. Ranges built this way from consecutive bounds cover every key exactly once,
/// so chunks of a verify leave no gap for a key that exists on one side only.
public struct KeyRange: Sendable, Hashable, CustomStringConvertible {
    public var lower: [String]?
    public var upper: [String]?

    /// Every key.
    public static let all = KeyRange(lower: nil, upper: nil)

    public init(lower: [String]?, upper: [String]?) {
        self.lower = lower
        self.upper = upper
    }

    /// "after (eu, 500) up to (us, 17)", "from the first key up to (eu, 12)", "after (us, 17) to the last key".
    public var description: String {
        let from = lower.map { "after \(KeyRange.describe($0))" } ?? "from the first key"
        let to = upper.map { "up to \(KeyRange.describe($0))" } ?? "to the last key"
        return "\(from) \(to)"
    }

    /// A key as people write a row value: `(eu, 500)`, or `17` for a one-column key.
    public static func describe(_ key: [String]) -> String {
        key.count == 1 ? key[0] : "(" + key.joined(separator: ", ") + ")"
    }

    /// The predicate selecting this range from `columns` (SQL expressions, in key order), comparing them as
    /// one row value with parameters cast to `types`; nil when the range is unbounded on both sides.
    /// A row-value comparison `(a, b) > ($1, $2)` is what a multi-column btree index answers directly.
    func predicate(columns: [String], types: [String], parameters: inout ParameterList) -> String? {
        precondition(columns.count == types.count, "one type per key column")
        var conditions: [String] = []
        for (bound, op) in [(lower, ">"), (upper, "<=")] {
            guard let bound else { continue }
            precondition(bound.count == columns.count, "a key bound has one value per key column")
            let values = zip(bound, types).map { parameters.add($0, as: $1) }
            conditions.append("\(Self.row(columns)) \(op) \(Self.row(values))")
        }
        return conditions.isEmpty ? nil : conditions.joined(separator: " AND ")
    }

    /// `(a, b)` for several expressions, `a` alone for one.
    static func row(_ items: [String]) -> String {
        items.count == 1 ? items[0] : "(" + items.joined(separator: ", ") + ")"
    }
}
