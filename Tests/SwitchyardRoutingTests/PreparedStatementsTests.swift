// Named prepared statements: which text the server holds, what to re-prepare after a flip, and what closes them.
import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Prepared statements")
struct PreparedStatementsTests {
    static let old = "select name from users where id = $1"
    static let new = "select name from public.users_v2 AS users(id, name) where id = $1"

    /// The text each SQL gets on the path in force: `routed` decides.
    static func desired(routed: Bool) -> (String) -> String {
        { sql in routed && sql == old ? new : sql }
    }

    @Test("a statement prepared on the old path is re-prepared after a flip, and back after a flip back")
    func flipAndBack() {
        var p = PreparedStatements()
        p.parsed(name: "s1", sql: Self.old, parameterTypes: [23], sentText: Self.old)
        p.parsed(name: "other", sql: "select 1", parameterTypes: [], sentText: "select 1")
        #expect(p.swaps(desired: Self.desired(routed: false)).isEmpty)

        let forward = p.swaps(desired: Self.desired(routed: true))
        #expect(forward == [PreparedStatements.Swap(name: "s1", text: Self.new, parameterTypes: [23], previous: Self.old)])
        p.finished(forward[0], outcome: .done)
        #expect(p.statements["s1"]?.serverText == Self.new)
        // Recorded at once: asking again sends nothing twice.
        #expect(p.swaps(desired: Self.desired(routed: true)).isEmpty)

        let back = p.swaps(desired: Self.desired(routed: false))
        #expect(back.map(\.text) == [Self.old])
        #expect(back.first?.previous == Self.new)
    }

    @Test("a swap that fails leaves the previous text recorded; one on a missing statement forgets it")
    func failures() {
        var p = PreparedStatements()
        p.parsed(name: "s1", sql: Self.old, parameterTypes: [], sentText: Self.old)
        p.parsed(name: "s2", sql: Self.old, parameterTypes: [], sentText: Self.old)
        let swaps = p.swaps(desired: Self.desired(routed: true))
        #expect(swaps.map(\.name) == ["s1", "s2"])
        p.finished(swaps[0], outcome: .failed)
        p.finished(swaps[1], outcome: .statementMissing)
        #expect(p.statements["s1"]?.serverText == Self.old)
        #expect(p.statements["s2"] == nil)
        // The failed one is tried again at the next check.
        #expect(p.swaps(desired: Self.desired(routed: true)).map(\.name) == ["s1"])
    }

    @Test("the unnamed statement is not tracked; closing, DEALLOCATE and DISCARD ALL forget statements")
    func closing() {
        var p = PreparedStatements()
        p.parsed(name: "", sql: Self.old, parameterTypes: [], sentText: Self.old)
        #expect(p.isEmpty)
        for name in ["a", "b", "Mixed"] { p.parsed(name: name, sql: Self.old, parameterTypes: [], sentText: Self.old) }
        p.closed(name: "a")
        #expect(Set(p.statements.keys) == ["b", "Mixed"])
        p.closedAll()
        #expect(p.isEmpty)
    }

    @Test("preparing a tracked name again forgets it (the server's text is no longer certain); the limit bounds memory")
    func ambiguityAndLimit() {
        var p = PreparedStatements(limit: 2)
        p.parsed(name: "a", sql: Self.old, parameterTypes: [], sentText: Self.old)
        p.parsed(name: "a", sql: "select 2", parameterTypes: [], sentText: "select 2")
        #expect(p.statements["a"] == nil)
        #expect(p.untracked == 1)
        p.parsed(name: "b", sql: Self.old, parameterTypes: [], sentText: Self.old)
        p.parsed(name: "c", sql: Self.old, parameterTypes: [], sentText: Self.old)
        p.parsed(name: "d", sql: Self.old, parameterTypes: [], sentText: Self.old)
        #expect(Set(p.statements.keys) == ["b", "c"])
        #expect(p.untracked == 2)
    }

    @Test("what DEALLOCATE and DISCARD close, read from PostgreSQL's parser", arguments: [
        ("DEALLOCATE s1", PreparedStatements.Deallocation.named("s1")),
        ("deallocate prepare S1", .named("s1")),
        ("DEALLOCATE \"S1\"", .named("S1")),
        ("DEALLOCATE \"all\"", .named("all")),
        ("DEALLOCATE ALL", .all),
        ("DEALLOCATE PREPARE ALL;", .all),
        ("DISCARD ALL", .all),
    ])
    func deallocation(sql: String, expected: PreparedStatements.Deallocation) throws {
        let statement = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(PreparedStatements.deallocation(statement) == expected)
    }

    @Test("DISCARD PLANS and other statements close no prepared statement")
    func noDeallocation() throws {
        for sql in ["DISCARD PLANS", "DISCARD TEMP", "select 1", "PREPARE x AS select 1"] {
            let statement = try #require(SQLAnalyzer.analyze(sql).first)
            #expect(PreparedStatements.deallocation(statement) == nil, "\(sql)")
        }
    }
}
