// Tells a real divergence from a query that does not agree with itself (now(), random(), LIMIT without a total order).

/// What kind of divergence a shadowed read showed; records are aggregated per kind.
public enum DivergenceKind: String, Sendable, CaseIterable, Comparable {
    /// Different column names, types or type modifiers.
    case columns
    /// Different rows.
    case rows
    /// The same rows in another order, where the query's ORDER BY asks for one.
    case order
    /// The new path failed where the old one answered.
    case error

    public static func < (a: DivergenceKind, b: DivergenceKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The server's error on the new path: its SQLSTATE and primary message.
public struct PathError: Sendable, Equatable, CustomStringConvertible {
    public var sqlState: String?
    public var message: String

    public init(sqlState: String?, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// How the new path's answer differed from the old path's.
public enum Divergence: Sendable, Equatable {
    case columns(ColumnDifference)
    case rows(RowDifference)
    case error(PathError)

    public var kind: DivergenceKind {
        switch self {
        case .columns: .columns
        case let .rows(difference): difference.orderOnly ? .order : .rows
        case .error: .error
        }
    }
}

/// The judgement on one shadowed read.
public enum ShadowVerdict: Sendable, Equatable {
    case same
    case divergent(Divergence)
    /// The old path disagrees with itself (now or before): its rows say nothing about the new path.
    case nondeterministic
}

/// Diffy's noise calibration: a read whose old path, run twice in one snapshot, gives two answers is
/// nondeterministic, and a difference between its old and new answers is noise, not a divergence.
public enum NoiseClassifier {
    /// - Parameters:
    ///   - old: the old path's answer.
    ///   - calibration: the old path's second answer in the same snapshot, when the sample was calibrated.
    ///   - new: the new path's answer.
    ///   - ordered: the query's ORDER BY asks for an order (see ``ResultComparison/compare(old:new:ordered:sampleLimit:)``).
    ///   - knownNondeterministic: the fingerprint was found nondeterministic before (``NoiseRegistry``).
    /// Column differences are always divergences: a query's result shape does not depend on the data.
    /// Otherwise a query known or found nondeterministic is `.nondeterministic`, whatever its rows:
    /// an equal answer would be luck as much as a different one would be noise.
    public static func classify(
        old: QueryResult, calibration: QueryResult?, new: QueryResult, ordered: Bool,
        knownNondeterministic: Bool = false, sampleLimit: Int = ResultComparison.defaultSampleLimit
    ) -> ShadowVerdict {
        if let columns = ResultComparison.columnDifference(old.columns, new.columns) { return .divergent(.columns(columns)) }
        if knownNondeterministic { return .nondeterministic }
        if let calibration, ResultComparison.compare(old: old, new: calibration, ordered: ordered, sampleLimit: 0) != .same {
            return .nondeterministic
        }
        switch ResultComparison.compare(old: old, new: new, ordered: ordered, sampleLimit: sampleLimit) {
        case .same: return .same
        case let .differentColumns(columns): return .divergent(.columns(columns))
        case let .differentRows(rows): return .divergent(.rows(rows))
        }
    }
}
