// The read rewriter replaces exactly the read references to a routed relation, or refuses.
import SwitchyardConfig
@testable import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Read rewriter")
struct ReadRewriterTests {
    static let route = ReadRoute(
        oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
        columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"])
    static let projection = "(SELECT id AS id, full_name AS name FROM public.users_v2)"
    /// The projection pruned to the key, for statements that read no other column.
    static let keyOnly = "(SELECT id AS id FROM public.users_v2)"

    /// The same route where the catalog showed users_v2 has the row shape of users.
    static let directRoute = ReadRoute(
        oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
        columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"],
        directColumns: ["id", "name"])
    static let direct = "public.users_v2"

    static func rewrite(_ sql: String, route: ReadRoute = route) -> RewriteOutcome {
        ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [route])
    }

    @Test("rewrites each read reference in place, keeping aliases", arguments: [
        ("select * from users", "select * from \(projection) AS users"),
        ("select u.name from users u where u.id = 1", "select u.name from \(projection) u where u.id = 1"),
        ("select u.name from public.users as u", "select u.name from \(projection) as u"),
        ("select users.name from users", "select users.name from \(projection) AS users"),
        ("select a.id, b.id from users a join users b on a.id = b.id",
         "select a.id, b.id from \(keyOnly) a join \(keyOnly) b on a.id = b.id"),
        ("select o.id from orders o where exists (select 1 from users u where u.id = o.user_id)",
         "select o.id from orders o where exists (select 1 from \(keyOnly) u where u.id = o.user_id)"),
        ("select a.name from users a join orders using (id)", "select a.name from \(projection) a join orders using (id)"),
        ("with x as (select * from users) select * from x", "with x as (select * from \(projection) AS users) select * from x"),
        ("select 1; select name from users", "select 1; select name from \(projection) AS users"),
        ("/* cohort='t1' */ select name from \"users\"", "/* cohort='t1' */ select name from \(projection) AS users"),
        ("with users as (select * from users where id < 10) select * from users",
         "with users as (select * from \(projection) AS users where id < 10) select * from users"),
        ("select count(*) as users from users", "select count(*) as users from \(keyOnly) AS users"),
        ("select name from users group by name", "select name from \(projection) AS users group by name"),
        // A column list renames by position: every column, also with a comment before it.
        ("select a from users /* x */ as t (a, b)", "select a from \(projection) /* x */ as t (a, b)"),
    ])
    func rewrites(sql: String, expected: String) {
        #expect(Self.rewrite(sql) == .rewritten(expected))
    }

    @Test("with the direct form, names the new relation under the old column names, keeping aliases", arguments: [
        ("select * from users", "select * from \(direct) AS users(id, name)"),
        ("select name from public.users where id = 1", "select name from \(direct) AS users(id, name) where id = 1"),
        ("select users.name from \"users\"", "select users.name from \(direct) AS users(id, name)"),
        ("select u.name from users u where u.id = 1", "select u.name from \(direct) u(id, name) where u.id = 1"),
        ("select u.name from public.users as u", "select u.name from \(direct) as u(id, name)"),
        ("select u.name from users AS u", "select u.name from \(direct) AS u(id, name)"),
        ("select \"U\".name from users \"U\" where \"U\".id < 4", "select \"U\".name from \(direct) \"U\"(id, name) where \"U\".id < 4"),
        ("select U.name from users U", "select U.name from \(direct) U(id, name)"),
        ("select u.name from users /* c */ as /* d */ u", "select u.name from \(direct) /* c */ as /* d */ u(id, name)"),
        ("select t.b from users as t(a, b) where t.a < 3", "select t.b from \(direct) as t(a, b) where t.a < 3"),
        ("select t.\"B\" from users t (a, \"B\")", "select t.\"B\" from \(direct) t (a, \"B\")"),
        ("select a.id, b.id from users a join users b on a.id = b.id",
         "select a.id, b.id from \(direct) a(id, name) join \(direct) b(id, name) on a.id = b.id"),
        ("select users.id, u2.id from users join users u2 on u2.id = users.id",
         "select users.id, u2.id from \(direct) AS users(id, name) join \(direct) u2(id, name) on u2.id = users.id"),
        ("select o.id from orders o where exists (select 1 from users u where u.id = o.user_id)",
         "select o.id from orders o where exists (select 1 from \(direct) u(id, name) where u.id = o.user_id)"),
        ("select * from (select id, name from users) s", "select * from (select id, name from \(direct) AS users(id, name)) s"),
        ("with x as (select * from users) select * from x", "with x as (select * from \(direct) AS users(id, name)) select * from x"),
        ("with users as (select * from users u where id < 10) select * from users",
         "with users as (select * from \(direct) u(id, name) where id < 10) select * from users"),
        ("select id from users union select id from users v", "select id from \(direct) AS users(id, name) union select id from \(direct) v(id, name)"),
        ("select 1; select name from users", "select 1; select name from \(direct) AS users(id, name)"),
        ("select name from users natural join orders", "select name from \(direct) AS users(id, name) natural join orders"),
    ])
    func rewritesDirectly(sql: String, expected: String) {
        #expect(Self.rewrite(sql, route: Self.directRoute) == .rewritten(expected))
    }

