// Texts that differ only in constants and comments share one analysis and one rewrite plan.
@testable import SwitchyardRouting
import SwitchyardSQL
import SwitchyardTestSupport
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

    @Test("a text of a masked key has the tags of its own comments: values moved by its digits, escaped, encoded or digits in keys parsed again")
    func maskedCommentTags() {
        let families: [[String]] = [
            ["/*cohort='k:1',app='a1'*/ select 1 from t where id = 5 /*tail='x9'*/",
             "/*cohort='k:12345',app='a1'*/ select 1 from t where id = 66 /*tail='x9999'*/",
             "/*cohort='k:7',app='a22'*/ select 1 from t where id = 7 /*tail='x0'*/"],
            ["/*cohort='k\\'1'*/ select 1 from t where id = 5", "/*cohort='k\\'123'*/ select 1 from t where id = 50"],
            ["/*cohort='k%3A1'*/ select 1 from t where id = 5", "/*cohort='k%4A1'*/ select 1 from t where id = 5",
             "/*cohort='k%3A1234'*/ select 1 from t where id = 5"],
            ["/*c1='x', c1='y2'*/ select 1 from t where id = 5", "/*c2='x', c1='y3'*/ select 1 from t where id = 6"],
            ["/* note 12 */ select 1 from t where id = 5 /*a='1'*/", "/* note 345 */ select 1 from t where id = 6 /*a='22'*/"],
            ["select 1 from t where id = 5 /*a='',b='1'*/", "select 1 from t where id = 6 /*a='',b='4444'*/"],
        ]
        for texts in families {
            let cache = QueryInfoCache(capacity: 100)
            for sql in texts + texts {
                #expect(cache.info(for: sql).commentTags == sqlcommenterTags(sql), "\(sql)")
            }
            #expect(cache.maskedHits >= texts.count, "\(texts[0]): \(cache.maskedHits) hits")
        }
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
        // set_config carries its values in constants too, in any statement: never one shape's.
        for value in ["tenant-1", "tenant-22", "other"] {
            let info = cache.info(for: "select set_config('switchyard.cohort', '\(value)', false)")
            #expect(ConfigCall.calls(in: info.statements[0]).map { $0.change() } == [.set(name: "switchyard.cohort", value: value, isLocal: false)])
        }
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

    /// Texts with digits in every position a masked run can take, and some it cannot: each `#`
    /// becomes a random run of 1 to 12 digits.
    static let maskedBases = [
        "SELECT /*cohort='k#'*/ abalance FROM pgbench_accounts WHERE aid = #;",
        "select name from users u where u.id = # and name <> 'x-#-y' -- note #\n",
        "/*cohort='t-#',app='a%2#'*/ select u.name from users u join orders o on o.uid = u.id where o.n in (#, #, #) limit # offset #",
        "select name from users where id = -# and id <> #.5 and id < .# and name = E'\\#' and id::numeric(#, 2) > 0",
        "with x as (select id from users where id > #) select * from x, users where users.id = x.id + #",
        "select $1::int + # from users where id = $2",
        "select id from users1 where id = # union all select id from users where id = #",
        "select name from users where id = # /* # a */ and name like '%#%'",
        "update users set name = '#' where id = #",
        "select name from users where id = #;select name from users where id = #",
        // More than sixteen runs, with comments and references after most of them.
        "/*cohort='c#'*/ select name from users where id in (#, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #) /*app='a#'*/"
            + " and exists (select 1 from users v where v.id = # /* # */) -- #\n",
    ]

    @Test("texts masked like one seen before take its tokens without a scan, and route as if scanned")
    func maskedTexts() {
        var rng = SplitMix64(seed: 0x5EED_0000_0000_0042)
        let cache = QueryInfoCache(capacity: 1000)
        for (index, base) in Self.maskedBases.enumerated() {
            let hitsBefore = cache.maskedHits
            // First runs of up to nine digits (an integer constant stays one), then up to twelve.
            for text in 0..<80 {
                if text == 40 {
                    // Where every run may vary, every text after the first came without a scan;
                    // `E'\#'` keeps its digits, so those texts are scanned.
                    let hits = cache.maskedHits - hitsBefore
                    if index == 3 { #expect(hits < 5, "base \(index): \(hits)") } else { #expect(hits == 39, "base \(index): \(hits) of 40") }
                }
                var sql = ""
                for c in base {
                    if c == "#" {
                        let length = Int.random(in: 1...(text < 40 ? 9 : 12), using: &rng)
                        sql += String((0..<length).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
                    } else {
                        sql.append(c)
                    }
                }
                let info = cache.info(for: sql)
                let scanned = SQLAnalyzer.analyze(sql)
                #expect(info.commentTags == sqlcommenterTags(sql), "\(sql)")
                #expect(info.statements.map(\.fingerprint) == scanned.map(\.fingerprint), "\(sql)")
                for route in [Self.route, ReadRewriterTests.directRoute] {
                    #expect(cache.rewrite(sql, info: info, routes: [route]) == ReadRewriter.rewrite(sql: sql, statements: scanned, routes: [route]), "\(sql)")
                }
            }
        }
    }

    @Test("a masked key's rewritten form, filled with each text's digits, rewrites as the planner does: runs next to edits, in replaced names, in aliases")
    func rewrittenForms() {
        var rng = SplitMix64(seed: 0x5EED_0000_0000_0043)
        // The old relation's name holds a digit run (fixed: the same in every text of a key), and
        // edits meet runs on both sides.
        let route = ReadRoute(oldSchema: "public", oldName: "t1", newRelation: "public.t1_v2",
                              columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"])
        let direct = ReadRoute(oldSchema: "public", oldName: "t1", newRelation: "public.t1_v2",
                               columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"],
                               directColumns: ["id", "name"])
        let bases = [
            "/*cohort='k#'*/ select name from t1 where id = #",
            "select name from t1 join t1 b using (id) where t1.id = # and b.id = #",
            "select name from public.t1 where id=#",
            "select name from \"t1\" where id = # limit #",
            "select #,name from t1,t1 x where x.id=# and t1.id=#",
            "select name from t1 where id = #;select name from t1 where id = #",
        ]
        for base in bases {
            let cache = QueryInfoCache(capacity: 100)
            for r in [route, direct] {
                let before = cache.formRewrites
                for _ in 0..<30 {
                    var sql = ""
                    for c in base {
                        if c == "#" {
                            let length = Int.random(in: 1...9, using: &rng)
                            sql += String((0..<length).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
                        } else {
                            sql.append(c)
                        }
                    }
                    let info = cache.info(for: sql)
                    let expected = ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [r])
                    #expect(cache.rewrite(sql, info: info, routes: [r]) == expected, "\(sql)")
                    if case .rewritten = expected {} else { Issue.record("not rewritten: \(sql): \(expected)") }
                }
                // Every text but the first of the key came from the form.
                #expect(cache.formRewrites - before >= 28, "\(base): \(cache.formRewrites - before) of 30")
            }
        }
    }

    @Test("a caller's run list serves text after text, and an info still held keeps its own runs")
    func reusedRuns() {
        let cache = QueryInfoCache(capacity: 100)
        var scratch: [Range<Int>] = []
        let texts = (1...8).map { "/*cohort='k\($0 * $0 * 37)'*/ select name from users where id = \($0 * 1_234_567 % 99_991)" }
        // Each info is kept while the list goes on to the next texts.
        let held = texts.map { sql in (sql, cache.info(for: sql, runs: &scratch)) }
        #expect(cache.maskedHits == texts.count - 1)
        for (sql, info) in held {
            #expect(cache.rewrite(sql, info: info, routes: [Self.route])
                == ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [Self.route]), "\(sql)")
            #expect(info.commentTags == sqlcommenterTags(sql), "\(sql)")
        }
    }

    @Test("texts of two shapes in turn are each served by their own template, whichever was found last")
    func alternatingShapes() {
        let cache = QueryInfoCache(capacity: 100)
        let bases = ["select name from users where id = #", "/*cohort='k#'*/ select u.name from users u where u.id = # limit #"]
        for i in 0..<20 {
            for base in bases {
                let sql = base.replacingOccurrences(of: "#", with: String(i * 7919 % 100_000 + 1))
                let info = cache.info(for: sql)
                #expect(info.commentTags == sqlcommenterTags(sql), "\(sql)")
                #expect(info.statements.map(\.fingerprint) == SQLAnalyzer.analyze(sql).map(\.fingerprint), "\(sql)")
                #expect(cache.rewrite(sql, info: info, routes: [Self.route])
                    == ReadRewriter.rewrite(sql: sql, statements: SQLAnalyzer.analyze(sql), routes: [Self.route]), "\(sql)")
            }
        }
        // The first text of each shape is scanned; every later one is a masked hit.
        #expect(cache.maskedHits == 38)
        // Where the key has a run, no digit; bytes past the key's; a digit run where the key has a letter.
        for sql in ["select name from users where id = ", "select name from users where id = 5 ", "select name from users where id = x5",
                    "select name from users where id = 5select name from users where id = 5"] {
            let hits = cache.maskedHits
            let info = cache.info(for: sql)
            #expect(cache.maskedHits == hits, "\(sql)")
            #expect(info.statements.map(\.fingerprint) == SQLAnalyzer.analyze(sql).map(\.fingerprint), "\(sql)")
            #expect(info.statements.map { $0.error != nil } == SQLAnalyzer.analyze(sql).map { $0.error != nil }, "\(sql)")
        }
    }

    @Test("digits in a name, a parameter, an escape or a dollar-quote tag must be the template's; elsewhere they may vary")
    func fixedDigits() {
        // Each pair masks to one key; the second text must be scanned, not take the first's tokens.
        let rejected = [
            ("select * from t1 where id = 5", "select * from t2 where id = 5"),
            ("select * from \"t1\" where id = 5", "select * from \"t2\" where id = 5"),
            ("select * from users where id = $1 + 5", "select * from users where id = $2 + 5"),
            ("select U&'\\0041' || 5 from users", "select U&'\\0042' || 5 from users"),
            ("select E'\\101' || 5 from users", "select E'\\102' || 5 from users"),
            ("select $a1$x$a1$ || 5 from users", "select $a2$x$a2$ || 5 from users"),
            // Past int32 an integer is scanned as a float, which char(n) does not take: a syntax error.
            ("select cast(name as char(1)) from users where id = 5", "select cast(name as char(99999999999)) from users where id = 5"),
            ("select name::varchar(10) from users where id = 5", "select name::varchar(2147483648) from users where id = 5"),
        ]
        for (a, b) in rejected {
            let cache = QueryInfoCache(capacity: 100)
            _ = cache.info(for: a)
            let info = cache.info(for: b)
            #expect(cache.maskedHits == 0, "\(a) / \(b)")
            #expect(info.statements.map(\.fingerprint) == SQLAnalyzer.analyze(b).map(\.fingerprint), "\(b)")
        }
        // Constants, plain strings and comments may differ, in length too.
        let accepted = [
            ("select * from users where id = 1 + 22", "select * from users where id = 333 + 4"),
            ("/*cohort='k1'*/ select * from users where id = 1.5", "/*cohort='k123'*/ select * from users where id = 10.25"),
            ("select * from users where name = 'a1' -- 7\n", "select * from users where name = 'a12345' -- 0\n"),
            ("select * from t1 where id = 5", "select * from t1 where id = 6"),
            ("select cast(name as char(1)) from users where id = 5", "select cast(name as char(123456789)) from users where id = 5"),
            ("select * from users where id = 1.5", "select * from users where id = 99999999999999999999.5"),
        ]
        for (a, b) in accepted {
            let cache = QueryInfoCache(capacity: 100)
            _ = cache.info(for: a)
            let info = cache.info(for: b)
            #expect(cache.maskedHits == 1, "\(a) / \(b)")
            #expect(info.commentTags == sqlcommenterTags(b))
            #expect(cache.rewrite(b, info: info, routes: [Self.route])
                == ReadRewriter.rewrite(sql: b, statements: SQLAnalyzer.analyze(b), routes: [Self.route]), "\(b)")
        }
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

    @Test("eight bytes at a time, a word holds a digit exactly when one of its bytes is 0 to 9")
    func wordDigits() {
        // Every byte value at every place among fillers just outside the digits ('/' and ':'),
        // and bytes with the high bit set whose low bits are digits.
        for place in 0..<8 {
            for value in 0...255 {
                for filler: UInt8 in [0x2F, 0x3A, 0xB5, 0x00, 0xFF] {
                    var bytes = [UInt8](repeating: filler, count: 8)
                    bytes[place] = UInt8(value)
                    let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    #expect(MaskedText.holdsDigit(word) == MaskedText.isDigit(UInt8(value)), "\(value) at \(place) among \(filler)")
                }
            }
        }
        // A text whose digits sit in every place of a word, and past the last whole word, masks
        // to the runs a byte-by-byte reading finds.
        let text = Array("ab1cdefgh 22 xyzwvuts 3 long_name_without 4567890".utf8) + Array("q9".utf8)
        let runs = text.withUnsafeBufferPointer { MaskedText($0)?.runs }
        #expect(runs == [2..<3, 10..<12, 22..<23, 42..<49, 50..<51])
    }

    @Test("a shape's plan serves texts of the shape whatever their spacing: a name never runs into the next")
    func spacing() {
        // One shape, spelled tight and spaced, in either order into the cache.
        let tight = "/* cx='t1' */ select name from\"users\"or1 limit 5"
        let spaced = "/* cohort='t1' */ select name from \"users\" or1 limit 5"
        for order in [[tight, spaced], [spaced, tight]] {
            let cache = QueryInfoCache(capacity: 100)
            for sql in order {
                let info = cache.info(for: sql)
                let fresh = SQLAnalyzer.analyze(sql)
                for route in [Self.route, ReadRewriterTests.directRoute] {
                    let outcome = cache.rewrite(sql, info: info, routes: [route])
                    #expect(outcome == ReadRewriter.rewrite(sql: sql, statements: fresh, routes: [route]), "\(sql)")
                    guard case let .rewritten(text) = outcome else {
                        Issue.record("\(sql) was not rewritten: \(outcome)")
                        continue
                    }
                    #expect(SQLAnalyzer.analyze(text).allSatisfy { $0.error == nil }, "\(text)")
                }
            }
        }
    }
}

