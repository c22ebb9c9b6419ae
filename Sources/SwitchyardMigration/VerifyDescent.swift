// The verify descent: from a differing chunk down to the keys that differ, as a plan of one step at a time.

/// Row count and checksum of both sides over one key range.
public struct RangeSummary: Sendable, Equatable {
    public var oldRows: Int
    public var oldChecksum: String?
    public var newRows: Int
    public var newChecksum: String?

    public init(oldRows: Int, oldChecksum: String?, newRows: Int, newChecksum: String?) {
        self.oldRows = oldRows
        self.oldChecksum = oldChecksum
        self.newRows = newRows
        self.newChecksum = newChecksum
    }

    /// Whether both sides hold the same keys with the same mapped values.
    public var matches: Bool { oldRows == newRows && oldChecksum == newChecksum }
}

/// One key whose rows differ.
public struct KeyDifference: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The old relation has the key, the new one does not.
        case missingInNew = "missing_in_new"
        /// The new relation has a key the old one does not.
        case extraInNew = "extra_in_new"
        /// Both have the key, with different mapped values.
        case different

        /// "missing in new", as the summary prints it.
        public var words: String {
            switch self {
            case .missingInNew: "missing in new"
            case .extraInNew: "extra in new"
            case .different: "different"
            }
        }
    }

    public var key: [String]
    public var kind: Kind

    public init(key: [String], kind: Kind) {
        self.key = key
        self.kind = kind
    }

    /// "missing in new: (eu, 17)".
    public var description: String { "\(kind.words): \(KeyRange.describe(key))" }
}

/// Narrows a differing range down to its differing keys. A range with more rows than `leafRows` on
/// either side is split in two at the middle key of its larger side, and each half is summarized again;
/// a differing range of at most `leafRows` rows (or one nested `maxDepth` deep) is compared row by row.
/// Halves that match are dropped, so the cost follows the number of differences, not the chunk size.
///
/// The caller runs the loop: `next()` says what to query, and the matching `summarized`, `split` or
/// `compared` call hands back the answer. Ranges are visited in key order. Once `keyBudget` keys are
/// named the descent stops; `complete` then says whether anything was left unexamined.
public struct VerifyDescent: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Count and checksum both sides over the range (then call `summarized`).
        case summarize(KeyRange)
        /// Find the key at this offset among this side's rows in the range (then call `split`).
        case findSplit(KeyRange, side: VerifySide, offset: Int)
        /// List the range's differing keys, at most `limit` (then call `compared`).
        case compareRows(KeyRange, limit: Int)
        /// Nothing left to do.
        case finished
    }

    public static let defaultLeafRows = 64
    /// A safety net far beyond what halving needs (2^48 rows), for keys that do not split (see `split`).
    public static let defaultMaxDepth = 48

    public let keyBudget: Int
    public let leafRows: Int
    public let maxDepth: Int
    /// The keys named so far, in key order, at most `keyBudget`.
    public private(set) var differences: [KeyDifference] = []
    /// Every differing key found by the row comparisons, including those beyond the budget.
    public private(set) var differingKeyCount = 0
    /// False when the budget ran out with ranges still unexamined.
    public private(set) var complete = true

    private struct Pending: Sendable, Equatable {
        var range: KeyRange
        var summary: RangeSummary?
        var depth: Int
    }

    private enum Awaiting: Sendable, Equatable {
        case summary(Pending)
        case split(Pending, RangeSummary)
        case rows(Pending)
    }

    /// Last in, first out; the left half is pushed last so that keys come out in order.
    private var stack: [Pending]
    private var awaiting: Awaiting?

    /// Starts from a range whose summary is already known (a chunk that did not match).
    public init(range: KeyRange, summary: RangeSummary, keyBudget: Int, leafRows: Int = defaultLeafRows,
                maxDepth: Int = defaultMaxDepth) {
        precondition(keyBudget > 0 && leafRows > 0 && maxDepth >= 0)
        self.keyBudget = keyBudget
        self.leafRows = leafRows
        self.maxDepth = maxDepth
        stack = [Pending(range: range, summary: summary, depth: 0)]
    }

    /// The next query to run. Each action must be answered before asking again.
    public mutating func next() -> Action {
        precondition(awaiting == nil, "answer the previous action first")
        while let item = stack.popLast() {
            if differences.count >= keyBudget {
                complete = false
                stack.removeAll()
                break
            }
            guard let summary = item.summary else {
                awaiting = .summary(item)
                return .summarize(item.range)
            }
            if summary.matches { continue }
            let larger = max(summary.oldRows, summary.newRows)
            if larger <= leafRows || item.depth >= maxDepth {
                awaiting = .rows(item)
                return .compareRows(item.range, limit: keyBudget - differences.count)
            }
            awaiting = .split(item, summary)
            // The key at (larger - 1) / 2 closes the left half: ceil(larger / 2) rows left, the rest right.
            return .findSplit(item.range, side: summary.oldRows >= summary.newRows ? .old : .new, offset: (larger - 1) / 2)
        }
        return .finished
    }

    /// The answer to `.summarize`.
    public mutating func summarized(_ summary: RangeSummary) {
        guard case .summary(var item) = awaiting else { preconditionFailure("no summary was asked for") }
        awaiting = nil
        item.summary = summary
        if !summary.matches { stack.append(item) }
    }

    /// The answer to `.findSplit`: the key found there, or nil when the side had fewer rows than its
    /// summary said. A key that would not shrink the range (nil, or the range's own upper bound) sends the
    /// range to a row-by-row comparison instead, bounded by the comparison's limit.
    public mutating func split(at key: [String]?) {
        guard case .split(let item, let summary) = awaiting else { preconditionFailure("no split was asked for") }
        awaiting = nil
        guard let key, key != item.range.upper, key != item.range.lower else {
            stack.append(Pending(range: item.range, summary: summary, depth: maxDepth))
            return
        }
        stack.append(Pending(range: KeyRange(lower: key, upper: item.range.upper), summary: nil, depth: item.depth + 1))
        stack.append(Pending(range: KeyRange(lower: item.range.lower, upper: key), summary: nil, depth: item.depth + 1))
    }

    /// The answer to `.compareRows`: the keys found (at most the limit asked for) and how many differ in
    /// the whole range.
    public mutating func compared(_ found: [KeyDifference], total: Int) {
        guard case .rows = awaiting else { preconditionFailure("no comparison was asked for") }
        awaiting = nil
        differences += found.prefix(keyBudget - differences.count)
        differingKeyCount += max(total, found.count)
    }
}
