// Tests of the scanner token API decoded from libpg_query's protobuf output.
import SwitchyardSQL
import Testing

@Suite("Scanner tokens")
struct SQLTokenTests {
    @Test("tokens carry kinds and byte ranges")
    func tokens() throws {
        let sql = "SELECT \"Ä\".b, $1 FROM t -- c"
        let tokens = try SQLAnalyzer.tokens(in: sql)
        let spelled = tokens.map { substring(sql, bytes: $0.byteRange) }
        #expect(spelled == ["SELECT", "\"Ä\"", ".", "b", ",", "$1", "FROM", "t", "-- c"])
        #expect(tokens[0].isKeyword)
        #expect(tokens[1].kind == .identifier)
        #expect(tokens[2].kind == .dot)
        #expect(tokens[5].kind == .parameter)
        #expect(tokens[8].kind == .sqlComment)
        #expect(tokens[8].isComment)
        #expect(!tokens[7].isKeyword)
    }

    @Test("Unicode-escaped tokens span their whole text")
    func unicodeEscapes() throws {
        let sql = "SELECT U&'a\\0061' , U&\"b\\0062\" /* c */ FROM t"
        let tokens = try SQLAnalyzer.tokens(in: sql)
        let spelled = tokens.map { substring(sql, bytes: $0.byteRange) }
        #expect(spelled == ["SELECT", "U&'a\\0061'", ",", "U&\"b\\0062\"", "/* c */", "FROM", "t"])
        #expect(tokens[1].kind == .unicodeStringConstant)
        #expect(tokens[3].kind == .unicodeIdentifier)
    }

    @Test("scanner errors are syntax errors")
    func scanError() {
        #expect(throws: SQLAnalysisError.self) { try SQLAnalyzer.tokens(in: "SELECT 'open") }
    }

    @Test("the parse tree is available for diagnostics")
    func parseTree() throws {
        let json = try SQLAnalyzer.parseTreeJSON("SELECT 1")
        #expect(json.contains("\"SelectStmt\""))
        #expect(throws: SQLAnalysisError.self) { try SQLAnalyzer.parseTreeJSON("SELEC 1") }
    }
}