@Suite("Prepared forms of a masked key")
struct PreparedFormTests {
    /// The match of `sql` after `first` made its key, with its runs.
    static func match(_ cache: QueryInfoCache, first: String, _ sql: String, routes: [ReadRoute]? = nil)
        -> (match: MaskedMatch, runs: [Range<Int>])? {
        _ = cache.info(for: first)
        // A key's rewritten form is made by the first text of the key (after the one that made it) rewritten.
        if let routes { _ = cache.rewrite(sql, info: cache.info(for: sql), routes: routes) }
        var text = sql
        var runs: [Range<Int>] = []
        guard let match = text.withUTF8({ cache.matchLast($0, runs: &runs) }) else { return nil }
        return (match, runs)
    }

    static func body(_ cache: QueryInfoCache, _ m: (match: MaskedMatch, runs: [Range<Int>]), _ prepared: PreparedRead, _ sql: String,
                     prepare: Bool) -> String? {
        var text = sql
        return text.withUTF8 { bytes in
            cache.executeBody(m.match, prepared: prepared, head: Array("EXECUTE switchyard_r9".utf8),
                              prepareStatement: prepare ? prepared.prepareStatement(name: "switchyard_r9") : nil, text: bytes, runs: m.runs, front: 5)
        }.map { String(decoding: $0.dropFirst(5).dropLast(), as: UTF8.self) }
    }

