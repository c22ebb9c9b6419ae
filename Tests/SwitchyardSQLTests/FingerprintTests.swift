// Tests of fingerprints (pg_query_fingerprint) and normalised text (pg_query_normalize) per statement.
import SwitchyardSQL
import Testing

@Suite("Fingerprints and normalisation")
struct FingerprintTests {
    private func fingerprint(_ sql: String) -> String? { SQLAnalyzer.analyze(sql).first?.fingerprint }

    @Test("statements differing only in constants, layout and comments share a fingerprint")
    func equalFingerprints() {
        let variants = [
            "SELECT * FROM users WHERE id = 1 AND name = 'a'",
            "SELECT * FROM users WHERE id = 42 AND name = 'bob'",
            "select *\n  from users /* hi */ where id=7 and name='x' -- trailing",
        ]
        let prints = Set(variants.compactMap(fingerprint))
        #expect(prints.count == 1)
        #expect(prints.first?.count == 16)
        #expect(prints.first?.allSatisfy(\.isHexDigit) == true)
    }

    @Test("different tables, columns or shapes give different fingerprints")
    func differentFingerprints() {
        let prints = [
            "SELECT * FROM users WHERE id = 1",
            "SELECT * FROM orders WHERE id = 1",
            "SELECT * FROM users WHERE email = 1",
            "SELECT * FROM users WHERE id = 1 ORDER BY id",
            "DELETE FROM users WHERE id = 1",
        ].compactMap(fingerprint)
        #expect(Set(prints).count == 5)
    }

    @Test("each statement of a multi-statement text is fingerprinted on its own")
    func perStatement() {
        let analyses = SQLAnalyzer.analyze("SELECT 1; SELECT 2; SELECT * FROM t")
        #expect(analyses.count == 3)
        #expect(analyses[0].fingerprint == analyses[1].fingerprint)
        #expect(analyses[0].fingerprint != analyses[2].fingerprint)
        #expect(analyses[0].fingerprint == fingerprint("SELECT 99"))
        #expect((try? SQLAnalyzer.fingerprint("SELECT 5")) == analyses[0].fingerprint)
    }

    @Test("normalised text replaces constants with placeholders")
    func normalizedText() {
        let analysis = SQLAnalyzer.analyze("SELECT * FROM t WHERE a = 1 AND b = 'x' AND c IN (1.5, 2)").first
        #expect(analysis?.normalizedText == "SELECT * FROM t WHERE a = $1 AND b = $2 AND c IN ($3, $4)")
    }

    @Test("existing parameters are kept and new placeholders numbered after them")
    func normalizedWithParameters() {
        #expect(SQLAnalyzer.analyze("SELECT * FROM t WHERE a = $1 AND b = 5").first?.normalizedText
            == "SELECT * FROM t WHERE a = $1 AND b = $2")
        #expect(SQLAnalyzer.analyze("UPDATE t SET a = $1").first?.normalizedText == "UPDATE t SET a = $1")
    }

    @Test("normalising a multi-statement text normalises each statement")
    func normalizedPerStatement() {
        let analyses = SQLAnalyzer.analyze("SELECT 1; SELECT 'a', 2")
        #expect(analyses.map(\.normalizedText) == ["SELECT $1", "SELECT $1, $2"])
    }
}
