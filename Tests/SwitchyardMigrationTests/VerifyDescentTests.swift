// The descent from a differing chunk to its keys, and the tally of a whole verify run.

import SwitchyardMigration
import Testing

@Suite("Verify descent")
struct VerifyDescentTests {
    static func summary(old: Int, new: Int, same: Bool = false) -> RangeSummary {
        RangeSummary(oldRows: old, oldChecksum: "a", newRows: new, newChecksum: same ? "a" : "b")
    }

    static let chunk = KeyRange(lower: ["100"], upper: ["1100"])

    @Test("a small differing range is compared row by row at once, asking for at most the budget")
    func smallRange() {
        var descent = VerifyDescent(range: Self.chunk, summary: Self.summary(old: 64, new: 63), keyBudget: 10)
        #expect(descent.next() == .compareRows(Self.chunk, limit: 10))
        descent.compared([KeyDifference(key: ["150"], kind: .missingInNew)], total: 1)
        #expect(descent.next() == .finished)
        #expect(descent.differences == [KeyDifference(key: ["150"], kind: .missingInNew)])
        #expect(descent.differingKeyCount == 1)
        #expect(descent.complete)
    }

    @Test("a large range is split at the middle key of its larger side; matching halves are dropped, in key order")
    func splitting() {
        var descent = VerifyDescent(range: Self.chunk, summary: Self.summary(old: 1000, new: 1000), keyBudget: 100)
        // (1000 - 1) / 2 = 499: the left half holds 500 rows.
        #expect(descent.next() == .findSplit(Self.chunk, side: .old, offset: 499))
        descent.split(at: ["600"])
        let left = KeyRange(lower: ["100"], upper: ["600"])
        let right = KeyRange(lower: ["600"], upper: ["1100"])
        #expect(descent.next() == .summarize(left))
        descent.summarized(Self.summary(old: 500, new: 500, same: true))
        #expect(descent.next() == .summarize(right))
        descent.summarized(Self.summary(old: 500, new: 501))
        // The right half has more new rows, so it splits on the new side.
        #expect(descent.next() == .findSplit(right, side: .new, offset: 250))
        descent.split(at: ["850"])
        #expect(descent.next() == .summarize(KeyRange(lower: ["600"], upper: ["850"])))
        descent.summarized(Self.summary(old: 251, new: 251, same: true))
        let last = KeyRange(lower: ["850"], upper: ["1100"])
        #expect(descent.next() == .summarize(last))
        descent.summarized(Self.summary(old: 249, new: 250))
        #expect(descent.next() == .findSplit(last, side: .new, offset: 124))
        descent.split(at: ["975"])
        #expect(descent.next() == .summarize(KeyRange(lower: ["850"], upper: ["975"])))
        descent.summarized(Self.summary(old: 125, new: 125, same: true))
        #expect(descent.next() == .summarize(KeyRange(lower: ["975"], upper: ["1100"])))
        descent.summarized(Self.summary(old: 124, new: 125))
        #expect(descent.next() == .findSplit(KeyRange(lower: ["975"], upper: ["1100"]), side: .new, offset: 62))
        descent.split(at: ["1040"])
        #expect(descent.next() == .summarize(KeyRange(lower: ["975"], upper: ["1040"])))
        descent.summarized(Self.summary(old: 63, new: 64))
        #expect(descent.next() == .compareRows(KeyRange(lower: ["975"], upper: ["1040"]), limit: 100))
        descent.compared([KeyDifference(key: ["1001"], kind: .extraInNew)], total: 1)
        #expect(descent.next() == .summarize(KeyRange(lower: ["1040"], upper: ["1100"])))
        descent.summarized(Self.summary(old: 61, new: 61, same: true))
        #expect(descent.next() == .finished)
        #expect(descent.differences == [KeyDifference(key: ["1001"], kind: .extraInNew)])
        #expect(descent.complete)
    }

    @Test("keys found on both halves come out in key order")
    func order() {
        var descent = VerifyDescent(range: .all, summary: Self.summary(old: 100, new: 100), keyBudget: 10)
        #expect(descent.next() == .findSplit(.all, side: .old, offset: 49))
        descent.split(at: ["50"])
        #expect(descent.next() == .summarize(KeyRange(lower: nil, upper: ["50"])))
        descent.summarized(Self.summary(old: 50, new: 50))
        #expect(descent.next() == .compareRows(KeyRange(lower: nil, upper: ["50"]), limit: 10))
        descent.compared([KeyDifference(key: ["3"], kind: .different)], total: 1)
        #expect(descent.next() == .summarize(KeyRange(lower: ["50"], upper: nil)))
        descent.summarized(Self.summary(old: 50, new: 49))
        #expect(descent.next() == .compareRows(KeyRange(lower: ["50"], upper: nil), limit: 9))
        descent.compared([KeyDifference(key: ["77"], kind: .missingInNew)], total: 1)
        #expect(descent.next() == .finished)
        #expect(descent.differences.map(\.key) == [["3"], ["77"]])
        #expect(descent.differingKeyCount == 2)
    }

    @Test("a split key that does not shrink the range sends it to a row comparison instead", arguments: [
        [String]?.none, ["1100"], ["100"],
    ])
    func stuckSplit(key: [String]?) {
        var descent = VerifyDescent(range: Self.chunk, summary: Self.summary(old: 500, new: 0), keyBudget: 5)
        #expect(descent.next() == .findSplit(Self.chunk, side: .old, offset: 249))
        descent.split(at: key)
        #expect(descent.next() == .compareRows(Self.chunk, limit: 5))
    }

