// Compares two answers to one read as the client would see them: columns and types, then rows.

/// One way two column lists differ. Positions count from 1, as in a select list.
public enum ColumnMismatch: Sendable, Hashable, CustomStringConvertible {
    case count(old: Int, new: Int)
    case name(position: Int, old: String, new: String)
    case type(position: Int, column: String, old: UInt32, new: UInt32)
    case typmod(position: Int, column: String, old: Int32, new: Int32)

    public var description: String {
        switch self {
        case let .count(old, new): "\(old) columns on the old path, \(new) on the new"
        case let .name(position, old, new): "column \(position) is \(old) on the old path, \(new) on the new"
        case let .type(position, column, old, new): "column \(position) (\(column)) has type oid \(old) on the old path, \(new) on the new"
        case let .typmod(position, column, old, new): "column \(position) (\(column)) has typmod \(old) on the old path, \(new) on the new"
        }
    }
}

/// The two column lists, when they differ, and each difference.
public struct ColumnDifference: Sendable, Equatable, CustomStringConvertible {
    public var old: [ResultColumn]
    public var new: [ResultColumn]
    public var mismatches: [ColumnMismatch]

    public init(old: [ResultColumn], new: [ResultColumn], mismatches: [ColumnMismatch]) {
        self.old = old
        self.new = new
        self.mismatches = mismatches
    }

    /// Whether a name (or the number of columns) differs.
    public var namesDiffer: Bool {
        mismatches.contains { if case .name = $0 { true } else if case .count = $0 { true } else { false } }
    }

    /// Whether a type or a type modifier differs.
    public var typesDiffer: Bool {
        mismatches.contains { if case .type = $0 { true } else if case .typmod = $0 { true } else { false } }
    }

    public var description: String { mismatches.map(\.description).joined(separator: "; ") }
}

/// How the rows of two answers with the same columns differ.
public struct RowDifference: Sendable, Equatable {
    public var oldRowCount: Int
    public var newRowCount: Int
    /// How many rows the old answer has that the new one lacks, counting duplicates: a row twice on the
    /// old path and once on the new counts once.
    public var onlyInOldCount: Int
    public var onlyInNewCount: Int
    /// Up to the sample limit of those rows, in the order the old (new) path returned them.
    public var onlyInOld: [[String?]]
    public var onlyInNew: [[String?]]
    /// Ordered comparison only: both answers hold the same rows, in another order.
    public var orderOnly: Bool
    /// Ordered comparison only: the index (from 0) of the first row that differs between the sequences.
    public var firstDifference: Int?

    public init(
        oldRowCount: Int, newRowCount: Int, onlyInOldCount: Int, onlyInNewCount: Int,
        onlyInOld: [[String?]], onlyInNew: [[String?]], orderOnly: Bool = false, firstDifference: Int? = nil
    ) {
        self.oldRowCount = oldRowCount
        self.newRowCount = newRowCount
        self.onlyInOldCount = onlyInOldCount
        self.onlyInNewCount = onlyInNewCount
        self.onlyInOld = onlyInOld
        self.onlyInNew = onlyInNew
        self.orderOnly = orderOnly
        self.firstDifference = firstDifference
    }
}

/// What a comparison found. Columns are compared first: rows of different shapes are not comparable.
public enum ComparisonOutcome: Sendable, Equatable {
    case same
    case differentColumns(ColumnDifference)
    case differentRows(RowDifference)
}

/// Compares results in time linear in the rows: each row is hashed once per side.
public enum ResultComparison {
    /// How many differing rows of each side a difference keeps by default.
    public static let defaultSampleLimit = 5

    /// Compares `old` and `new` as a client would see them: the same column names, types and type modifiers
    /// in the same order, then the same rows. `ordered`: the query's ORDER BY fixes the order, so the rows
    /// must come in the same sequence; otherwise they are compared as a multiset (duplicates count).
    /// `sampleLimit`: how many differing rows of each side to keep.
    public static func compare(old: QueryResult, new: QueryResult, ordered: Bool, sampleLimit: Int = defaultSampleLimit) -> ComparisonOutcome {
        if let columns = columnDifference(old.columns, new.columns) { return .differentColumns(columns) }
        // The common case, equal answers in the same order, costs one pass and no hashing.
        if old.rows == new.rows { return .same }
        let limit = max(0, sampleLimit)
        var difference = multisetDifference(old.rows, new.rows, limit: limit)
        if ordered {
            difference.firstDifference = firstDifference(old.rows, new.rows)
            difference.orderOnly = difference.onlyInOldCount == 0 && difference.onlyInNewCount == 0
            return .differentRows(difference)
        }
        if difference.onlyInOldCount == 0 && difference.onlyInNewCount == 0 { return .same }
        return .differentRows(difference)
    }

    /// The differences between two column lists, or nil when they are equal.
    public static func columnDifference(_ old: [ResultColumn], _ new: [ResultColumn]) -> ColumnDifference? {
        guard old != new else { return nil }
        var mismatches: [ColumnMismatch] = []
        if old.count != new.count { mismatches.append(.count(old: old.count, new: new.count)) }
        for (i, (o, n)) in zip(old, new).enumerated() {
            if o.name != n.name { mismatches.append(.name(position: i + 1, old: o.name, new: n.name)) }
            if o.typeOID != n.typeOID {
                mismatches.append(.type(position: i + 1, column: o.name, old: o.typeOID, new: n.typeOID))
            } else if o.typmod != n.typmod {
                mismatches.append(.typmod(position: i + 1, column: o.name, old: o.typmod, new: n.typmod))
            }
        }
        return ColumnDifference(old: old, new: new, mismatches: mismatches)
    }

    /// The rows each side has more often than the other, counted and sampled.
    static func multisetDifference(_ old: [[String?]], _ new: [[String?]], limit: Int) -> RowDifference {
        // For each distinct row: how many more times the old side has it than the new side.
        var balance: [[String?]: Int] = [:]
        balance.reserveCapacity(old.count)
        for row in old { balance[row, default: 0] += 1 }
        for row in new { balance[row, default: 0] -= 1 }
        var onlyInOldCount = 0
        var onlyInNewCount = 0
        for surplus in balance.values {
            if surplus > 0 { onlyInOldCount += surplus } else { onlyInNewCount -= surplus }
        }
        // Samples in the order each side returned them, so one difference always yields the same samples.
        var onlyInOld: [[String?]] = []
        if onlyInOldCount > 0 && limit > 0 {
            for row in old where balance[row, default: 0] > 0 {
                balance[row]! -= 1
                onlyInOld.append(row)
                if onlyInOld.count == limit { break }
            }
        }
        var onlyInNew: [[String?]] = []
        if onlyInNewCount > 0 && limit > 0 {
            for row in new where balance[row, default: 0] < 0 {
                balance[row]! += 1
                onlyInNew.append(row)
                if onlyInNew.count == limit { break }
            }
        }
        return RowDifference(
            oldRowCount: old.count, newRowCount: new.count, onlyInOldCount: onlyInOldCount, onlyInNewCount: onlyInNewCount,
            onlyInOld: onlyInOld, onlyInNew: onlyInNew)
    }

    /// The first index where the sequences differ (the shorter one's length when it is a prefix of the other).
    static func firstDifference(_ old: [[String?]], _ new: [[String?]]) -> Int? {
        for i in 0..<min(old.count, new.count) where old[i] != new[i] { return i }
        return old.count == new.count ? nil : min(old.count, new.count)
    }
}
