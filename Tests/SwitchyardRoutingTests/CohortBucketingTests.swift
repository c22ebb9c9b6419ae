// Bucketing is stable, monotonic in the percentage, and spreads keys evenly.
import SwitchyardRouting
import Testing

@Suite("Cohort bucketing")
struct CohortBucketingTests {
    @Test("buckets are a fixed function of salt and key (same values in every process)")
    func stable() {
        // Pinned values, computed by an independent implementation of the same hash:
        // a change here would move users between cohorts on upgrade.
        let pinned: [(String, String, Int)] = [
            ("users_v2", "tenant-42", 4714),
            ("users_v2", "tenant-43", 167),
            ("orders_v2", "alice", 670),
            ("", "", 2267),
            ("flag", "ユーザー", 2197),
        ]
        for (salt, key, expected) in pinned {
            #expect(CohortBucketing.bucket(salt: salt, key: key) == expected)
        }
        #expect(CohortBucketing.bucket(salt: "a", key: "b") != CohortBucketing.bucket(salt: "ab", key: ""))
        #expect(CohortBucketing.bucket(salt: "users_v2", key: "tenant-42") != CohortBucketing.bucket(salt: "orders_v2", key: "tenant-42"))
    }

    @Test("raising the percentage only adds keys")
    func monotonic() {
        let keys = (0..<20_000).map { "user-\($0)" }
        var previous = Set<String>()
        for percent in stride(from: 0, through: 10_000, by: 250) {
            let inCanary = Set(keys.filter { CohortBucketing.isInCanary(salt: "f", key: $0, percentBasisPoints: percent) })
            #expect(previous.isSubset(of: inCanary))
            previous = inCanary
        }
        #expect(previous.count == keys.count)
    }

    @Test("100k keys spread evenly: each percentage within ±1 point", arguments: [100, 1000, 2500, 5000, 7500, 9900])
    func evenSpread(percentBasisPoints: Int) {
        let n = 100_000
        var inCanary = 0
        for i in 0..<n where CohortBucketing.isInCanary(salt: "users_v2", key: "tenant-\(i)", percentBasisPoints: percentBasisPoints) {
            inCanary += 1
        }
        let share = Double(inCanary) / Double(n) * 10_000
        #expect(abs(share - Double(percentBasisPoints)) <= 100, "got \(share) basis points")
    }

    @Test("buckets cover the whole range")
    func range() {
        var seen = Set<Int>()
        for i in 0..<200_000 { seen.insert(CohortBucketing.bucket(salt: "s", key: "\(i)")) }
        #expect(seen.count == CohortBucketing.bucketCount)
        #expect(seen.min() == 0 && seen.max() == 9_999)
    }
}
