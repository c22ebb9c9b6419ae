// Tests that analysis never traps or hangs: odd, deep, huge and malformed inputs, and malformed scanner output.
import SwitchyardTestSupport
import Foundation
@testable import SwitchyardSQL
import Testing

@Suite("Robustness")
struct RobustnessTests {
    @Test("odd inputs are handled", arguments: [
        "", ";", ";;;", "\u{FEFF}SELECT 1", "SELECT '\u{1F600}' FROM \"\u{1F600}\"", "SELECT 1 \\", "\\",
        "SELECT U&\"d\\0061t\" FROM U&\"t\\0061b\"", "SELECT * FROM \"\"", "'", "\"", "$1", "/*/*/*", "--",
        "SELECT 1; COMMIT; ROLLBACK; BEGIN; END;", String(repeating: "SELECT 1;", count: 500),
    ])
    func oddInputs(_ sql: String) {
        let analyses = SQLAnalyzer.analyze(sql)
        for analysis in analyses {
            #expect(analysis.range.upperBound <= sql.utf8.count)
            #expect(substring(sql, bytes: analysis.range) == analysis.text)
            for relation in analysis.relations {
                #expect(relation.byteRange.upperBound <= analysis.text.utf8.count)
            }
        }
        _ = comments(in: sql)
        _ = sqlcommenterTags(sql)
    }

    @Test("a Unicode-escaped identifier is located from the tree's location")
    func unicodeEscapedIdentifier() throws {
        let analysis = try #require(SQLAnalyzer.analyze("SELECT * FROM U&\"t\\0061b\"").first)
        let relation = try #require(analysis.relations.first)
        #expect(relation.name == "tab")
        #expect(analysis.spelling(of: relation) == "U&\"t\\0061b\"")
    }

    @Test("text decoded from invalid UTF-8 is analysed")
    func invalidUTF8() throws {
        let text = String(decoding: [0x53, 0x45, 0x4C, 0x45, 0x43, 0x54, 0x20, 0x27, 0xFF, 0xFE, 0x27], as: UTF8.self)
        let analysis = try #require(SQLAnalyzer.analyze(text).first)
        #expect(analysis.kind == .read)
    }

    @Test("a NUL byte is refused rather than silently truncating the text")
    func nulByte() throws {
        let analysis = try #require(SQLAnalyzer.analyze("SELECT 1\u{0}; DROP TABLE t").first)
        #expect(analysis.kind == .unknown)
        #expect(analysis.error == .containsNulByte)
        #expect(throws: SQLAnalysisError.containsNulByte) { try SQLAnalyzer.fingerprint("\u{0}") }
    }

    @Test("text over the size limit is refused")
    func tooLarge() throws {
        let sql = "SELECT '" + String(repeating: "x", count: SQLAnalyzer.maximumInputBytes) + "'"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 1)
        #expect(analyses[0].error == .inputTooLarge(bytes: sql.utf8.count))
        #expect(analyses[0].kind == .unknown)
    }

    @Test("a large flat statement is analysed")
    func largeFlatStatement() throws {
        let rows = (0..<20_000).map { "(\($0), 'row \($0)')" }.joined(separator: ", ")
        let sql = "INSERT INTO bulk (id, name) VALUES " + rows
        let analysis = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(analysis.kind == .write)
        #expect(analysis.relations.map(\.name) == ["bulk"])
        #expect(analysis.normalizedText.hasPrefix("INSERT INTO bulk (id, name) VALUES ($1, $2), ($3, $4)"))
    }

    @Test("very deep operator chains neither crash nor lose the statement", arguments: [2_000, 100_000])
    func deepOperatorChain(terms: Int) throws {
        let sql = "SELECT 1" + String(repeating: "+1", count: terms) + " FROM t"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 1)
        let analysis = analyses[0]
        // Too deep for Foundation's JSON reader, but fingerprinted and normalised.
        #expect(analysis.error == .parseTreeTooDeep)
        #expect(analysis.kind == .unknown)
        #expect(!analysis.fingerprint.isEmpty)
        #expect(analysis.text == sql)
    }

    @Test("a too-deep statement does not cost its neighbours their analysis")
    func deepUnion() throws {
        let union = "SELECT 1" + String(repeating: " UNION ALL SELECT 1", count: 1_000)
        let sql = "SELECT * FROM a; " + union + "; UPDATE \"B\" SET x = 1"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 3)
        #expect(analyses.map(\.error) == [nil, .parseTreeTooDeep, nil])
        #expect(analyses.map(\.kind) == [.read, .unknown, .write])
        #expect(analyses[1].text == union)
        #expect(!analyses[1].fingerprint.isEmpty)
        let update = analyses[2]
        #expect(update.relations.map { update.spelling(of: $0) } == ["\"B\""])
        #expect(substring(sql, bytes: update.range) == "UPDATE \"B\" SET x = 1")
    }

    @Test("moderately deep nesting is fully analysed")
    func moderateNesting() throws {
        let depth = 30
        let sql = String(repeating: "SELECT * FROM (", count: depth) + "SELECT * FROM inner_most"
            + String(repeating: ") s", count: depth)
        let analysis = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(analysis.error == nil)
        #expect(analysis.relations.map(\.name) == ["inner_most"])
        #expect(analysis.relations.first?.position == .subquery)
    }

    @Test("deeply nested parentheses hit PostgreSQL's own limit, not ours")
    func parserStackLimit() throws {
        let sql = "SELECT " + String(repeating: "(", count: 20_000) + "1" + String(repeating: ")", count: 20_000)
        let analysis = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(analysis.isParseError)
    }

    @Test("analysis runs from many threads at once")
    func concurrentAnalysis() {
        let long = "SELECT * FROM t WHERE " + (0..<200).map { "c\($0) = \($0)" }.joined(separator: " OR ")
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            for _ in 0..<20 {
                precondition(SQLAnalyzer.analyze("SELECT * FROM t\(index)").first?.relations.first?.name == "t\(index)")
                precondition(SQLAnalyzer.analyze(long).first?.relations.first?.name == "t")
            }
        }
    }

    @Test("the parser thread returns its result and sizes its stack by input")
    func parserThread() {
        #expect(ParserThread.runOnNewThread(stackSize: 1 << 20) { 41 + 1 } == 42)
        #expect(ParserThread.stackSize(forInputBytes: 10) == ParserThread.minimumStack)
        #expect(ParserThread.stackSize(forInputBytes: 1 << 20) == 512 << 20)
        #expect(ParserThread.stackSize(forInputBytes: .max) == ParserThread.maximumStack)
    }

    @Test("malformed scanner output throws instead of trapping")
    func malformedProtobuf() {
        var rng = SplitMix64(seed: 7)
        for length in 0..<300 {
            let bytes = (0..<(length % 40)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = bytes.withUnsafeBytes { try? ScanResultDecoder.decode($0) }
        }
        // A token whose length prefix runs past the end.
        let truncated: [UInt8] = [0x12, 0x10, 0x08, 0x01]
        #expect(throws: SQLAnalysisError.self) { try truncated.withUnsafeBytes { try ScanResultDecoder.decode($0) } }
    }
}
