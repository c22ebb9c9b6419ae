// Comparing two answers: columns first, then rows as a multiset or in sequence, with bounded samples.

import Testing
import SwitchyardShadow

let int4: UInt32 = 23
let text: UInt32 = 25
let numeric: UInt32 = 1700

func result(_ rows: [[String?]], columns: [ResultColumn] = [ResultColumn(name: "id", typeOID: int4), ResultColumn(name: "name", typeOID: text)]) -> QueryResult {
    QueryResult(columns: columns, rows: rows, commandTag: "SELECT \(rows.count)")
}

@Suite("Result comparison")
struct ResultComparisonTests {
    @Test("equal answers are the same, ordered or not")
    func equal() {
        let a = result([["1", "a"], ["2", "b"]])
        #expect(ResultComparison.compare(old: a, new: a, ordered: false) == .same)
        #expect(ResultComparison.compare(old: a, new: a, ordered: true) == .same)
        #expect(ResultComparison.compare(old: result([]), new: result([]), ordered: true) == .same)
    }

    @Test("without ORDER BY the rows are a multiset: another order is the same")
    func multisetIgnoresOrder() {
        let a = result([["1", "a"], ["2", "b"], ["3", "c"]])
        let b = result([["3", "c"], ["1", "a"], ["2", "b"]])
        #expect(ResultComparison.compare(old: a, new: b, ordered: false) == .same)
    }

    @Test("with ORDER BY another order is a difference of order only, naming the first row that differs")
    func orderedSeesOrder() throws {
        let a = result([["1", "a"], ["2", "b"], ["3", "c"]])
        let b = result([["1", "a"], ["3", "c"], ["2", "b"]])
        guard case let .differentRows(d) = ResultComparison.compare(old: a, new: b, ordered: true) else {
            Issue.record("expected different rows")
            return
        }
        #expect(d.orderOnly)
        #expect(d.firstDifference == 1)
        #expect(d.onlyInOld.isEmpty && d.onlyInNew.isEmpty)
        #expect(d.oldRowCount == 3 && d.newRowCount == 3)
    }

    @Test("duplicates count: a row twice on one side and once on the other differs")
    func duplicatesCount() {
        let a = result([["1", "a"], ["1", "a"], ["2", "b"]])
        let b = result([["1", "a"], ["2", "b"], ["2", "b"]])
        guard case let .differentRows(d) = ResultComparison.compare(old: a, new: b, ordered: false) else {
            Issue.record("expected different rows")
            return
        }
        #expect(d.onlyInOldCount == 1 && d.onlyInNewCount == 1)
        #expect(d.onlyInOld == [["1", "a"]])
        #expect(d.onlyInNew == [["2", "b"]])
        #expect(!d.orderOnly)
        // Same distinct rows, different multiplicity: still a difference.
        let c = result([["1", "a"], ["2", "b"]])
        #expect(ResultComparison.compare(old: a, new: c, ordered: false) != .same)
    }

    @Test("NULL is neither an empty string nor the text NULL")
    func nulls() {
        let withNull = result([["1", nil]])
        #expect(ResultComparison.compare(old: withNull, new: result([["1", ""]]), ordered: false) != .same)
        #expect(ResultComparison.compare(old: withNull, new: result([["1", "NULL"]]), ordered: false) != .same)
        #expect(ResultComparison.compare(old: withNull, new: result([["1", nil]]), ordered: false) == .same)
        // Values are compared as a row, not concatenated: ("ab", "c") is not ("a", "bc").
        #expect(ResultComparison.compare(old: result([["ab", "c"]]), new: result([["a", "bc"]]), ordered: false) != .same)
    }

