// Caches what the router needs per query text: the analysis, the sqlcommenter tags, and rewrites.
import Synchronization
import SwitchyardSQL

/// Everything derived from one query text. Rewrites are memoised per set of routes,
/// so a canary query costs a lookup after the first time it is seen.
public struct QueryInfo: Sendable {
    public var statements: [StatementAnalysis]
    public var commentTags: [String: String]
    fileprivate var rewrites: [[ReadRoute]: RewriteOutcome] = [:]
}

/// A shared LRU of `QueryInfo` by the exact text the client sent, safe from any loop thread.
public final class QueryInfoCache: Sendable {
    private let storage: Mutex<LRUStorage<QueryInfo>>
    /// Texts longer than this are analysed every time rather than kept.
    public let maximumTextBytes: Int

    public init(capacity: Int = 10_000, maximumTextBytes: Int = 64 * 1024) {
        storage = Mutex(LRUStorage(capacity: capacity))
        self.maximumTextBytes = maximumTextBytes
    }

    public func info(for sql: String) -> QueryInfo {
        if let hit = storage.withLock({ $0.value(forKey: sql) }) { return hit }
        let info = QueryInfo(statements: SQLAnalyzer.analyze(sql), commentTags: sqlcommenterTags(sql))
        if sql.utf8.count <= maximumTextBytes { storage.withLock { _ = $0.insert(info, forKey: sql) } }
        return info
    }

    /// The rewrite of `sql` onto `routes`, computed once per text and route set.
    public func rewrite(_ sql: String, info: QueryInfo, routes: [ReadRoute]) -> RewriteOutcome {
        if let cached = info.rewrites[routes] { return cached }
        let outcome = ReadRewriter.rewrite(sql: sql, statements: info.statements, routes: routes)
        if sql.utf8.count <= maximumTextBytes {
            storage.withLock { lru in
                if var current = lru.value(forKey: sql) {
                    current.rewrites[routes] = outcome
                    _ = lru.insert(current, forKey: sql)
                }
            }
        }
        return outcome
    }

    public var count: Int { storage.withLock { $0.count } }
}
