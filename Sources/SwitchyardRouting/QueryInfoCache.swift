// Caches what the router needs per query: the analysis, the sqlcommenter tags, and rewrite plans.
import Synchronization
import SwitchyardSQL

/// Everything derived from one query text.
public struct QueryInfo: Sendable {
    public var statements: [StatementAnalysis]
    public var commentTags: [String: String]
    /// For a text analysed through its token shape: the shape and where its tokens are in this text.
    fileprivate var shape: ShapeBinding?
    fileprivate var rewrites: [[ReadRoute]: RewriteOutcome] = [:]
}

/// A text's token shape: its tokens with constants and comments left out. Texts of one shape
/// (`... WHERE aid = 17` and `... WHERE aid = 9042`, with any comment) parse to the same tree
/// but for the constants, so one analysis and one rewrite plan serve them all.
fileprivate struct ShapeBinding: Sendable {
    var template: ShapeTemplate
    /// Byte ranges of the text's tokens, comments excluded, in order.
    var tokenRanges: [Range<Int>]
}

/// A rewrite plan in token positions, so it applies to every text of the shape.
fileprivate enum TokenPlan: Sendable {
    case untouched
    case keptOnOldPath(reason: String)
    case edits([(tokens: Range<Int>, replacement: String)])
}

/// The first text of a shape and what was derived from it. A text's info holds its template,
/// so planning a rewrite needs no second lookup by shape.
fileprivate final class ShapeTemplate: @unchecked Sendable {
    let sql: String
    let statements: [StatementAnalysis]
    let tokenRanges: [Range<Int>]
    /// Rewrite plans per route set; read and written only under the cache's lock.
    var plans: [[ReadRoute]: TokenPlan] = [:]

    init(sql: String, statements: [StatementAnalysis], tokenRanges: [Range<Int>]) {
        self.sql = sql
        self.statements = statements
        self.tokenRanges = tokenRanges
    }
}

/// A shared cache, safe from any loop thread. Applications in the simple protocol inline
/// their parameters, so most texts are new; the scanner's tokens (a fraction of a parse)
/// find the text's shape, and the shape's analysis and rewrite plans are reused. Exact
/// texts seen before (prepared statements, repeated queries) cost one lookup.
public final class QueryInfoCache: Sendable {
    private struct State: ~Copyable {
        var exact: LRUStorage<QueryInfo>
        var shapes: LRUStorage<ShapeTemplate>
    }
    private let state: Mutex<State>
    /// Texts longer than this are analysed every time rather than kept.
    public let maximumTextBytes: Int

    public init(capacity: Int = 10_000, maximumTextBytes: Int = 64 * 1024) {
        state = Mutex(State(exact: LRUStorage(capacity: capacity), shapes: LRUStorage(capacity: capacity)))
        self.maximumTextBytes = maximumTextBytes
    }

    public func info(for sql: String) -> QueryInfo {
        if let hit = state.withLock({ $0.exact.value(forKey: sql) }) { return hit }
        guard sql.utf8.count <= maximumTextBytes, let tokens = try? SQLAnalyzer.tokens(in: sql) else {
            return QueryInfo(statements: SQLAnalyzer.analyze(sql), commentTags: sqlcommenterTags(sql))
        }
        // The key is built as bytes and made a String once: this runs for every new text.
        var keyBytes: [UInt8] = []
        keyBytes.reserveCapacity(sql.utf8.count + tokens.count * 3)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(tokens.count)
        var tags: [String: String] = [:]
        var text = sql
        text.withUTF8 { bytes in
            for t in tokens {
                guard t.byteRange.upperBound <= bytes.count else { continue }
                let spelling = UnsafeBufferPointer(rebasing: bytes[t.byteRange])
                if t.isComment {
                    addSQLCommenterTags(comment: spelling, to: &tags)
                    continue
                }
                ranges.append(t.byteRange)
                // The token kind in two ASCII characters (kinds are below 8,464), then the text.
                let kind = Int(t.kind.rawValue)
                keyBytes.append(1)
                keyBytes.append(UInt8(truncatingIfNeeded: 0x20 + (kind / 92) % 92))
                keyBytes.append(UInt8(truncatingIfNeeded: 0x20 + kind % 92))
                if !Self.isConstant(t.kind) { keyBytes.append(contentsOf: spelling) }
            }
        }
        let key = String(decoding: keyBytes, as: UTF8.self)
        if let template = state.withLock({ $0.shapes.value(forKey: key) }) {
            return QueryInfo(statements: template.statements, commentTags: tags, shape: ShapeBinding(template: template, tokenRanges: ranges))
        }
        let statements = SQLAnalyzer.analyze(sql)
        // SET carries its value in a constant, and a text that does not parse has no tree:
        // those are analysed text by text.
        let reusable = !statements.contains { $0.statementType == "VariableSetStmt" || $0.error != nil }
        let template = reusable ? ShapeTemplate(sql: sql, statements: statements, tokenRanges: ranges) : nil
        let info = QueryInfo(statements: statements, commentTags: tags,
                             shape: template.map { ShapeBinding(template: $0, tokenRanges: ranges) })
        state.withLock { s in
            if let template { _ = s.shapes.insert(template, forKey: key) }
            _ = s.exact.insert(info, forKey: sql)
        }
        return info
    }

