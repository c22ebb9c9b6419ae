// Aggregating reports: identical divergences counted together, bounded records and tallies, redacted parameters.

import Testing
import SwitchyardShadow

func job(flag: String = "users_v2", cohort: String? = "tenant-1", fingerprint: String = "fp1", parameters: [ShadowParameter] = [],
         redact: Bool = false) -> ShadowJob {
    ShadowJob(flag: flag, cohort: cohort, fingerprint: fingerprint, normalizedQuery: "SELECT * FROM users WHERE id = $1",
              oldSQL: "select * from users where id = $1", newSQL: "select * from users_v2 where id = $1",
              parameters: parameters, ordered: false, calibrate: false, redactParameters: redact)
}

func rowDivergence(old: [[String?]], new: [[String?]]) -> ShadowOutcome {
    .compared(.divergent(.rows(RowDifference(
        oldRowCount: old.count, newRowCount: new.count, onlyInOldCount: old.count, onlyInNewCount: new.count,
        onlyInOld: old, onlyInNew: new))))
}

@Suite("Divergence aggregator")
struct DivergenceAggregatorTests {
    @Test("identical divergences aggregate with a count and first and last seen; the latest details are kept")
    func aggregates() throws {
        var aggregator = DivergenceAggregator()
        let first = ShadowReport(job: job(parameters: [ShadowParameter("7", typeOID: 23)]),
                                 outcome: rowDivergence(old: [["7", "a"]], new: [["7", "b"]]), oldRowCount: 1, newRowCount: 1)
        let opened = aggregator.record(first, at: 1000)
        #expect(opened == DivergenceKey(flag: "users_v2", cohort: "tenant-1", fingerprint: "fp1", kind: .rows))
        let second = ShadowReport(job: job(parameters: [ShadowParameter("8", typeOID: 23)]),
                                  outcome: rowDivergence(old: [["8", "a"]], new: []), oldRowCount: 1, newRowCount: 0)
        let again = [aggregator.record(second, at: 5000), aggregator.record(second, at: 3000)]
        #expect(again == [nil, nil])
        let records = aggregator.divergences
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.count == 3)
        #expect(record.firstSeen == 1000 && record.lastSeen == 5000)
        #expect(record.normalizedQuery == "SELECT * FROM users WHERE id = $1")
        #expect(record.parameters == ["$1 = '8'"])
        #expect(record.oldRowCount == 1 && record.newRowCount == 0)
        #expect(record.onlyInOld == [["8", "a"]] && record.onlyInNew.isEmpty)
        #expect(record.detail == "1 rows only on the old path, 0 only on the new")
    }

    @Test("flag, cohort, fingerprint and kind each separate records; no cohort is shown as (none)")
    func keys() {
        var aggregator = DivergenceAggregator()
        let rows = rowDivergence(old: [["1"]], new: [])
        aggregator.record(ShadowReport(job: job(), outcome: rows), at: 1)
        aggregator.record(ShadowReport(job: job(flag: "orders_v2"), outcome: rows), at: 1)
        aggregator.record(ShadowReport(job: job(cohort: nil), outcome: rows), at: 1)
        aggregator.record(ShadowReport(job: job(fingerprint: "fp2"), outcome: rows), at: 1)
        aggregator.record(ShadowReport(job: job(), outcome: .compared(.divergent(.error(PathError(sqlState: "42P01", message: "relation does not exist"))))), at: 1)
        let records = aggregator.divergences
        #expect(records.count == 5)
        #expect(records.contains { $0.cohort == DivergenceAggregator.noCohort })
        let error = records.first { $0.kind == .error }
        #expect(error?.sqlState == "42P01")
        #expect(error?.detail == "relation does not exist (SQLSTATE 42P01)")
    }

    @Test("parameters are shown quoted, NULL as NULL, or redacted")
    func redaction() throws {
        let parameters = [ShadowParameter("it's"), ShadowParameter(nil), ShadowParameter("secret", typeOID: 25)]
        var aggregator = DivergenceAggregator()
        aggregator.record(ShadowReport(job: job(parameters: parameters), outcome: rowDivergence(old: [["1"]], new: [])), at: 1)
        aggregator.record(ShadowReport(job: job(flag: "redacted", parameters: parameters, redact: true),
                                       outcome: rowDivergence(old: [["1"]], new: [])), at: 1)
        let plain = try #require(aggregator.divergences.first { $0.flag == "users_v2" })
        #expect(plain.parameters == ["$1 = 'it''s'", "$2 = NULL", "$3 = 'secret'"])
        let hidden = try #require(aggregator.divergences.first { $0.flag == "redacted" })
        #expect(hidden.parameters == ["$1 = <redacted>", "$2 = <redacted>", "$3 = <redacted>"])
        // The report itself never carries the raw values when redacted.
        let report = ShadowReport(job: job(parameters: parameters, redact: true), outcome: .compared(.same))
        #expect(!report.parameters.joined().contains("secret"))
    }

    @Test("records are bounded: past the limit a query's further cohorts count into one (other) record of that query; past it again, all into one")
    func boundedRecords() {
        var aggregator = DivergenceAggregator(limits: .init(maxRecords: 3))
        for i in 0..<10 {
            aggregator.record(ShadowReport(job: job(cohort: "c\(i)"), outcome: rowDivergence(old: [["1"]], new: [])), at: Int64(i))
        }
        var records = aggregator.divergences
        #expect(records.count == 4)
        let otherCohorts = records.first { $0.cohort == DivergenceAggregator.other }
        #expect(otherCohorts?.count == 7)
        #expect(otherCohorts?.fingerprint == "fp1")
        #expect(otherCohorts?.normalizedQuery == "SELECT * FROM users WHERE id = $1")
        #expect(otherCohorts?.firstSeen == 3 && otherCohorts?.lastSeen == 9)
        // Other queries past the limit keep a record each, up to the limit again; then one (other) for all.
        for i in 0..<6 {
            aggregator.record(ShadowReport(job: job(cohort: "c\(i)", fingerprint: "fq\(i)"), outcome: rowDivergence(old: [["1"]], new: [])),
                              at: Int64(10 + i))
        }
        records = aggregator.divergences
        #expect(records.filter { $0.cohort == DivergenceAggregator.other && $0.fingerprint != DivergenceAggregator.other }.count == 3)
        let other = records.first { $0.fingerprint == DivergenceAggregator.other }
        #expect(other?.count == 4)
        #expect(other?.cohort == DivergenceAggregator.other)
        #expect(other?.parameters == [])
        // A cohort already recorded keeps counting into its own record.
        aggregator.record(ShadowReport(job: job(cohort: "c0"), outcome: rowDivergence(old: [["1"]], new: [])), at: 20)
        #expect(aggregator.divergences.first { $0.cohort == "c0" }?.count == 2)
    }

    @Test("sample rows are bounded in number, columns and value length")
    func boundedSamples() throws {
        var aggregator = DivergenceAggregator(limits: .init(sampleRows: 2, maxValueLength: 4, maxColumns: 2))
        let wide: [[String?]] = (0..<10).map { i in ["value-\(i)", nil, "third"] }
        aggregator.record(ShadowReport(job: job(), outcome: rowDivergence(old: wide, new: [])), at: 1)
        let record = try #require(aggregator.divergences.first)
        #expect(record.onlyInOld == [["valu…", nil], ["valu…", nil]])
    }

    @Test("per fingerprint: samples, same, divergent, nondeterministic and skipped, for a divergence rate")
    func tallies() throws {
        var aggregator = DivergenceAggregator()
        let outcomes: [ShadowOutcome] = [
            .compared(.same), .compared(.same), .compared(.same), rowDivergence(old: [["1"]], new: []),
            .compared(.nondeterministic), .skipped("old path failed"),
        ]
        for outcome in outcomes {
            aggregator.record(ShadowReport(job: job(), outcome: outcome, oldDuration: .milliseconds(2), newDuration: .milliseconds(3)), at: 1)
        }
        aggregator.record(ShadowReport(job: job(fingerprint: "fp2"), outcome: .compared(.same)), at: 1)
        let tally = try #require(aggregator.tally(flag: "users_v2", fingerprint: "fp1"))
        #expect(tally.samples == 6 && tally.same == 3 && tally.divergent == 1 && tally.nondeterministic == 1 && tally.skipped == 1)
        #expect(tally.divergenceRate == 0.25)
        #expect(tally.oldTime == .milliseconds(12) && tally.newTime == .milliseconds(18))
        let totals = aggregator.totals(flag: "users_v2")
        #expect(totals.samples == 7 && totals.same == 4 && totals.divergent == 1)
        #expect(aggregator.totals(flag: "nothing").divergenceRate == nil)
        #expect(aggregator.fingerprints.first?.fingerprint == "fp1")
    }

    @Test("tallies are bounded: past the limit new fingerprints count into (other)")
    func boundedTallies() {
        var aggregator = DivergenceAggregator(limits: .init(maxFingerprints: 2))
        for i in 0..<5 { aggregator.record(ShadowReport(job: job(fingerprint: "fp\(i)"), outcome: .compared(.same)), at: 1) }
        #expect(aggregator.fingerprints.count == 3)
        #expect(aggregator.tally(flag: "users_v2", fingerprint: DivergenceAggregator.other)?.samples == 3)
        #expect(aggregator.totals(flag: "users_v2").samples == 5)
    }
}

@Suite("Bounded queue")
struct BoundedQueueTests {
    @Test("first in, first out; refuses when full; wraps around")
    func fifo() {
        var queue = BoundedQueue<Int>(capacity: 3)
        let pushed = [queue.push(1), queue.push(2), queue.push(3), queue.push(4)]
        #expect(pushed == [true, true, true, false])
        #expect(queue.isFull && queue.count == 3)
        let first = queue.pop()
        let fifth = queue.push(5)
        #expect(first == 1 && fifth)
        let rest = [queue.pop(), queue.pop(), queue.pop(), queue.pop()]
        #expect(rest == [2, 3, 5, nil])
        #expect(queue.isEmpty)
        for round in 0..<10 {
            let pushedRound = queue.push(round)
            let popped = queue.pop()
            #expect(pushedRound && popped == round)
        }
        _ = queue.push(1)
        let removed = queue.removeAll()
        #expect(removed == 1 && queue.isEmpty)
    }
}
