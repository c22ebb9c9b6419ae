// The routing hub's per-loop counters: latency series and cohorts, each bounded, summed over the loops.
import SwitchyardRouting
@testable import SwitchyardServer
import Testing

@Suite("Routing counters")
struct RoutingCountersTests {
    static func label(_ fingerprint: String, path: ReadPath = .new) -> LatencyLabel {
        LatencyLabel(flag: "users_v2", cohort: path == .new ? "canary" : "control", path: path, fingerprint: fingerprint)
    }

    @Test("latency lands in its own series while labels recur, new ones arrive and the recent list is full")
    func latencySeries() {
        let hub = RoutingHub(loops: 2)
        // Six labels, more than the recent list holds, interleaved with repeats, on both loops;
        // each new label moves the dictionary's indices.
        var expected: [LatencyLabel: UInt64] = [:]
        for round in 0..<30 {
            for k in 0...(round % 6) {
                let label = Self.label("fp\(k)", path: k % 2 == 0 ? .new : .old)
                hub.recordLatency(loop: round % 2, label: label, nanoseconds: UInt64(1000 * (k + 1)), failed: k == 5)
                expected[label, default: 0] += 1
            }
        }
        let series = hub.latencySeries
        #expect(series.count == 6)
        for (label, count) in expected {
            #expect(series[label]?.requests == count, "\(label.fingerprint)")
            #expect(series[label]?.errors == (label.fingerprint == "fp5" ? count : 0))
        }
        // Every request of fp3 took 4 µs.
        #expect(series[Self.label("fp3", path: .old)]?.histogram.max == 4)
    }

    @Test("past the kept cohorts a flag's new keys are counted together under one entry, summed over the loops")
    func cohortsBounded() {
        let hub = RoutingHub(loops: 2)
        let kept = RoutingHub.cohortsKept
        // Every kept key once on loop 0, then 25 keys past them twice each, and a kept key again.
        for k in 0..<kept { hub.recordCohort(loop: 0, flag: "users_v2", key: "k\(k)", bucket: k, path: .old) }
        for k in kept..<(kept + 25) {
            hub.recordCohort(loop: 0, flag: "users_v2", key: "k\(k)", bucket: k, path: .new)
            hub.recordCohort(loop: 0, flag: "users_v2", key: "k\(k)", bucket: k, path: .new)
        }
        hub.recordCohort(loop: 0, flag: "users_v2", key: "k7", bucket: 7, path: .old)
        // Loop 1 keeps its own: a key it has not seen is kept there.
        hub.recordCohort(loop: 1, flag: "users_v2", key: "k\(kept + 1)", bucket: 1, path: .new)
        hub.recordCohort(loop: 1, flag: "orders_v2", key: nil, bucket: nil, path: .old)
        let list = hub.cohortList
        let users = list.filter { $0.flag == "users_v2" }
        #expect(users.first?.key == RoutingHub.otherCohorts)
        #expect(users.first?.transactions == 50)
        #expect(users.first { $0.key == "k7" }?.transactions == 2)
        #expect(users.first { $0.key == "k\(kept + 1)" }?.transactions == 1)
        #expect(users.count == kept + 2)
        #expect(list.filter { $0.flag == "orders_v2" }.map(\.key) == ["(no cohort key)"])
    }
}