    /// The rewrite of `sql` onto `routes`, planned once per shape (or text) and route set.
    public func rewrite(_ sql: String, info: QueryInfo, routes: [ReadRoute]) -> RewriteOutcome {
        if let binding = info.shape, let plan = tokenPlan(binding.template, routes: routes) {
            switch plan {
            case .untouched: return .untouched
            case let .keptOnOldPath(reason): return .keptOnOldPath(reason: reason)
            case let .edits(edits):
                var byteEdits: [ReadRewriter.Edit] = []
                for e in edits {
                    guard e.tokens.upperBound <= binding.tokenRanges.count, !e.tokens.isEmpty else { break }
                    let range = binding.tokenRanges[e.tokens.lowerBound].lowerBound..<binding.tokenRanges[e.tokens.upperBound - 1].upperBound
                    byteEdits.append(ReadRewriter.Edit(range: range, replacement: e.replacement))
                }
                if byteEdits.count == edits.count, let text = ReadRewriter.apply(byteEdits, to: sql) { return .rewritten(text) }
            }
        }
        if let cached = info.rewrites[routes] { return cached }
        let outcome = ReadRewriter.rewrite(sql: sql, statements: info.statements, routes: routes)
        if sql.utf8.count <= maximumTextBytes {
            state.withLock { s in
                if var current = s.exact.value(forKey: sql) {
                    current.rewrites[routes] = outcome
                    _ = s.exact.insert(current, forKey: sql)
                }
            }
        }
        return outcome
    }

    /// The shape's plan for `routes`, made on the shape's first text; nil if its edits do not
    /// fall on token boundaries.
    private func tokenPlan(_ template: ShapeTemplate, routes: [ReadRoute]) -> TokenPlan? {
        if let plan = state.withLock({ _ in template.plans[routes] }) { return plan }
        let plan: TokenPlan
        switch ReadRewriter.plan(sql: template.sql, statements: template.statements, routes: routes) {
        case .untouched: plan = .untouched
        case let .keptOnOldPath(reason): plan = .keptOnOldPath(reason: reason)
        case let .edits(edits, _):
            var tokenEdits: [(tokens: Range<Int>, replacement: String)] = []
            for e in edits {
                guard let first = template.tokenRanges.firstIndex(where: { $0.lowerBound == e.range.lowerBound }),
                      let last = template.tokenRanges.firstIndex(where: { $0.upperBound == e.range.upperBound }),
                      first <= last else { return nil }
                tokenEdits.append((first..<(last + 1), e.replacement))
            }
            plan = .edits(tokenEdits)
        }
        state.withLock { _ in template.plans[routes] = plan }
        return plan
    }

    static func isConstant(_ kind: SQLToken.Kind) -> Bool {
        kind == .integerConstant || kind == .floatConstant || kind == .stringConstant || kind == .unicodeStringConstant
            || kind == .bitStringConstant || kind == .hexStringConstant
    }

    public var count: Int { state.withLock { $0.exact.count } }
    public var shapeCount: Int { state.withLock { $0.shapes.count } }
}
