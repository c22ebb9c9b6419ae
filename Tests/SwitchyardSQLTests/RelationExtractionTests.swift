// Table-driven tests of relation extraction: names, aliases, byte ranges, access and position in every SQL position.
import SwitchyardSQL
import Testing

struct RelationCase: Sendable, CustomTestStringConvertible {
    var sql: String
    var expected: [ExpectedRelation]
    var testDescription: String { sql }

    init(_ sql: String, _ expected: ExpectedRelation...) {
        self.sql = sql
        self.expected = expected
    }
}

@Suite("Relation extraction")
struct RelationExtractionTests {
    static let basics: [RelationCase] = [
        RelationCase("SELECT * FROM users", rel("users")),
        RelationCase("SELECT id FROM users u", rel("users", alias: "u")),
        RelationCase("SELECT id FROM users AS u", rel("users", alias: "u")),
        RelationCase("select * from Users", rel("Users", name: "users")),
        RelationCase("SELECT * FROM public.users", rel("public.users", name: "users", schema: "public")),
        RelationCase("SELECT * FROM \"Users\"", rel("\"Users\"", name: "Users")),
        RelationCase(
            "SELECT * FROM \"my schema\".\"my table\" t",
            rel("\"my schema\".\"my table\"", name: "my table", schema: "my schema", alias: "t")
        ),
        RelationCase("SELECT * FROM Public.\"Mixed\"", rel("Public.\"Mixed\"", name: "Mixed", schema: "public")),
        RelationCase("SELECT * FROM \"we\"\"ird\"", rel("\"we\"\"ird\"", name: "we\"ird")),
        RelationCase("SELECT * FROM db.public.users", rel("db.public.users", name: "users", catalog: "db", schema: "public")),
        RelationCase("SELECT * FROM café", rel("café")),
        RelationCase("SELECT 'héllo wörld ☃' AS greeting FROM café AS c", rel("café", alias: "c")),
        RelationCase("SELECT '日本語' FROM \"テーブル\"", rel("\"テーブル\"", name: "テーブル")),
        RelationCase("SELECT 1 FROM ünïcode.tàble", rel("ünïcode.tàble", name: "tàble", schema: "ünïcode")),
        RelationCase("SELECT * FROM ONLY parent", rel("parent")),
        RelationCase("SELECT * FROM parent * p", rel("parent", alias: "p")),
        RelationCase("SELECT * FROM public . /* note */ users", rel("public . /* note */ users", name: "users", schema: "public")),
        RelationCase("SELECT * FROM action", rel("action")),
        RelationCase("SELECT * FROM public.Action", rel("public.Action", name: "action", schema: "public")),
        RelationCase("TABLE users", rel("users")),
        RelationCase("SELECT 1"),
        RelationCase("VALUES (1), (2)"),
        RelationCase("SELECT $1, $2 FROM t WHERE a = $3", rel("t")),
        RelationCase("SELECT now()"),
    ]

    static let joins: [RelationCase] = [
        RelationCase("SELECT * FROM a JOIN b ON a.id = b.id", rel("a"), rel("b", .read, .join)),
        RelationCase("SELECT * FROM a INNER JOIN b USING (id)", rel("a"), rel("b", .read, .join)),
        RelationCase("SELECT * FROM a LEFT JOIN b ON true", rel("a"), rel("b", .read, .join)),
        RelationCase(
            "SELECT * FROM a LEFT OUTER JOIN b ON true RIGHT JOIN c ON true",
            rel("a"), rel("b", .read, .join), rel("c", .read, .join)
        ),
        RelationCase("SELECT * FROM a FULL OUTER JOIN b ON true", rel("a"), rel("b", .read, .join)),
        RelationCase("SELECT * FROM a CROSS JOIN b", rel("a"), rel("b", .read, .join)),
        RelationCase("SELECT * FROM a NATURAL JOIN b", rel("a"), rel("b", .read, .join)),
        RelationCase("SELECT * FROM a, b WHERE a.x = b.x", rel("a"), rel("b")),
        RelationCase(
            "SELECT * FROM a JOIN (b JOIN c ON true) ON true",
            rel("a"), rel("b", .read, .join), rel("c", .read, .join)
        ),
        RelationCase(
            "SELECT * FROM employees e JOIN employees m ON e.manager_id = m.id",
            rel("employees", alias: "e"), rel("employees", alias: "m", .read, .join)
        ),
        RelationCase(
            "SELECT * FROM a JOIN b ON b.id IN (SELECT id FROM c)",
            rel("a"), rel("b", .read, .join), rel("c", .read, .subquery)
        ),
    ]

