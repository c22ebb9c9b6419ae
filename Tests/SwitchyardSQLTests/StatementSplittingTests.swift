// Tests of splitting multi-statement text: statement texts, byte ranges, empty statements and parse errors.
import SwitchyardSQL
import Testing

@Suite("Statement splitting")
struct StatementSplittingTests {
    @Test("each statement gets its own text and byte range in the original string")
    func multipleStatements() throws {
        let sql = "SELECT 1;  INSERT INTO t VALUES ('é');\n\tDELETE FROM u ;"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 3)
        #expect(analyses.map(\.text) == ["SELECT 1", "INSERT INTO t VALUES ('é')", "DELETE FROM u"])
        for analysis in analyses {
            #expect(substring(sql, bytes: analysis.range) == analysis.text)
        }
        #expect(analyses[0].range == 0..<8)
        #expect(analyses[1].range.lowerBound == byteOffset(of: "INSERT", in: sql))
        #expect(analyses.map(\.kind) == [.read, .write, .write])
    }

    @Test("comments before a statement belong to it; trailing whitespace does not")
    func leadingComments() throws {
        let sql = "SELECT 1; /* tag */ -- note\n SELECT 2  \n"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 2)
        #expect(analyses[1].text == "/* tag */ -- note\n SELECT 2")
        #expect(substring(sql, bytes: analyses[1].range) == analyses[1].text)
    }

    @Test("semicolons inside strings, identifiers, comments and dollar quotes do not split")
    func quotedSemicolons() throws {
        let sql = "SELECT ';' AS \"a;b\" /* ; */; SELECT $$;$$; SELECT E'\\';'"
        let analyses = SQLAnalyzer.analyze(sql)
        #expect(analyses.map(\.text) == ["SELECT ';' AS \"a;b\" /* ; */", "SELECT $$;$$", "SELECT E'\\';'"])
    }

    @Test("a rule with several actions is one statement")
    func createRule() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); NOTIFY t); SELECT 1"
        let analyses = SQLAnalyzer.analyze(sql)
        #expect(analyses.count == 2)
        #expect(analyses.first?.kind == .ddl)
    }

    @Test(arguments: ["", "   ", "\n\t ", ";", ";;;", " ; ; ", "/* only a comment */", "-- only a comment", "/* a */ ; -- b"])
    func emptyInputsHaveNoStatements(_ sql: String) {
        #expect(SQLAnalyzer.analyze(sql).isEmpty)
    }

    @Test("one bad statement makes the whole text a single parse error, as in PostgreSQL")
    func parseErrorCoversEverything() throws {
        let sql = "  SELECT 1; SELEC 2; SELECT 3  "
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 1)
        let analysis = analyses[0]
        #expect(analysis.isParseError)
        #expect(analysis.kind == .unknown)
        #expect(analysis.text == "SELECT 1; SELEC 2; SELECT 3")
        #expect(analysis.range == 2..<(sql.utf8.count - 2))
        #expect(analysis.relations.isEmpty)
        #expect(analysis.fingerprint.isEmpty)
        #expect(analysis.normalizedText == analysis.text)
        guard case .syntax(let message, let cursor) = analysis.error else {
            Issue.record("expected a syntax error, got \(String(describing: analysis.error))")
            return
        }
        #expect(message.contains("SELEC"))
        #expect(cursor == 13)
    }

    // A vertical tab is a character of its own to PostgreSQL 15's scanner, alone or with a comment.
    @Test(arguments: ["SELECT 'abc", "SELECT \"abc", "SELECT $$abc", "/* unterminated", "SELECT * FROM", "SELECT (1",
                      "\u{0B}", "\u{0B}-- c"])
    func parseErrors(_ sql: String) throws {
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 1)
        #expect(analyses[0].isParseError)
        #expect(analyses[0].text == sql)
    }
}
