// The byte prefilter never rules out a text the parser says names a migrated relation or sets a
// setting, and rules out the everyday statements that do neither.
import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Text prefilter")
struct TextPrefilterTests {
    static func withBytes<T>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        var copy = text
        return copy.withUTF8(body)
    }

    static let mentions = RelationMentions(names: ["pgbench_accounts", "pgbench_accounts_v2", "Users", "ünïcode"])

    /// Texts that name one of the relations above, in every spelling PostgreSQL accepts.
    static let naming: [String] = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "select * from PGBENCH_ACCOUNTS a join pgbench_branches b using (bid)",
        "SELECT * FROM public.\"pgbench_accounts\"",
        "SELECT * FROM \"Users\"",
        "UPDATE Pgbench_Accounts SET abalance = 0 WHERE aid = 3",
        "INSERT INTO pgbench_accounts_v2 (aid) VALUES (1)",
        "WITH x AS (SELECT 1) SELECT * FROM x, pgbench_accounts",
        "SELECT * FROM U&\"pgbench\\005faccounts\"",
        "SELECT * FROM u&\"pgbench\\005Faccounts\"",
        "COPY pgbench_accounts FROM STDIN",
        "TRUNCATE pgbench_accounts",
        "SELECT * FROM ünïcode",
        "SELECT * FROM \"ünïcode\"",
    ]

    @Test("eight bytes at a time, a word holds a byte exactly when one of its bytes is either one looked for")
    func wordBytes() {
        for place in 0..<8 {
            for value in 0...255 {
                for filler: UInt8 in [0x00, 0x6F, 0x71, 0x4F, 0x51, 0xF0, 0xFF] {
                    var bytes = [UInt8](repeating: filler, count: 8)
                    bytes[place] = UInt8(value)
                    let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    let expected = bytes.contains(UInt8(ascii: "p")) || bytes.contains(UInt8(ascii: "P"))
                    #expect(FoldedSearch.holdsByte(word, UInt8(ascii: "p"), UInt8(ascii: "P")) == expected, "\(value) at \(place) among \(filler)")
                }
            }
        }
    }

    @Test("a word is found at every place, in any case, as a byte-by-byte reading finds it")
    func foldedSearchAtEveryPlace() {
        let word = Array("accounts".utf8)
        for length in 0..<40 {
            for at in 0...max(0, length - word.count) where length >= word.count {
                for upper in [false, true] {
                    var text = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                    for (k, b) in word.enumerated() { text[at + k] = upper ? b & ~0x20 : b }
                    // A near miss just before it: the first byte alone.
                    if at >= 2 { text[at - 2] = UInt8(ascii: "a") }
                    for from in [0, at, at + 1] where from <= length {
                        let found = text.withUnsafeBufferPointer { t in
                            word.withUnsafeBufferPointer { FoldedSearch.firstIndex(of: $0, in: t, from: from) }
                        }
                        #expect(found == (from <= at ? at : nil), "length \(length), at \(at), from \(from), upper \(upper)")
                    }
                }
            }
        }
    }

    @Test("every text the parser finds one of the relations in may mention it")
    func namingTextsPass() throws {
        let wanted: Set<String> = ["pgbench_accounts", "pgbench_accounts_v2", "Users", "ünïcode"]
        for text in Self.naming {
            let named = SQLAnalyzer.analyze(text).flatMap(\.relations).contains { wanted.contains($0.name) }
            #expect(named, "the parser finds no relation of the list in \(text)")
            #expect(Self.withBytes(text) { Self.mentions.mayMention($0) }, "\(text)")
        }
    }

    @Test("texts naming none of them are ruled out")
    func otherTextsAreRuledOut() {
        let others = [
            "BEGIN", "END", "COMMIT", "SELECT 1",
            "UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = 3",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)",
            "SELECT * FROM customers",
            "SELECT * FROM pgbench_account",
        ]
        for text in others {
            #expect(!Self.withBytes(text) { Self.mentions.mayMention($0) }, "\(text)")
        }
        // A name with a double quote is written doubled in SQL: no text can be ruled out then.
        #expect(Self.withBytes("SELECT 1") { RelationMentions(names: ["a\"b"]).mayMention($0) })
        #expect(!Self.withBytes("SELECT 1") { RelationMentions(names: []).mayMention($0) })
        // A name inside another is looked for alone, and finds both.
        let nested = RelationMentions(names: ["accounts_v2", "accounts", "users", "users"])
        for text in ["SELECT * FROM ACCOUNTS_V2", "select * from accounts", "select * from users"] {
            #expect(Self.withBytes(text) { nested.mayMention($0) }, "\(text)")
        }
        for text in ["select * from account", "select * from v2", "select * from user"] {
            #expect(!Self.withBytes(text) { nested.mayMention($0) }, "\(text)")
        }
    }

    @Test("SET and RESET statements, wherever the parser finds them, may change a setting")
    func settings() {
        let setting = [
            "SET switchyard.cohort = 'a'", "set search_path to app", "  RESET switchyard.cohort", "RESET ALL",
            "BEGIN; SET LOCAL switchyard.cohort = 'b'; SELECT 1", "SELECT 1;\n\tSeT application_name = 'x'",
            "/* tag */ SET switchyard.cohort = 'c'", "-- note\nSET switchyard.cohort = 'd'",
            "SET SESSION switchyard.cohort = 'e'", "reset search_path;",
        ]
        for text in setting {
            let parsed = SQLAnalyzer.analyze(text).contains { $0.statementType == "VariableSetStmt" }
            #expect(parsed, "the parser finds no SET in \(text)")
            #expect(Self.withBytes(text) { TextPrefilter.mayChangeSetting($0) }, "\(text)")
        }
        let notSetting = [
            "UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = 3",
            "SELECT * FROM t OFFSET 5", "SELECT settings FROM config", "SELECT reset_count FROM t",
            "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0", "SELECT 1", "SELECT settings_config FROM t",
        ]
        for text in notSetting {
            let parsed = SQLAnalyzer.analyze(text).contains { $0.statementType == "VariableSetStmt" }
            #expect(!parsed, "the parser finds a SET in \(text)")
            #expect(!Self.withBytes(text) { TextPrefilter.mayChangeSetting($0) }, "\(text)")
        }
    }

    @Test("DEALLOCATE, DISCARD, ROLLBACK and ABORT in any case")
    func words() {
        #expect(Self.withBytes("deallocate all") { TextPrefilter.mayDeallocate($0) })
        #expect(Self.withBytes("DISCARD ALL") { TextPrefilter.mayDeallocate($0) })
        #expect(!Self.withBytes("SELECT 1") { TextPrefilter.mayDeallocate($0) })
        #expect(Self.withBytes("Rollback") { TextPrefilter.mayRollBack($0) })
        #expect(Self.withBytes("ABORT") { TextPrefilter.mayRollBack($0) })
        #expect(!Self.withBytes("COMMIT") { TextPrefilter.mayRollBack($0) })
        #expect(Self.withBytes("COMMIT AND CHAIN") { TextPrefilter.mayChain($0) })
        #expect(!Self.withBytes("COMMIT") { TextPrefilter.mayChain($0) })
        for text in ["SAVEPOINT a", "release savepoint a", "RELEASE a"] {
            #expect(Self.withBytes(text) { TextPrefilter.mayMarkSavepoint($0) }, "\(text)")
        }
        #expect(!Self.withBytes("COMMIT") { TextPrefilter.mayMarkSavepoint($0) })
        #expect(Self.withBytes("EXECUTE w(1)") { TextPrefilter.mayExecute($0) })
        #expect(!Self.withBytes("SELECT 1") { TextPrefilter.mayExecute($0) })
        for text in ["SELECT set_config('a.b', 'c', false)", "select PG_CATALOG.SET_CONFIG($1, $2, $3)"] {
            #expect(Self.withBytes(text) { TextPrefilter.mayChangeSetting($0) }, "\(text)")
            #expect(SQLAnalyzer.analyze(text).allSatisfy { $0.mayCallSetConfig }, "\(text)")
        }
        for text in ["SELECT current_setting('a.b')", "SELECT setconfig, set_conf FROM t"] {
            #expect(!Self.withBytes(text) { TextPrefilter.mayChangeSetting($0) }, "\(text)")
            #expect(!SQLAnalyzer.analyze(text).contains { $0.mayCallSetConfig }, "\(text)")
        }
        #expect(!SQLAnalyzer.analyze("SET a.b = 'c'").contains { $0.mayCallSetConfig })
    }
}