    static let subqueries: [RelationCase] = [
        RelationCase("SELECT * FROM (SELECT * FROM orders) o", rel("orders", .read, .subquery)),
        RelationCase(
            "SELECT (SELECT count(*) FROM orders) FROM users",
            rel("orders", .read, .subquery), rel("users")
        ),
        RelationCase(
            "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)",
            rel("users"), rel("orders", .read, .subquery)
        ),
        RelationCase(
            "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
            rel("users", alias: "u"), rel("orders", alias: "o", .read, .subquery)
        ),
        RelationCase(
            "SELECT * FROM users WHERE NOT EXISTS (SELECT 1 FROM bans)",
            rel("users"), rel("bans", .read, .subquery)
        ),
        RelationCase(
            "SELECT * FROM users WHERE id = ANY (SELECT user_id FROM admins)",
            rel("users"), rel("admins", .read, .subquery)
        ),
        RelationCase(
            "SELECT u.id FROM users u GROUP BY u.id HAVING count(*) > (SELECT avg(n) FROM stats)",
            rel("users", alias: "u"), rel("stats", .read, .subquery)
        ),
        RelationCase(
            "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) lo",
            rel("users", alias: "u"), rel("orders", alias: "o", .read, .subquery)
        ),
        RelationCase("SELECT * FROM users ORDER BY (SELECT max(x) FROM m)", rel("users"), rel("m", .read, .subquery)),
        RelationCase("SELECT CASE WHEN EXISTS (SELECT 1 FROM flags) THEN 1 END", rel("flags", .read, .subquery)),
        RelationCase(
            "SELECT * FROM (SELECT * FROM (SELECT * FROM deep) x) y",
            rel("deep", .read, .subquery)
        ),
    ]

    static let setOperations: [RelationCase] = [
        RelationCase(
            "SELECT id FROM a UNION SELECT id FROM b",
            rel("a", .read, .setOperation), rel("b", .read, .setOperation)
        ),
        RelationCase(
            "SELECT id FROM a UNION ALL SELECT id FROM b INTERSECT SELECT id FROM c EXCEPT SELECT id FROM d",
            rel("a", .read, .setOperation), rel("b", .read, .setOperation),
            rel("c", .read, .setOperation), rel("d", .read, .setOperation)
        ),
        RelationCase(
            "(SELECT id FROM a ORDER BY id LIMIT 1) UNION (SELECT id FROM b)",
            rel("a", .read, .setOperation), rel("b", .read, .setOperation)
        ),
        RelationCase(
            "SELECT * FROM (SELECT id FROM a UNION SELECT id FROM b) u JOIN c ON true",
            rel("a", .read, .setOperation), rel("b", .read, .setOperation), rel("c", .read, .join)
        ),
    ]

