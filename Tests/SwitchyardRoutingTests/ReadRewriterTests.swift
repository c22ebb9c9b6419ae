// The read rewriter replaces exactly the read references to a routed relation, or refuses.
import SwitchyardRouting
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

    static func rewrite(_ sql: String) -> RewriteOutcome {
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
    ])
    func rewrites(sql: String, expected: String) {
        #expect(Self.rewrite(sql) == .rewritten(expected))
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
    ])
    func keptOnOldPath(sql: String) {
        guard case .keptOnOldPath = Self.rewrite(sql) else {
            Issue.record("expected the old path for \(sql), got \(Self.rewrite(sql))")
            return
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
        #expect(quoteIdentifier("users") == "users")
        #expect(quoteIdentifier("user") == "\"user\"")
        #expect(quoteIdentifier("My\"Table") == "\"My\"\"Table\"")
        #expect(quoteIdentifier("café") == "\"café\"")
    }
}
