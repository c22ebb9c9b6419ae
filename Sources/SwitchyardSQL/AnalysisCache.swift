// A thread-safe LRU cache of statement analyses keyed by the exact text the client sent.
import Synchronization

/// Caches ``SQLAnalyzer/analyze(_:)`` by the full text of a query message.
///
/// Applications send the same few hundred statement texts over and over (parameters travel
/// separately), so a bounded LRU keeps parsing off the hot path. Lookups, inserts and evictions
/// are O(1) under one `Mutex`; analysis on a miss runs outside the lock, so two threads missing
/// the same text may both analyse it (the results are equal).
public final class AnalysisCache: Sendable {
    /// Maximum number of texts kept; 0 disables caching.
    public let capacity: Int
    /// Texts longer than this (in UTF-8 bytes) are analysed but not kept, so a few huge
    /// statements cannot pin large amounts of memory.
    public let maximumTextBytes: Int

    private struct State: ~Copyable {
        var storage: LRUStorage<String, [StatementAnalysis]>
        var hits = 0
        var misses = 0
    }

    private let state: Mutex<State>

    public init(capacity: Int = 10_000, maximumTextBytes: Int = 64 * 1024) {
        self.capacity = max(capacity, 0)
        self.maximumTextBytes = maximumTextBytes
        self.state = Mutex(State(storage: LRUStorage(capacity: max(capacity, 0))))
    }

    /// The analysis of `sql`, from the cache or freshly computed (and then cached).
    public func analysis(for sql: String) -> [StatementAnalysis] {
        let cached = state.withLock { state -> [StatementAnalysis]? in
            if let value = state.storage.value(forKey: sql) {
                state.hits += 1
                return value
            }
            state.misses += 1
            return nil
        }
        if let cached { return cached }
        let analysis = SQLAnalyzer.analyze(sql)
        if sql.utf8.count <= maximumTextBytes {
            state.withLock { _ = $0.storage.insert(analysis, forKey: sql) }
        }
        return analysis
    }

    public var hits: Int { state.withLock { $0.hits } }
    public var misses: Int { state.withLock { $0.misses } }
    /// Number of texts currently cached.
    public var count: Int { state.withLock { $0.storage.count } }

    /// Cached texts from most to least recently used (diagnostics and tests).
    public var keysByRecency: [String] { state.withLock { $0.storage.keysByRecency } }

    public func removeAll() {
        state.withLock { $0.storage.removeAll() }
    }
}

/// A fixed-capacity LRU map: a dictionary from key to slot, and an intrusive doubly-linked list
/// through the slots of one array, so nothing is allocated per operation once the array is full.
/// O(1) per operation. Not thread-safe: callers hold a lock. Inlinable, so other modules get it
/// specialised for their key and value types: every routed statement looks up two of these.
public struct LRUStorage<Key: Hashable, Value> {
    @usableFromInline
    struct Entry {
        @usableFromInline var key: Key
        @usableFromInline var value: Value
        @usableFromInline var newer: Int
        @usableFromInline var older: Int

        @inlinable
        init(key: Key, value: Value, newer: Int, older: Int) {
            self.key = key
            self.value = value
            self.newer = newer
            self.older = older
        }
    }

    @usableFromInline let capacity: Int
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var slots: [Key: Int] = [:]
    /// Most and least recently used slots; -1 when empty.
    @usableFromInline var newest = -1
    @usableFromInline var oldest = -1

    @inlinable
    public init(capacity: Int) {
        self.capacity = max(capacity, 0)
        // Reserved up front (bounded) so the table does not rehash while the cache warms up.
        let reserve = min(self.capacity, 1 << 16)
        entries.reserveCapacity(reserve)
        slots.reserveCapacity(reserve)
    }

    @inlinable
    public var count: Int { slots.count }

    /// The value for `key`, which becomes the most recently used.
    @inlinable
    public mutating func value(forKey key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        moveToFront(slot)
        return entries[slot].value
    }

    /// Stores `value` as the most recently used, evicting the least recently used entry if full.
    /// Returns the evicted key.
    @inlinable
    @discardableResult
    public mutating func insert(_ value: Value, forKey key: Key) -> Key? {
        if let slot = slots[key] {
            entries[slot].value = value
            moveToFront(slot)
            return nil
        }
        guard capacity > 0 else { return nil }
        if entries.count < capacity {
            entries.append(Entry(key: key, value: value, newer: -1, older: -1))
            let slot = entries.count - 1
            slots[key] = slot
            linkAtFront(slot)
            return nil
        }
        // Full: reuse the oldest slot for the new entry.
        let slot = oldest
        let evicted = entries[slot].key
        unlink(slot)
        slots[evicted] = nil
        entries[slot].key = key
        entries[slot].value = value
        slots[key] = slot
        linkAtFront(slot)
        return evicted
    }

    @inlinable
    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        newest = -1
        oldest = -1
    }

    public var keysByRecency: [Key] {
        var keys: [Key] = []
        var slot = newest
        // The list holds each slot once, so it ends after at most entries.count steps.
        for _ in 0..<entries.count where slot >= 0 {
            keys.append(entries[slot].key)
            slot = entries[slot].older
        }
        return keys
    }

    @inlinable
    mutating func moveToFront(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAtFront(slot)
    }

    @inlinable
    mutating func unlink(_ slot: Int) {
        let newer = entries[slot].newer
        let older = entries[slot].older
        if newer >= 0 { entries[newer].older = older } else { newest = older }
        if older >= 0 { entries[older].newer = newer } else { oldest = newer }
        entries[slot].newer = -1
        entries[slot].older = -1
    }

    @inlinable
    mutating func linkAtFront(_ slot: Int) {
        entries[slot].newer = -1
        entries[slot].older = newest
        if newest >= 0 { entries[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}