    static let ctes: [RelationCase] = [
        RelationCase("WITH users AS (SELECT * FROM users) SELECT * FROM users", rel("users", .read, .cteBody)),
        RelationCase(
            "WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN y ON true",
            rel("t", .read, .cteBody), rel("y", .read, .join)
        ),
        RelationCase("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b"),
        RelationCase("WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b", rel("a", .read, .cteBody)),
        RelationCase("WITH RECURSIVE b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b"),
        RelationCase(
            "WITH RECURSIVE tree AS (SELECT id FROM nodes WHERE parent IS NULL UNION ALL "
                + "SELECT n.id FROM nodes n JOIN tree t ON n.parent = t.id) SELECT * FROM tree",
            rel("nodes", .read, .setOperation), rel("nodes", alias: "n", .read, .setOperation)
        ),
        RelationCase("SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) s, t", rel("t")),
        RelationCase("WITH t AS (SELECT 1) SELECT * FROM (SELECT * FROM t) s"),
        RelationCase("WITH t AS (SELECT 1) SELECT * FROM public.t", rel("public.t", name: "t", schema: "public")),
        RelationCase(
            "WITH t AS (SELECT 1) SELECT * FROM t WHERE EXISTS (WITH u AS (SELECT * FROM t) SELECT * FROM u, v)",
            rel("v", .read, .subquery)
        ),
        RelationCase(
            "WITH \"Users\" AS (SELECT 1) SELECT * FROM \"Users\", users",
            rel("users")
        ),
        RelationCase(
            "WITH moved AS (DELETE FROM queue WHERE done RETURNING *) INSERT INTO archive SELECT * FROM moved",
            rel("queue", .readWrite, .target), rel("archive", .write, .target)
        ),
        RelationCase("WITH n AS (INSERT INTO t (a) VALUES (1) RETURNING id) SELECT * FROM n", rel("t", .write, .target)),
        RelationCase(
            "WITH u AS (UPDATE accounts SET x = 1 RETURNING *) SELECT * FROM u JOIN audit ON true",
            rel("accounts", .readWrite, .target), rel("audit", .read, .join)
        ),
        RelationCase("WITH x AS (SELECT 1) INSERT INTO x SELECT * FROM x", rel("x", .write, .target)),
        RelationCase(
            "WITH s AS (SELECT * FROM src) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            rel("src", .read, .cteBody), rel("t", .readWrite, .target)
        ),
    ]

    static let modifications: [RelationCase] = [
        RelationCase("INSERT INTO users (name) VALUES ($1)", rel("users", .write, .target)),
        RelationCase(
            "INSERT INTO archive SELECT * FROM events WHERE ts < now()",
            rel("archive", .write, .target), rel("events")
        ),
        RelationCase(
            "INSERT INTO t AS x (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a",
            rel("t", alias: "x", .readWrite, .target)
        ),
        RelationCase("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING", rel("t", .write, .target)),
        RelationCase("UPDATE accounts SET balance = balance - 1 WHERE id = $1", rel("accounts", .readWrite, .target)),
        RelationCase(
            "UPDATE accounts a SET x = s.x FROM sources s WHERE a.id = s.id",
            rel("accounts", alias: "a", .readWrite, .target), rel("sources", alias: "s")
        ),
        RelationCase("UPDATE t SET x = (SELECT max(y) FROM u)", rel("t", .readWrite, .target), rel("u", .read, .subquery)),
        RelationCase(
            "UPDATE t SET (a, b) = (SELECT a, b FROM u WHERE u.id = t.id)",
            rel("t", .readWrite, .target), rel("u", .read, .subquery)
        ),
        RelationCase("DELETE FROM sessions WHERE expires < now()", rel("sessions", .readWrite, .target)),
        RelationCase(
            "DELETE FROM t USING u, v WHERE t.id = u.id",
            rel("t", .readWrite, .target), rel("u", .read, .using), rel("v", .read, .using)
        ),
        RelationCase("DELETE FROM t WHERE id IN (SELECT id FROM u)", rel("t", .readWrite, .target), rel("u", .read, .subquery)),
        RelationCase(
            "MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty "
                + "WHEN NOT MATCHED THEN INSERT VALUES (d.item, d.qty)",
            rel("stock", alias: "s", .readWrite, .target), rel("deliveries", alias: "d", .read, .using)
        ),
        RelationCase(
            "MERGE INTO t USING (SELECT * FROM src) s ON t.id = s.id WHEN MATCHED THEN DELETE",
            rel("t", .readWrite, .target), rel("src", .read, .subquery)
        ),
        RelationCase("COPY users FROM STDIN", rel("users", .write, .target)),
        RelationCase("COPY users (id, name) TO STDOUT", rel("users", .read, .target)),
        RelationCase(
            "COPY (SELECT * FROM users JOIN orders USING (id)) TO STDOUT",
            rel("users"), rel("orders", .read, .join)
        ),
        RelationCase("TRUNCATE a, public.b", rel("a", .write, .target), rel("public.b", name: "b", schema: "public", .write, .target)),
        RelationCase("SELECT * INTO archive FROM events", rel("archive", .write, .target), rel("events")),
        RelationCase("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE", rel("accounts", .write, .target)),
        RelationCase("LOCK TABLE accounts IN ACCESS SHARE MODE", rel("accounts", .read, .target)),
        RelationCase("SELECT * FROM a FOR UPDATE OF a", rel("a")),
        RelationCase("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", rel("mv", .write, .target)),
    ]