    @Test("with the direct form, references a table would not answer like the projection keep the projection", arguments: [
        // A partial column list leaves the later columns named by the table (full_name on users_v2).
        ("select t.a, name from users t(a)", "select t.a, name from \(projection) t(a)"),
        // A function in attribute notation takes the row, whose type would be users_v2's.
        ("select u.label from users u", "select u.label from \(projection) u"),
        ("select users.label from users", "select users.label from \(projection) AS users"),
    ])
    func directFallsBackToProjection(sql: String, expected: String) {
        #expect(Self.rewrite(sql, route: Self.directRoute) == .rewritten(expected))
    }

    @Test("a route without the direct form, or with a column list that is no prefix of its columns, uses the projection")
    func withoutDirectForm() {
        #expect(Self.route.directColumns == nil)
        #expect(Self.rewrite("select * from users u") == .rewritten("select * from \(Self.projection) u"))
        let mismatched = ReadRoute(
            oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
            columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"], directColumns: ["name"])
        #expect(mismatched.directColumns == nil)
        let longer = ReadRoute(
            oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
            columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"],
            directColumns: ["id", "name", "email"])
        #expect(longer.directColumns == nil)
        #expect(mismatched == Self.route)
        #expect(Self.directRoute != Self.route)
        #expect(Self.rewrite("select * from users u", route: mismatched) == .rewritten("select * from \(Self.projection) u"))
    }

    @Test("a name put where the text had none between tokens is spaced from them")
    func spacedNames() {
        #expect(Self.rewrite("select name from\"users\"or1", route: Self.directRoute)
            == .rewritten("select name from public.users_v2 or1(id, name)"))
        #expect(Self.rewrite("select name from\"users\"", route: Self.directRoute)
            == .rewritten("select name from public.users_v2 AS users(id, name)"))
        #expect(Self.rewrite("select x.name from\"users\"x", route: Self.directRoute)
            == .rewritten("select x.name from public.users_v2 x(id, name)"))
        // Beside punctuation or a space: left as it is.
        #expect(Self.rewrite("select name from \"users\",orders", route: Self.directRoute)
            == .rewritten("select name from public.users_v2 AS users(id, name),orders"))
        #expect(ReadRewriter.apply([ReadRewriter.Edit(range: 4..<5, replacement: "b2")], to: "a = x+1") == "a = b2+1")
        #expect(ReadRewriter.apply([ReadRewriter.Edit(range: 2..<3, replacement: "_y")], to: "abxcd") == "ab _y cd")
    }

    @Test("the direct form quotes the old names that need it")
    func directQuoting() {
        let route = ReadRoute(oldSchema: "public", oldName: "Order", newRelation: "public.\"Orders v2\"",
                              columns: [(column: "Total", inverse: "\"Total\""), (column: "user", inverse: "\"user\"")],
                              types: ["numeric(10,2)", "integer"], directColumns: ["Total", "user"])
        let sql = "select \"Total\" from \"Order\""
        #expect(ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [route])
            == .rewritten("select \"Total\" from public.\"Orders v2\" AS \"Order\"(\"Total\", \"user\")"))
    }

    @Test("the direct form lists only the first columns, up to the last renamed one, and none when none is")
    func directPrefix() {
        let columns: [(column: String, inverse: String)] = [(column: "id", inverse: "user_id"), (column: "name", inverse: "name")]
        let first = ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v2", columns: columns, directColumns: ["id"])
        #expect(Self.rewrite("select name from users", route: first) == .rewritten("select name from public.users_v2 AS users(id)"))
        #expect(Self.rewrite("select u.id from users u", route: first) == .rewritten("select u.id from public.users_v2 u(id)"))
        let none = ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v2", columns: columns, directColumns: [])
        #expect(none.directColumns == [])
        #expect(none.readForm == "public.users_v2 AS users")
        #expect(Self.rewrite("select name from users", route: none) == .rewritten("select name from public.users_v2 AS users"))
        #expect(Self.rewrite("select u.id from users AS u where u.id = 1", route: none)
            == .rewritten("select u.id from public.users_v2 AS u where u.id = 1"))
        #expect(none != first)
    }

    @Test("a keyword PostgreSQL takes as no column or table name is quoted wherever it stands for one")
    func keywordNames() {
        // `left` and `verbose` are names for types and functions only: a bare `left` in a column
        // alias list, or as a table alias, is a syntax error.
        let route = ReadRoute(oldSchema: "public", oldName: "verbose", newRelation: "public.verbose_v2",
                              columns: [(column: "id", inverse: "id"), (column: "left", inverse: "\"left_v2\"")],
                              directColumns: ["id", "left"])
        let sql = "select \"left\" from \"verbose\""
        let expected = "select \"left\" from public.verbose_v2 AS \"verbose\"(id, \"left\")"
        #expect(ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [route]) == .rewritten(expected))
        #expect(SQLAnalyzer.analyze(expected).allSatisfy { !$0.isParseError })
        #expect(SQLAnalyzer.analyze("select 1 from public.verbose_v2 AS verbose(id, left)").allSatisfy { $0.isParseError })
    }

    @Test("every keyword PostgreSQL's parser does not take as any name is quoted, and no unreserved one")
    func keywordList() {
        let keywords = SQLKeywords.all
        #expect(keywords.count > 400)
        #expect(keywords.contains { $0.word == "left" && $0.category == .typeOrFunctionName })
        for (word, category) in keywords {
            let quoted = RelationName.quotedIdentifier(word) != word
            #expect(quoted == (category != .unreserved), "\(word) (\(category))")
        }
    }

    @Test("leaves statements without routed reads alone", arguments: [
        "select * from orders",
        "select * from other.users",
        "with users as (select 1 as id) select * from users",
        "update users set name = 'x' where id = 1",
        "insert into users (id, name) values (1, 'a')",
        "selec * from users",
        "",
    ])
    func untouched(sql: String) {
        #expect(Self.rewrite(sql) == .untouched)
        #expect(Self.rewrite(sql, route: Self.directRoute) == .untouched)
    }

    @Test("keeps unsafe shapes on the old path", arguments: [
        "select * from users for update",
        "select u from users u",
        "select row_to_json(users) from users",
        "select * from only users",
        "select * from users tablesample system (10)",
        "select public.users.name from public.users",
        "select public.users.name from users",
        "select ctid, id from users",
        "select u.id, u.name from users u group by u.id",
        "select pg_typeof(u.*) from users u",
        "select count(*) from only (users) u",
        "select * from users where id in (select id from users for share)",
        // Comments between ONLY and the table.
        "select * from only /* cohort='t1' */users ta",
        "select count(*) from only -- c\n ( /* d */ users) u",
    ])
    func keptOnOldPath(sql: String) {
        for route in [Self.route, Self.directRoute] {
            guard case .keptOnOldPath = Self.rewrite(sql, route: route) else {
                Issue.record("expected the old path for \(sql), got \(Self.rewrite(sql, route: route))")
                continue
            }
        }
    }

    @Test("casts to the old types when they are known and quotes names that need it")
    func castsAndQuoting() {
        let route = ReadRoute(oldSchema: "public", oldName: "Order", newRelation: "public.orders_v2",
                              columns: [(column: "Total", inverse: "total_cents / 100.0"), (column: "user", inverse: "user_id")],
                              types: ["numeric(10,2)", nil])
        let sql = "select \"Total\" from \"Order\""
        #expect(ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [route])
            == .rewritten("select \"Total\" from (SELECT CAST((total_cents / 100.0) AS numeric(10,2)) AS \"Total\" FROM public.orders_v2) AS \"Order\""))
        let all = "select * from \"Order\""
        #expect(ReadRewriter.rewrite(sql: all, statements: SQLAnalyzer.analyze(all), routes: [route])
            == .rewritten("select * from (SELECT CAST((total_cents / 100.0) AS numeric(10,2)) AS \"Total\", user_id AS \"user\" FROM public.orders_v2) AS \"Order\""))
        #expect(RelationName.quotedIdentifier("users") == "users")
        #expect(RelationName.quotedIdentifier("user") == "\"user\"")
        #expect(RelationName.quotedIdentifier("My\"Table") == "\"My\"\"Table\"")
        #expect(RelationName.quotedIdentifier("café") == "\"café\"")
    }

    /// The general way to apply edits: each replaced in place, from the last position back.
    static func referenceApply(_ edits: [ReadRewriter.Edit], to sql: String) -> String? {
        var bytes = Array(sql.utf8)
        for edit in edits.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            guard edit.range.upperBound <= bytes.count else { return nil }
            bytes.replaceSubrange(edit.range, with: Array(edit.replacement.utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("edits in order are spliced in one pass with the same result as edits applied one by one")
    func applyInOrder() {
        // "é" is two bytes: some ranges cut it, and both ways repair the text the same.
        let sql = "ab é;"
        let count = sql.utf8.count
        var ranges: [Range<Int>] = []
        for lower in 0...(count + 1) {
            for upper in lower...(count + 1) { ranges.append(lower..<upper) }
        }
        var compared = 0
        for first in ranges {
            for second in ranges {
                for (a, b) in [("", "XY"), ("é", "")] {
                    let edits = [ReadRewriter.Edit(range: first, replacement: a), ReadRewriter.Edit(range: second, replacement: b)]
                    // Overlapping edits have no meaning the rewriter relies on; the reference only defines the others.
                    guard first.upperBound <= second.lowerBound || second.upperBound <= first.lowerBound else { continue }
                    #expect(ReadRewriter.applyAsGiven(edits, to: sql) == Self.referenceApply(edits, to: sql), "\(edits)")
                    compared += 1
                }
            }
            let one = [ReadRewriter.Edit(range: first, replacement: "(x)")]
            #expect(ReadRewriter.applyAsGiven(one, to: sql) == Self.referenceApply(one, to: sql), "\(one)")
        }
        #expect(compared > 500)
        #expect(ReadRewriter.apply([], to: sql) == sql)
        #expect(ReadRewriter.apply([ReadRewriter.Edit(range: 2..<(count + 1), replacement: "")], to: sql) == nil)
    }
}
