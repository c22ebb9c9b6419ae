// Texts that differ only in constants and comments share one analysis and one rewrite plan.
@testable import SwitchyardRouting
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

    static func key(_ tokens: [(SQLToken.Kind, String)]) -> ShapeKey {
        var builder = ShapeKey.Builder(textBytes: 0, tokens: tokens.count)
        for (kind, spelling) in tokens {
            var text = spelling
            text.withUTF8 { builder.append(kind: kind, spelling: $0) }
        }
        return builder.key
    }

    @Test("a shape key keeps each token's kind and, but for constants, its spelling, with nothing run together")
    func shapeKeys() {
        let ident = SQLToken.Kind.identifier
        let int = SQLToken.Kind.integerConstant
        // Constants count by their kind only.
        #expect(Self.key([(ident, "aid"), (int, "1")]) == Self.key([(ident, "aid"), (int, "123456789")]))
        #expect(Self.key([(ident, "aid"), (int, "1")]).hashValue == Self.key([(ident, "aid"), (int, "2")]).hashValue)
        #expect(Self.key([(ident, "aid"), (int, "1")]) != Self.key([(ident, "aid"), (.stringConstant, "1")]))
        // The same bytes split into other tokens, or of another kind, make another key.
        #expect(Self.key([(ident, "ab"), (ident, "c")]) != Self.key([(ident, "a"), (ident, "bc")]))
        #expect(Self.key([(ident, "a\u{1}")]) != Self.key([(ident, "a"), (.init(rawValue: 1), "")]))
        #expect(Self.key([(ident, "x")]) != Self.key([(.operator, "x")]))
        // Kinds past one byte, and long spellings, keep their length.
        let long = String(repeating: "n", count: 300)
        #expect(Self.key([(.init(rawValue: 700), long)]) != Self.key([(.init(rawValue: 700), long + "n")]))
        #expect(Self.key([(.init(rawValue: 700), "")]) != Self.key([(.init(rawValue: 188), "")]))
        #expect(Self.key([]) == Self.key([]))
    }
}
