// Texts that differ only in constants and comments share one analysis and one rewrite plan.
import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Query info cache")
struct QueryInfoCacheTests {
    static let route = ReadRewriterTests.route
    static let projection = ReadRewriterTests.projection

    @Test("one shape serves texts with other constants, string lengths and comments")
    func shapes() {
        let cache = QueryInfoCache(capacity: 100)
        let texts = [
            "/*cohort='k1'*/ select name from users u where u.id = 1 and name <> 'x'",
            "/*cohort='k10000'*/ select name from users u where u.id = 123456 and name <> 'a much longer string'",
            "select name from users u where u.id = 7 and name <> ''",
        ]
        for (i, sql) in texts.enumerated() {
            let info = cache.info(for: sql)
            let outcome = cache.rewrite(sql, info: info, routes: [Self.route])
            let expected = ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [Self.route])
            #expect(outcome == expected, "text \(i)")
            guard case let .rewritten(text) = outcome else {
                Issue.record("not rewritten: \(outcome)")
                continue
            }
            #expect(text.contains("from \(Self.projection) u where"))
        }
        #expect(cache.shapeCount == 1)
        #expect(cache.info(for: texts[1]).commentTags == ["cohort": "k10000"])
        #expect(cache.info(for: texts[2]).commentTags == [:])
    }

    @Test("a direct-form plan, which also edits the alias, serves every text of the shape")
    func directShapes() {
        let cache = QueryInfoCache(capacity: 100)
        let route = ReadRewriterTests.directRoute
        let texts = [
            ("select name from users as u where u.id = 1 and name <> 'x'",
             "select name from public.users_v2 as u(id, name) where u.id = 1 and name <> 'x'"),
            ("/*cohort='k2'*/ select name from users as u where u.id = 123456 and name <> 'a much longer string'",
             "/*cohort='k2'*/ select name from public.users_v2 as u(id, name) where u.id = 123456 and name <> 'a much longer string'"),
            ("select name from users /* c */ as u where u.id = 7 and name <> ''",
             "select name from public.users_v2 /* c */ as u(id, name) where u.id = 7 and name <> ''"),
        ]
        for (sql, expected) in texts {
            #expect(cache.rewrite(sql, info: cache.info(for: sql), routes: [route]) == .rewritten(expected))
        }
        let bare = ["select * from users where id = 1", "select * from users where id = 22"]
        for sql in bare {
            #expect(cache.rewrite(sql, info: cache.info(for: sql), routes: [route])
                == .rewritten(sql.replacingOccurrences(of: "from users", with: "from public.users_v2 AS users(id, name)")))
        }
        #expect(cache.shapeCount == 2)
        // The projection route has plans of its own for the same shapes.
        let sql = "select name from users as u where u.id = 99 and name <> 'y'"
        #expect(cache.rewrite(sql, info: cache.info(for: sql), routes: [Self.route])
            == .rewritten("select name from \(Self.projection) as u where u.id = 99 and name <> 'y'"))
    }

    @Test("SET statements are analysed text by text, so each keeps its own value")
    func settingsNotShared() {
        let cache = QueryInfoCache(capacity: 100)
        let a = cache.info(for: "set switchyard.cohort = 'alpha'")
        let b = cache.info(for: "set switchyard.cohort = 'beta'")
        #expect(SettingChange.changes(in: a.statements[0]) == [.set(name: "switchyard.cohort", value: "alpha", isLocal: false)])
        #expect(SettingChange.changes(in: b.statements[0]) == [.set(name: "switchyard.cohort", value: "beta", isLocal: false)])
    }

    @Test("unsafe shapes stay unsafe for every text of the shape")
    func unsafeShape() {
        let cache = QueryInfoCache(capacity: 100)
        for id in [1, 22, 333] {
            let sql = "select * from users where id = \(id) for update"
            guard case .keptOnOldPath = cache.rewrite(sql, info: cache.info(for: sql), routes: [Self.route]) else {
                Issue.record("expected the old path for \(sql)")
                continue
            }
        }
    }

    @Test("texts differing in a constant's kind, a name or a keyword have different shapes")
    func distinctShapes() {
        let cache = QueryInfoCache(capacity: 100)
        for sql in ["select name from users where id = 1", "select name from users where id = '1'",
                    "select name from users where id = 1.5", "select name from orders where id = 1",
                    "select name from users where id = 2 or id = 3", "select name from users where id = 4"] {
            _ = cache.info(for: sql)
        }
        #expect(cache.shapeCount == 5)
    }
}