    @Test("ranges nested maxDepth deep are compared row by row whatever their size")
    func depthLimit() {
        var descent = VerifyDescent(range: .all, summary: Self.summary(old: 1000, new: 0), keyBudget: 5, maxDepth: 1)
        #expect(descent.next() == .findSplit(.all, side: .old, offset: 499))
        descent.split(at: ["500"])
        #expect(descent.next() == .summarize(KeyRange(lower: nil, upper: ["500"])))
        descent.summarized(Self.summary(old: 500, new: 0))
        #expect(descent.next() == .compareRows(KeyRange(lower: nil, upper: ["500"]), limit: 5))
    }

    @Test("the descent stops once the budget is spent, counting every difference of the ranges it compared")
    func budget() {
        var descent = VerifyDescent(range: .all, summary: Self.summary(old: 100, new: 100), keyBudget: 2)
        #expect(descent.next() == .findSplit(.all, side: .old, offset: 49))
        descent.split(at: ["50"])
        _ = descent.next()
        descent.summarized(Self.summary(old: 50, new: 50))
        #expect(descent.next() == .compareRows(KeyRange(lower: nil, upper: ["50"]), limit: 2))
        descent.compared([KeyDifference(key: ["1"], kind: .different), KeyDifference(key: ["2"], kind: .different)], total: 9)
        #expect(descent.next() == .finished)
        #expect(descent.differences.count == 2)
        #expect(descent.differingKeyCount == 9)
        #expect(!descent.complete)
    }

    @Test("a matching range needs nothing")
    func matching() {
        var descent = VerifyDescent(range: .all, summary: Self.summary(old: 5, new: 5, same: true), keyBudget: 1)
        #expect(descent.next() == .finished)
        #expect(descent.complete)
    }
}

@Suite("Verify tally")
struct VerifyTallyTests {
    @Test("equal chunks add up; a differing chunk asks for a descent with the remaining budget")
    func chunks() throws {
        var tally = VerifyTally(maxKeys: 3)
        #expect(tally.record(chunk: KeyRange(lower: nil, upper: ["10"]), RangeSummary(oldRows: 10, oldChecksum: "x", newRows: 10, newChecksum: "x")) == nil)
        let differing = RangeSummary(oldRows: 10, oldChecksum: "x", newRows: 9, newChecksum: "y")
        let started = tally.record(chunk: KeyRange(lower: ["10"], upper: nil), differing)
        var descent = try #require(started)
        #expect(descent.keyBudget == 3)
        _ = descent.next()
        descent.compared([KeyDifference(key: ["12"], kind: .missingInNew)], total: 1)
        _ = descent.next()
        tally.record(descent)
        #expect(tally.chunks == 2)
        #expect(tally.rowsOld == 20)
        #expect(tally.rowsNew == 19)
        #expect(tally.differingChunks == 1)
        #expect(tally.differingKeys == 1)
        #expect(!tally.equal)
        #expect(tally.keysComplete)
        #expect(tally.keyBudget == 2)
        #expect(tally.reportLines(migration: "m", duration: .milliseconds(1500)) == [
            "verify m: DIFFERENT: 2 chunks, 20 old rows, 19 new rows, 1 differing chunks, 1 differing keys, 1.5 s",
            "  missing in new: 12",
        ])
    }

    @Test("once the budget is spent, differing chunks are counted without a descent")
    func budgetSpent() {
        var tally = VerifyTally(maxKeys: 0)
        let differing = RangeSummary(oldRows: 1, oldChecksum: "x", newRows: 1, newChecksum: "y")
        #expect(tally.record(chunk: .all, differing) == nil)
        #expect(tally.differingChunks == 1)
        #expect(!tally.keysComplete)
        #expect(tally.differingKeysText == "at least 0")
        #expect(tally.reportLines(migration: "m", duration: .zero).last == "  (keys named up to --max-keys 0)")
    }

    @Test("an equal run reports EQUAL with its counts")
    func equalReport() {
        var tally = VerifyTally(maxKeys: 100)
        _ = tally.record(chunk: .all, RangeSummary(oldRows: 0, oldChecksum: nil, newRows: 0, newChecksum: nil))
        #expect(tally.equal)
        #expect(tally.reportLines(migration: "users_v2", duration: .milliseconds(20)) == [
            "verify users_v2: EQUAL: 1 chunks, 0 old rows, 0 new rows, 0.02 s",
        ])
        #expect(tally.sampleKeysJSON == "[]")
    }

    @Test("sample keys are JSON, with quotes, backslashes and control characters escaped")
    func json() throws {
        var tally = VerifyTally(maxKeys: 5)
        let started = tally.record(chunk: .all, RangeSummary(oldRows: 2, oldChecksum: "x", newRows: 2, newChecksum: "y"))
        var descent = try #require(started)
        _ = descent.next()
        descent.compared([
            KeyDifference(key: ["a\"b", "c\\d"], kind: .different),
            KeyDifference(key: ["line\nbreak", "\u{1}"], kind: .extraInNew),
        ], total: 2)
        tally.record(descent)
        #expect(tally.sampleKeysJSON == #"[{"key": ["a\"b", "c\\d"], "kind": "different"}, {"key": ["line\nbreak", "\u0001"], "kind": "extra_in_new"}]"#)
    }
}