    static let ddlAndUtility: [RelationCase] = [
        RelationCase("CREATE TABLE n AS SELECT * FROM o", rel("n", .ddl, .target), rel("o")),
        RelationCase("CREATE MATERIALIZED VIEW mv AS SELECT * FROM o", rel("mv", .ddl, .target), rel("o")),
        RelationCase(
            "CREATE VIEW v AS SELECT * FROM a JOIN b ON true",
            rel("v", .ddl, .target), rel("a"), rel("b", .read, .join)
        ),
        RelationCase("ALTER TABLE users ADD COLUMN x int", rel("users", .ddl, .target)),
        RelationCase(
            "CREATE TABLE orders (id int, user_id int REFERENCES users (id))",
            rel("orders", .ddl, .target), rel("users", .ddl, .target)
        ),
        RelationCase(
            "CREATE INDEX CONCURRENTLY idx ON public.users (email)",
            rel("public.users", name: "users", schema: "public", .ddl, .target)
        ),
        RelationCase(
            "DROP TABLE IF EXISTS a, s.\"B\" CASCADE",
            rel("a", .ddl, .target), rel("s.\"B\"", name: "B", schema: "s", .ddl, .target)
        ),
        RelationCase("DROP VIEW /* gone */ Old_View", rel("Old_View", name: "old_view", .ddl, .target)),
        RelationCase("ALTER TABLE users RENAME TO people", rel("users", .ddl, .target)),
        RelationCase("GRANT SELECT ON users TO reader", rel("users", .ddl, .target)),
        RelationCase("EXPLAIN SELECT * FROM users", rel("users")),
        RelationCase("PREPARE q AS SELECT * FROM users WHERE id = $1", rel("users")),
        RelationCase("VACUUM ANALYZE users", rel("users", .read, .target)),
        RelationCase(
            "CREATE TABLE p1 PARTITION OF parent FOR VALUES IN (1)",
            rel("p1", .ddl, .target), rel("parent", .ddl, .target)
        ),
        RelationCase(
            "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES o (id)",
            rel("t", .ddl, .target), rel("o", .ddl, .target)
        ),
        RelationCase("DROP INDEX CONCURRENTLY IF EXISTS public.idx", rel("public.idx", name: "idx", schema: "public", .ddl, .target)),
        RelationCase(
            "CREATE TEMP TABLE tmp ON COMMIT DROP AS SELECT * FROM t WITH NO DATA",
            rel("tmp", .ddl, .target), rel("t")
        ),
        RelationCase("SELECT * FROM generate_series(1, 3) g, unnest(ARRAY[1]) u"),
        RelationCase("SELECT * FROM t TABLESAMPLE SYSTEM (10)", rel("t")),
        RelationCase("DECLARE c CURSOR FOR SELECT * FROM big", rel("big")),
    ]

