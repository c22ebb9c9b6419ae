// Fuzzes the SQL layer: statement analysis of any text, then the read rewriter and the write mirror on a migrated table.
import CPgQuery
import FuzzSupport
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardSQL

@main
enum FuzzSQL {
    static func main() {
        FuzzDriver.main(input: fuzzSQL, seeds: seeds)
    }

    /// users(id, name) read through users_v2(id, full_name), as a projection and, where the
    /// catalog allows it, named directly.
    static let routes = [
        ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
                  columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"]),
        ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
                  columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")], keyColumns: ["id"],
                  directColumns: ["id", "name"]),
    ]

    /// users mirrored into users_v2 with a renamed column, a converted one and an extra one.
    static let mirror: MirrorTarget = {
        var target = MirrorTarget(migration: MigrationConfig(
            name: "users_v2", old: RelationName(schema: "public", name: "users"), new: RelationName(schema: "public", name: "users_v2"),
            key: ["id"],
            columns: [
                ColumnMapping(oldColumn: "id", newColumn: "id"),
                ColumnMapping(oldColumn: "name", newColumn: "full_name"),
                ColumnMapping(oldColumn: "created", newColumn: "created_at",
                              forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'"),
            ],
            extraNewColumns: [ExtraNewColumn(column: "tenant_id", expression: "0")]))
        // The catalog's row width, so that RETURNING * is mirrored too.
        target.rowWidth = 3
        return target
    }()

    /// Shared by every input, as a loop's cache is by its sessions: a text may find the shape or
    /// the masked template another input left.
    static let cache = QueryInfoCache(capacity: 1000)

    /// The input is a query string as a client sends it (bytes that are not UTF-8 repaired, as
    /// the proxy does). Whatever the text, the router's answer is to leave it, serve it from the
    /// old path, or send a text that PostgreSQL's parser reads as as many statements.
    static func check(_ input: [UInt8]) {
        let sql = String(decoding: input, as: UTF8.self)
        checkCache(sql)
        checkCache(String(decoding: digitsVaried(Array(sql.utf8)), as: UTF8.self))
        let statements = SQLAnalyzer.analyze(sql)
        for statement in statements where statement.range.upperBound > sql.utf8.count || statement.range.lowerBound < 0 {
            FuzzDriver.violated("statement range \(statement.range) outside \(sql.utf8.count) bytes")
        }
        for route in routes {
            switch ReadRewriter.plan(sql: sql, statements: statements, routes: [route]) {
            case .untouched, .keptOnOldPath:
                break
            case let .edits(edits, rewritten):
                guard ReadRewriter.apply(edits, to: sql) == rewritten else { FuzzDriver.violated("the rewrite is not its edits applied") }
                expectStatements(in: rewritten, as: sql, added: 0)
            }
        }
        for wire in [WriteMirror.Wire.simple, .extended] {
            let (plan, edits) = WriteMirror.plan(sql: sql, statements: statements, targets: [mirror], wire: wire, marker: "m")
            switch plan {
            case .untouched, .notMirrored:
                break
            case let .mirrored(text, migrations):
                guard migrations.allSatisfy({ $0 == "users_v2" }), ReadRewriter.apply(edits, to: sql) == text else {
                    FuzzDriver.violated("the mirrored text is not its edits applied")
                }
                // The mirrored COPY adds the staging table's creation, the insert and the drop.
                expectStatements(in: text, as: sql, added: WriteMirror.isMirroredCopy(text) ? 3 : 0)
            }
        }
    }

    /// Fails unless what the cache gives for `sql` (found by its text, its shape or its masked
    /// digits) is what analysing it afresh gives: the same statements, tags and rewrites.
    static func checkCache(_ sql: String) {
        let info = cache.info(for: sql)
        let fresh = SQLAnalyzer.analyze(sql)
        guard info.statements.map(\.fingerprint) == fresh.map(\.fingerprint), info.statements.map(\.kind) == fresh.map(\.kind) else {
            FuzzDriver.violated("the cache's statements differ from a fresh analysis: \(sql)")
        }
        guard info.commentTags == sqlcommenterTags(sql) else { FuzzDriver.violated("the cache's comment tags differ: \(sql)") }
        for route in routes {
            switch (cache.rewrite(sql, info: info, routes: [route]), ReadRewriter.rewrite(sql: sql, statements: fresh, routes: [route])) {
            // A statement with several unsafe parts is kept for whichever is found first.
            case (.keptOnOldPath, .keptOnOldPath): break
            case let (cached, analysed) where cached != analysed:
                FuzzDriver.violated("the cache's rewrite differs from a fresh one: \(sql)\n\(cached)\n\(analysed)")
            default: break
            }
        }
    }

    /// The text with every digit moved on by one and every second run of digits one digit
    /// longer: masked like the text, so a cache that saw one serves the other from its template.
    static func digitsVaried(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var run = 0
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b >= 0x30 && b <= 0x39 else {
                out.append(b)
                i += 1
                continue
            }
            while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
                out.append(0x30 + (bytes[i] - 0x30 + 1) % 10)
                i += 1
            }
            if run % 2 == 1 { out.append(0x37) }
            run += 1
        }
        return out
    }

    /// Fails unless libpg_query itself, not the analyzer that produced the text, splits `text`
    /// without error into `added` more statements than `original`.
    static func expectStatements(in text: String, as original: String, added: Int) {
        guard let before = statementCount(original), let after = statementCount(text) else {
            FuzzDriver.violated("a text the router sends does not parse: \(text)")
        }
        if after != before + added {
            FuzzDriver.violated("\(before) statements became \(after), not \(before + added): \(text)")
        }
    }

    static func statementCount(_ sql: String) -> Int? {
        let result = sql.withCString { pg_query_split_with_parser($0) }
        defer { pg_query_free_split_result(result) }
        return result.error == nil ? Int(result.n_stmts) : nil
    }

    /// Statements from the project's rewrite and mirror tests, reads and writes of users among others.
    static func seeds() -> [[UInt8]] {
        [
            "select * from users",
            "select u.name from users u where u.id = 1",
            "select a.id, b.id from users a join users b on a.id = b.id",
            "select o.id from orders o where exists (select 1 from users u where u.id = o.user_id)",
            "with users as (select * from users where id < 10) select * from users",
            "select count(*) as users from users",
            "select t.b from users as t(a, b) where t.a < 3",
            "select id from users union select id from users v",
            "/* cohort='t1' */ select name from \"users\" order by 1 limit 5",
            "select * from users for update",
            "select users from users",
            "select * from only users tablesample system (10)",
            "select public.users.name from public.users",
            "select 1; select name from users",
            "update users set name = 'x' where id = 3",
            "/* app */ INSERT INTO public.users AS u (id, name, created) VALUES (1, 'a', now()) ON CONFLICT (id) DO NOTHING -- done",
            "delete from users x using other o where x.id = o.id;",
            "update users u set name = 'x' where id = 3 returning u.id, *",
            "update users set id = id + 1 where id = 3",
            "insert into users select * from users_archive returning *",
            "with w as (delete from users returning *) insert into archive select * from w",
            "truncate users, orders",
            "copy users (id, name) from stdin",
            "prepare q as select * from users; execute q",
            "SET switchyard.cohort = 'tenant-42'; select 1",
            "select $1::int + 1 from users where name = $2",
        ].map { Array($0.utf8) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSQL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzSQL.check(FuzzDriver.bytes(data, size))
    return 0
}
