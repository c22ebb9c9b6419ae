// Tests of the LRU analysis cache: eviction order, hit/miss counting, size limits and concurrent use.
import SwitchyardTestSupport
import Dispatch
@testable import SwitchyardSQL
import Testing

@Suite("Analysis cache")
struct AnalysisCacheTests {
    @Test("the least recently used entry is evicted first")
    func evictionOrder() {
        var lru = LRUStorage<String, Int>(capacity: 3)
        lru.insert(1, forKey: "a")
        lru.insert(2, forKey: "b")
        lru.insert(3, forKey: "c")
        #expect(lru.keysByRecency == ["c", "b", "a"])
        #expect(lru.value(forKey: "a") == 1)
        #expect(lru.keysByRecency == ["a", "c", "b"])
        #expect(lru.insert(4, forKey: "d") == "b")
        #expect(lru.keysByRecency == ["d", "a", "c"])
        #expect(lru.value(forKey: "b") == nil)
        #expect(lru.insert(5, forKey: "e") == "c")
        #expect(lru.keysByRecency == ["e", "d", "a"])
        #expect(lru.count == 3)
    }

    @Test("re-inserting a key replaces its value and makes it the most recent")
    func reinsert() {
        var lru = LRUStorage<String, Int>(capacity: 2)
        lru.insert(1, forKey: "a")
        lru.insert(2, forKey: "b")
        #expect(lru.insert(10, forKey: "a") == nil)
        #expect(lru.keysByRecency == ["a", "b"])
        #expect(lru.value(forKey: "a") == 10)
        #expect(lru.insert(3, forKey: "c") == "b")
    }

    @Test("capacities of zero and one")
    func tinyCapacities() {
        var none = LRUStorage<String, Int>(capacity: 0)
        #expect(none.insert(1, forKey: "a") == nil)
        #expect(none.value(forKey: "a") == nil)
        #expect(none.count == 0)

        var one = LRUStorage<String, Int>(capacity: 1)
        one.insert(1, forKey: "a")
        #expect(one.insert(2, forKey: "b") == "a")
        #expect(one.keysByRecency == ["b"])
        #expect(one.value(forKey: "b") == 2)
        one.removeAll()
        #expect(one.count == 0)
        #expect(one.keysByRecency.isEmpty)
        one.insert(3, forKey: "c")
        #expect(one.keysByRecency == ["c"])
    }

    @Test("matches a simple reference model over random operations", arguments: [1, 2, 7, 50])
    func modelCheck(capacity: Int) {
        var rng = SplitMix64(seed: UInt64(capacity))
        var lru = LRUStorage<String, Int>(capacity: capacity)
        var model: [(key: String, value: Int)] = []  // most recent first
        for step in 0..<5_000 {
            let key = "k\(Int.random(in: 0..<(capacity * 2 + 3), using: &rng))"
            if Bool.random(using: &rng) {
                let expected = model.firstIndex { $0.key == key }.map { model.remove(at: $0) }
                if let expected { model.insert(expected, at: 0) }
                #expect(lru.value(forKey: key) == expected?.value)
            } else {
                var evicted: String?
                if let index = model.firstIndex(where: { $0.key == key }) {
                    model.remove(at: index)
                } else if model.count == capacity {
                    evicted = model.removeLast().key
                }
                model.insert((key, step), at: 0)
                #expect(lru.insert(step, forKey: key) == evicted)
            }
            #expect(lru.keysByRecency == model.map(\.key))
        }
    }

    @Test("hits and misses are counted; results equal fresh analysis")
    func hitsAndMisses() {
        let cache = AnalysisCache(capacity: 2)
        let first = cache.analysis(for: "SELECT * FROM a")
        let second = cache.analysis(for: "SELECT * FROM a")
        #expect(first == second)
        #expect(first == SQLAnalyzer.analyze("SELECT * FROM a"))
        #expect(cache.hits == 1)
        #expect(cache.misses == 1)
        _ = cache.analysis(for: "SELECT * FROM b")
        _ = cache.analysis(for: "SELECT * FROM c")  // evicts a
        _ = cache.analysis(for: "SELECT * FROM a")
        #expect(cache.hits == 1)
        #expect(cache.misses == 4)
        #expect(cache.count == 2)
        #expect(cache.keysByRecency == ["SELECT * FROM a", "SELECT * FROM c"])
        cache.removeAll()
        #expect(cache.count == 0)
    }

    @Test("keys are the exact text: whitespace differences are different entries")
    func exactKeys() {
        let cache = AnalysisCache()
        _ = cache.analysis(for: "SELECT 1")
        _ = cache.analysis(for: "SELECT 1 ")
        #expect(cache.misses == 2)
        #expect(cache.capacity == 10_000)
    }

    @Test("texts over the size limit are analysed but not kept")
    func sizeLimit() {
        let cache = AnalysisCache(capacity: 10, maximumTextBytes: 20)
        let long = "SELECT * FROM a_rather_long_table_name"
        #expect(cache.analysis(for: long).first?.relations.first?.name == "a_rather_long_table_name")
        _ = cache.analysis(for: long)
        #expect(cache.misses == 2)
        #expect(cache.count == 0)
    }

    @Test("a zero capacity disables caching")
    func disabled() {
        let cache = AnalysisCache(capacity: 0)
        _ = cache.analysis(for: "SELECT 1")
        _ = cache.analysis(for: "SELECT 1")
        #expect(cache.misses == 2)
        #expect(cache.count == 0)
    }

    @Test("concurrent use from several threads stays consistent")
    func concurrentUse() {
        let cache = AnalysisCache(capacity: 16)
        let texts = (0..<40).map { "SELECT * FROM table_\($0) WHERE id = \($0)" }
        let threads = 4
        let lookupsPerThread = 400
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var rng = SplitMix64(seed: UInt64(thread))
            for _ in 0..<lookupsPerThread {
                let index = Int.random(in: 0..<texts.count, using: &rng)
                let analysis = cache.analysis(for: texts[index])
                precondition(analysis.first?.relations.first?.name == "table_\(index)")
            }
        }
        #expect(cache.hits + cache.misses == threads * lookupsPerThread)
        #expect(cache.count <= 16)
        #expect(cache.keysByRecency.count == cache.count)
    }
}