    @Test("a different column name, type or typmod is a column difference that says which")
    func columns() throws {
        let old = result([["1", "a"]])
        var renamed = old
        renamed.columns[1].name = "full_name"
        guard case let .differentColumns(d1) = ResultComparison.compare(old: old, new: renamed, ordered: false) else {
            Issue.record("expected different columns")
            return
        }
        #expect(d1.mismatches == [.name(position: 2, old: "name", new: "full_name")])
        #expect(d1.namesDiffer && !d1.typesDiffer)
        #expect(d1.description == "column 2 is name on the old path, full_name on the new")

        var retyped = old
        retyped.columns[0].typeOID = 20
        guard case let .differentColumns(d2) = ResultComparison.compare(old: old, new: retyped, ordered: false) else {
            Issue.record("expected different columns")
            return
        }
        #expect(d2.mismatches == [.type(position: 1, column: "id", old: int4, new: 20)])
        #expect(d2.typesDiffer && !d2.namesDiffer)

        let scaled = result([["1.50"]], columns: [ResultColumn(name: "amount", typeOID: numeric, typmod: 655_366)])
        let unscaled = result([["1.50"]], columns: [ResultColumn(name: "amount", typeOID: numeric)])
        #expect(ResultComparison.compare(old: scaled, new: unscaled, ordered: false)
            == .differentColumns(ColumnDifference(old: scaled.columns, new: unscaled.columns,
                                                  mismatches: [.typmod(position: 1, column: "amount", old: 655_366, new: -1)])))

        let fewer = result([["1"]], columns: [ResultColumn(name: "id", typeOID: int4)])
        guard case let .differentColumns(d3) = ResultComparison.compare(old: old, new: fewer, ordered: false) else {
            Issue.record("expected different columns")
            return
        }
        #expect(d3.mismatches == [.count(old: 2, new: 1)])
    }

    @Test("samples are bounded, in the order each side returned its rows, and the counts are complete")
    func samplesBounded() {
        let old = result((0..<100).map { [String($0), "x"] })
        let new = result((50..<200).map { [String($0), "x"] })
        for limit in [0, 1, 5, 7] {
            guard case let .differentRows(d) = ResultComparison.compare(old: old, new: new, ordered: false, sampleLimit: limit) else {
                Issue.record("expected different rows")
                return
            }
            #expect(d.onlyInOldCount == 50 && d.onlyInNewCount == 100)
            #expect(d.oldRowCount == 100 && d.newRowCount == 150)
            #expect(d.onlyInOld == (0..<limit).map { [String($0), "x"] })
            #expect(d.onlyInNew == (100..<(100 + limit)).map { [String($0), "x"] })
        }
    }

    @Test("ordered: a missing row is sampled as a row, not as every shifted position")
    func orderedSamplesRows() {
        let old = result((0..<10).map { [String($0), "x"] })
        var rows = old.rows
        rows.remove(at: 3)
        guard case let .differentRows(d) = ResultComparison.compare(old: old, new: result(rows), ordered: true) else {
            Issue.record("expected different rows")
            return
        }
        #expect(!d.orderOnly)
        #expect(d.firstDifference == 3)
        #expect(d.onlyInOld == [["3", "x"]])
        #expect(d.onlyInNew.isEmpty)
        // A prefix: the first difference is where the shorter one ends.
        guard case let .differentRows(p) = ResultComparison.compare(old: old, new: result(Array(old.rows.prefix(4))), ordered: true) else {
            Issue.record("expected different rows")
            return
        }
        #expect(p.firstDifference == 4)
        #expect(p.onlyInOldCount == 6)
    }

    @Test("tens of thousands of rows compare in linear time")
    func large() {
        let n = 50_000
        let old = result((0..<n).map { [String($0), "name \($0 % 97)"] })
        var shuffled = old.rows
        var g = SystemRandomNumberGenerator()
        shuffled.shuffle(using: &g)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(ResultComparison.compare(old: old, new: result(shuffled), ordered: false) == .same)
            shuffled[n / 2] = ["changed", nil]
            #expect(ResultComparison.compare(old: old, new: result(shuffled), ordered: false) != .same)
        }
        // Quadratic would be 2.5 billion row comparisons; linear is well under a few seconds even in debug.
        #expect(elapsed < .seconds(10))
    }
}