    static let comments: [RelationCase] = [
        RelationCase("/* leading */ SELECT * FROM /* inside */ users -- trailing", rel("users")),
        RelationCase("SELECT * -- comment\nFROM\n\tusers", rel("users")),
        RelationCase("SELECT '/* not a comment */', \"FROM x\" FROM t", rel("t")),
        RelationCase("/* héllo ☃ */ SELECT * FROM \"Ü\"./* ü */\"ß\" x", rel("\"Ü\"./* ü */\"ß\"", name: "ß", schema: "Ü", alias: "x")),
        RelationCase("SELECT * FROM t /* trailing */ -- and more", rel("t")),
    ]

    static let allCases = basics + joins + subqueries + setOperations + ctes + modifications + ddlAndUtility + comments

    @Test("at least 60 relation cases")
    func caseCount() {
        #expect(Self.allCases.count >= 60)
    }

    @Test(arguments: allCases)
    func relations(_ testCase: RelationCase) throws {
        let analyses = SQLAnalyzer.analyze(testCase.sql)
        try #require(analyses.count == 1)
        let analysis = analyses[0]
        #expect(analysis.error == nil)
        let found = analysis.relations.map { observed($0, in: analysis) }
        #expect(found == testCase.expected)
        // Every range covers exactly the spelling, in order, without overlap.
        for (previous, next) in zip(analysis.relations, analysis.relations.dropFirst()) {
            #expect(previous.byteRange.upperBound <= next.byteRange.lowerBound)
        }
    }

    @Test("byte ranges are UTF-8 byte offsets")
    func byteOffsets() throws {
        let sql = "SELECT 'ü' FROM café"
        let relation = try #require(SQLAnalyzer.analyze(sql).first?.relations.first)
        // "SELECT 'ü' FROM " is 17 bytes (ü takes two); "café" 5.
        #expect(relation.byteRange == 17..<22)
        #expect(relation.byteRange.lowerBound == byteOffset(of: "café", in: sql))
    }

    @Test("a self-join gives two references with their own aliases and ranges")
    func selfJoin() throws {
        let sql = "SELECT * FROM employees e JOIN employees m ON e.manager_id = m.id"
        let relations = try #require(SQLAnalyzer.analyze(sql).first?.relations)
        try #require(relations.count == 2)
        #expect(relations[0].name == relations[1].name)
        #expect(relations[0].alias == "e")
        #expect(relations[1].alias == "m")
        #expect(relations[0].byteRange == 14..<23)
        #expect(relations[1].byteRange == 31..<40)
    }

    @Test("a CTE shadowing a table reports only the table read in its body")
    func shadowingCTE() throws {
        let sql = "WITH users AS (SELECT * FROM users) SELECT * FROM users"
        let analysis = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(analysis.ctes == ["users"])
        try #require(analysis.relations.count == 1)
        #expect(analysis.relations[0].byteRange == 29..<34)
        #expect(analysis.relations[0].position == .cteBody)
    }

    @Test("nested CTE names are listed in textual order")
    func cteNames() throws {
        let sql = "WITH a AS (SELECT 1), b AS (WITH c AS (SELECT 2) SELECT * FROM c) SELECT * FROM a, b"
        let analysis = try #require(SQLAnalyzer.analyze(sql).first)
        #expect(analysis.ctes == ["a", "b", "c"])
        #expect(analysis.relations.isEmpty)
    }

    @Test("ranges in a later statement are relative to that statement's text")
    func rangesInMultiStatementText() throws {
        let sql = "SELECT 'ñ' FROM a; /* ☃ */ UPDATE \"Big\".tbl SET x = 1"
        let analyses = SQLAnalyzer.analyze(sql)
        try #require(analyses.count == 2)
        let update = analyses[1]
        let target = try #require(update.relations.first)
        #expect(update.spelling(of: target) == "\"Big\".tbl")
        // Offsetting by the statement's range locates the name in the original text.
        let absolute = (update.range.lowerBound + target.byteRange.lowerBound)..<(update.range.lowerBound + target.byteRange.upperBound)
        #expect(substring(sql, bytes: absolute) == "\"Big\".tbl")
        #expect(absolute.lowerBound == byteOffset(of: "\"Big\"", in: sql))
    }
}