    @Test("the old path's and the new path's forms take parameters for the WHERE's integers; a text runs as EXECUTE with its digits and comments")
    func forms() throws {
        let cache = QueryInfoCache(capacity: 100)
        let first = "/*cohort='k1'*/ select name from users u where u.id = 5 and u.id < 600"
        let sql = "/*cohort='k42'*/ select name from users u where u.id = 77 and u.id < 8"
        let m = try #require(Self.match(cache, first: first, sql, routes: [QueryInfoCacheTests.route]))
        #expect(m.match.isPreparable)
        let old = try #require(cache.preparedRead(m.match, routes: nil))
        #expect(Self.body(cache, m, old, sql, prepare: true) ==
            "PREPARE switchyard_r9(int4,int4) AS /*cohort='k1'*/ select name from users u where u.id = $1 and u.id < $2\n;EXECUTE switchyard_r9(77,8) /*cohort='k42'*/")
        #expect(Self.body(cache, m, old, sql, prepare: false) == "EXECUTE switchyard_r9(77,8) /*cohort='k42'*/")
        let new = try #require(cache.preparedRead(m.match, routes: [QueryInfoCacheTests.route]))
        #expect(new.id != old.id)
        #expect(cache.preparedRead(m.match, routes: [QueryInfoCacheTests.route])?.id == new.id, "made once")
        let prepare = try #require(Self.body(cache, m, new, sql, prepare: true))
        #expect(prepare.contains("from \(QueryInfoCacheTests.projection) u where u.id = $1 and u.id < $2\n;EXECUTE switchyard_r9(77,8)"), "\(prepare)")
    }

    @Test("a line comment at the end is closed before what follows; digits that must stay the same (in names) stay in the prepared text",
          arguments: [
              ("select name from users where id = 5 -- request 6", "select name from users where id = 61 -- request 62",
               "PREPARE switchyard_r9(int4) AS select name from users where id = $1 -- request 6\n;EXECUTE switchyard_r9(61) -- request 62\n"),
              ("select name from users_2024 where id = 5", "select name from users_2024 where id = 9",
               "PREPARE switchyard_r9(int4) AS select name from users_2024 where id = $1\n;EXECUTE switchyard_r9(9)"),
          ])
    func asIs(first: String, sql: String, expected: String) throws {
        let cache = QueryInfoCache(capacity: 100)
        let m = try #require(Self.match(cache, first: first, sql))
        let prepared = try #require(cache.preparedRead(m.match, routes: nil))
        #expect(Self.body(cache, m, prepared, sql, prepare: true) == expected)
    }

    @Test("keys whose digits are not all parameters, comments or fixed have no prepared form", arguments: [
        ("select name from users where id = 5 order by 1", "select name from users where id = 6 order by 1"),
        ("select name from users where name = 'a1' and id = 5", "select name from users where name = 'a2' and id = 6"),
        ("select name, 5 from users where id = 5", "select name, 6 from users where id = 6"),
        ("select name from users where id = 5 and 1 = 1; select 1", "select name from users where id = 6 and 1 = 1; select 1"),
        ("update users set name = 'x' where id = 5", "update users set name = 'x' where id = 6"),
    ])
    func notPreparable(first: String, sql: String) throws {
        let cache = QueryInfoCache(capacity: 100)
        let m = try #require(Self.match(cache, first: first, sql))
        #expect(!m.match.isPreparable, "\(sql)")
        #expect(cache.preparedRead(m.match, routes: nil) == nil)
    }
}
