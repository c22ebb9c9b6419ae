// Writes to a migrated table become one statement that also applies them to the new table.
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Write mirror")
struct WriteMirrorTests {
    static let migration = MigrationConfig(
        name: "users_v2", old: RelationName(schema: "public", name: "users"), new: RelationName(schema: "public", name: "users_v2"),
        key: ["id"],
        columns: [
            ColumnMapping(oldColumn: "id", newColumn: "id"),
            ColumnMapping(oldColumn: "name", newColumn: "full_name"),
            ColumnMapping(oldColumn: "created", newColumn: "created_at", forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'"),
        ],
        extraNewColumns: [ExtraNewColumn(column: "tenant_id", expression: "0")])
    static let target = MirrorTarget(migration: migration)

    static func plan(_ sql: String, wire: WriteMirror.Wire = .simple) -> WritePlan {
        WriteMirror.plan(sql: sql, statements: SQLAnalyzer.analyze(sql), targets: [target], wire: wire, marker: "m").plan
    }

    static let upsert = "INSERT INTO public.users_v2 (id, full_name, created_at, tenant_id) "
        + "SELECT id, name, created AT TIME ZONE 'UTC', 0 FROM switchyard_rows AS users "
        + "ON CONFLICT (id) DO UPDATE SET full_name = EXCLUDED.full_name, created_at = EXCLUDED.created_at"

    @Test("an UPDATE alone returns the changed rows to an upsert of the new table, whose tag the proxy renames")
    func update() {
        let text = "WITH switchyard_rows AS (update users set name = 'x' where id = 3 RETURNING users.*) \(Self.upsert) /*switchyard_tag:m:UPDATE*/"
        #expect(Self.plan("update users set name = 'x' where id = 3") == .mirrored(text, migrations: ["users_v2"]))
        #expect(WriteMirror.renamedVerb(text, tagComment: WriteMirror.updateTagComment(marker: "m")) == "UPDATE")
        #expect(WriteMirror.renamedVerb(text, tagComment: WriteMirror.updateTagComment(marker: "other")) == nil)
        #expect(WriteMirror.mayBeMirrored(text) && !WriteMirror.isMirrored(text))
        #expect(!WriteMirror.mayBeMirrored("update users set name = 'x' where id = 3"))
    }

    @Test("beside other statements an UPDATE ends in a marker row with its tag")
    func updateAmongOthers() {
        #expect(Self.plan("update users set name = 'x' where id = 3; select 1") == .mirrored(
            "WITH switchyard_rows AS (update users set name = 'x' where id = 3 RETURNING users.*), "
                + "switchyard_mirror AS (\(Self.upsert)) SELECT 'm:UPDATE ' || count(*) AS switchyard_mirrored_q FROM switchyard_rows; select 1",
            migrations: ["users_v2"]))
    }

    @Test("an INSERT keeps its alias, comments and ON CONFLICT, and answers with the upsert's INSERT 0 n, as it would alone")
    func insert() {
        let sql = "/* app */ INSERT INTO public.users AS u (id, name, created) VALUES (1, 'a', now()) ON CONFLICT (id) DO NOTHING -- done"
        let text = "/* app */ WITH switchyard_rows AS (INSERT INTO public.users AS u (id, name, created) VALUES (1, 'a', now()) ON CONFLICT (id) DO NOTHING "
            + "RETURNING u.*) \(Self.upsert) -- done"
        #expect(Self.plan(sql, wire: .extended) == .mirrored(text, migrations: ["users_v2"]))
        #expect(WriteMirror.renamedVerb(text, tagComment: WriteMirror.updateTagComment(marker: "m")) == nil)
    }

    @Test("when every mapped column is a key the upsert may skip rows, so the marker row carries the tag")
    func keysOnly() {
        let keys = MigrationConfig(
            name: "tags", old: RelationName(schema: "public", name: "tags"), new: RelationName(schema: "public", name: "tags_v2"),
            key: ["id"], columns: [ColumnMapping(oldColumn: "id", newColumn: "tag_id")])
        let sql = "insert into tags values (1)"
        #expect(WriteMirror.plan(sql: sql, statements: SQLAnalyzer.analyze(sql), targets: [MirrorTarget(migration: keys)], wire: .extended, marker: "m").plan
            == .mirrored("WITH switchyard_rows AS (insert into tags values (1) RETURNING tags.*), switchyard_mirror AS (INSERT INTO public.tags_v2 (tag_id) "
                + "SELECT id FROM switchyard_rows AS tags ON CONFLICT (tag_id) DO NOTHING) "
                + "SELECT 'm:INSERT 0 ' || count(*) AS switchyard_mirrored_x FROM switchyard_rows", migrations: ["tags"]))
    }

    @Test("a DELETE returns the keys to a delete by key of the new table")
    func delete() {
        #expect(Self.plan("delete from users x using other o where x.id = o.id;") == .mirrored(
            "WITH switchyard_rows AS (delete from users x using other o where x.id = o.id RETURNING x.id), "
                + "switchyard_mirror AS (DELETE FROM public.users_v2 WHERE (id) IN (SELECT users.id FROM switchyard_rows AS users)) "
                + "SELECT 'm:DELETE ' || count(*) AS switchyard_mirrored_q FROM switchyard_rows;",
            migrations: ["users_v2"]))
    }

    @Test("RETURNING: a marker column and the old row lead the client's list; a last row carries the tag")
    func returning() {
        #expect(Self.plan("update users u set name = 'x' where id = 3 returning u.id, *") == .mirrored(
            "WITH switchyard_rows AS (update users u set name = 'x' where id = 3 returning 'm:row' AS switchyard_mirrored_r, u AS switchyard_row, u.id, *), "
                + "switchyard_mirror AS (\(Self.upsert.replacingOccurrences(of: "FROM switchyard_rows AS users", with: "FROM (SELECT (switchyard_row).* FROM switchyard_rows) AS users"))) "
                + "SELECT * FROM switchyard_rows UNION ALL SELECT 'm:UPDATE ' || count(*), NULL, NULL, NULL, NULL, NULL FROM switchyard_rows",
            migrations: ["users_v2"]))
    }

    @Test("the reverse mirror (at live) applies writes on the new relation to the old one through the inverse mapping")
    func reverse() {
        let reverse = MirrorTarget(reverseOf: Self.migration)
        let sql = "update users_v2 set full_name = 'x' where id = 1"
        #expect(WriteMirror.plan(sql: sql, statements: SQLAnalyzer.analyze(sql), targets: [reverse], wire: .simple, marker: "m").plan == .mirrored(
            "WITH switchyard_rows AS (update users_v2 set full_name = 'x' where id = 1 RETURNING users_v2.*) "
                + "INSERT INTO public.users (id, name, created) "
                + "SELECT id, full_name, created_at AT TIME ZONE 'UTC' FROM switchyard_rows AS users_v2 "
                + "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, created = EXCLUDED.created /*switchyard_tag:m:UPDATE*/",
            migrations: ["users_v2"]))
        let star = "delete from users_v2 returning *"
        #expect(WriteMirror.plan(sql: star, statements: SQLAnalyzer.analyze(star), targets: [reverse], wire: .simple, marker: "m").plan
                == .notMirrored(migration: "users_v2", reason: "RETURNING * of a new relation is not mirrored back yet"))
    }

    @Test("TRUNCATE empties the new relation in the same statement")
    func truncate() {
        #expect(Self.plan("truncate table other, users * restart identity") == .mirrored(
            "truncate table other, users *, public.users_v2 restart identity", migrations: ["users_v2"]))
        #expect(Self.plan("TRUNCATE public.users") == .mirrored("TRUNCATE public.users, public.users_v2", migrations: ["users_v2"]))
    }

    @Test("each write of a multi-statement text is mirrored; reads and other tables are left alone")
    func several() {
        guard case let .mirrored(text, migrations) = Self.plan("update users set name = 'a'; select 1; insert into other values (1); delete from users") else {
            Issue.record("not mirrored")
            return
        }
        #expect(migrations == ["users_v2", "users_v2"])
        #expect(text.contains("select 1; insert into other values (1); WITH switchyard_rows AS (delete from users RETURNING users.id)"))
        #expect(Self.plan("insert into other select * from users") == .untouched)
        #expect(Self.plan("select * from users") == .untouched)
    }

    @Test("LOCK TABLE changes no rows: nothing to mirror, and no write divergence, in any mode")
    func lock() {
        #expect(Self.plan("lock table users in share row exclusive mode") == .untouched)
        #expect(Self.plan("lock users, other") == .untouched)
        guard case let .mirrored(text, migrations) = Self.plan("lock table users in exclusive mode; update users set name = 'a'") else {
            Issue.record("the update after the lock is not mirrored")
            return
        }
        #expect(migrations == ["users_v2"])
        #expect(text.hasPrefix("lock table users in exclusive mode; WITH switchyard_rows AS (update users set name = 'a'"))
    }

    @Test("forms not mirrored yet say so, naming the migration", arguments: [
        ("update users set name = 'x' from other returning *", "RETURNING * over other tables is not mirrored yet"),
        ("delete from users using other o returning o.*", "RETURNING * over other tables is not mirrored yet"),
        ("with d as (delete from users returning *) select * from d", "writes to the table inside a WITH clause are not mirrored yet"),
        ("copy users from stdin; select 1", "COPY FROM in a query string with other statements is not mirrored"),
        ("merge into users u using src s on u.id = s.id when matched then delete", "MergeStmt is not mirrored yet"),
    ])
    func notMirrored(sql: String, reason: String) {
        #expect(Self.plan(sql) == .notMirrored(migration: "users_v2", reason: reason))
    }

    @Test("one plan serves every text of a token shape, whatever its constants and comments")
    func shapes() {
        let cache = QueryInfoCache()
        let a = "update users set name = 'a' where id = 1 /* x */"
        let b = "update users set name = 'bb' where id = 22 /* y */"
        for (sql, value, id) in [(a, "'a'", "1"), (b, "'bb'", "22")] {
            let plan = cache.mirror(sql, info: cache.info(for: sql), targets: [Self.target], wire: .simple, marker: "m")
            guard case let .mirrored(text, _) = plan else {
                Issue.record("not mirrored: \(plan)")
                continue
            }
            #expect(text.hasPrefix("WITH switchyard_rows AS (update users set name = \(value) where id = \(id) RETURNING users.*)"), "\(text)")
            #expect(text.hasSuffix("created_at = EXCLUDED.created_at /*switchyard_tag:m:UPDATE*/ /* \(sql == a ? "x" : "y") */"), "\(text)")
        }
        #expect(cache.shapeCount == 1)
    }
}

@Suite("Write refusal")
struct WriteRefusalTests {
    @Test("a refusal fails with 0A000, names the migration and the reason, and quotes them safely")
    func text() {
        let text = WriteMirror.refusal(migration: "users_v2", reason: "MergeStmt is not mirrored yet; it's so")
        #expect(WriteMirror.isRefusal(text))
        #expect(text.hasPrefix("DO $switchyard_refusal$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = "))
        #expect(text.contains("migration users_v2 cannot mirror it into its new table: MergeStmt is not mirrored yet; it''s so'"))
        #expect(text.hasSuffix("END$switchyard_refusal$"))
    }

    @Test("a refusal takes the client's parameters: declared types kept, unknown ones as text, up to the highest $n",
          arguments: [
              ([], "update t set id = $1 where id = $2", [25, 25] as [Int32]),
              ([23], "update t set id = $1 where id = $3", [23, 25, 25]),
              ([0, 20, 0], "update t set id = $1", [25, 20, 25]),
              ([], "delete from t", []),
          ] as [([Int32], String, [Int32])])
    func parameters(declared: [Int32], sql: String, expected: [Int32]) {
        #expect(WriteMirror.refusalParameterTypes(declared: declared, sql: sql) == expected)
    }
}

@Suite("Write mirror: key changes")
struct KeyChangeMirrorTests {
    static let tail = "switchyard_moved AS (DELETE FROM public.users_v2 WHERE (id) IN (SELECT switchyard_old_key_1 FROM switchyard_rows "
        + "WHERE (switchyard_old_key_1) IS DISTINCT FROM (id))), switchyard_mirror AS (\(WriteMirrorTests.upsert)) "
        + "SELECT 'm:UPDATE ' || count(*) AS switchyard_mirrored_q FROM switchyard_rows"
    static let prior = "(SELECT id AS switchyard_old_key_1 FROM public.users) AS switchyard_prior"

    @Test("an UPDATE of the key joins the row as it was by key, returns its old key, and moves the row in the new table")
    func plain() {
        #expect(WriteMirrorTests.plan("update users set id = id + 1000 where id = 12") == .mirrored(
            "WITH switchyard_rows AS (update users set id = id + 1000 FROM \(Self.prior) where (id = 12) "
                + "AND switchyard_prior.switchyard_old_key_1 = users.id RETURNING users.*, switchyard_prior.switchyard_old_key_1), \(Self.tail)",
            migrations: ["users_v2"]))
    }

    @Test("with FROM and an alias, and with no WHERE")
    func fromAndAlias() {
        #expect(WriteMirrorTests.plan("update users u set id = o.id from (values (1, 2)) o(old, id) where u.id = o.old") == .mirrored(
            "WITH switchyard_rows AS (update users u set id = o.id from \(Self.prior), (values (1, 2)) o(old, id) where (u.id = o.old) "
                + "AND switchyard_prior.switchyard_old_key_1 = u.id RETURNING u.*, switchyard_prior.switchyard_old_key_1), \(Self.tail)",
            migrations: ["users_v2"]))
        #expect(WriteMirrorTests.plan("update users set id = -id") == .mirrored(
            "WITH switchyard_rows AS (update users set id = -id FROM \(Self.prior) WHERE switchyard_prior.switchyard_old_key_1 = users.id "
                + "RETURNING users.*, switchyard_prior.switchyard_old_key_1), \(Self.tail)",
            migrations: ["users_v2"]))
    }

    @Test("a key change with RETURNING, in an upsert, or WHERE CURRENT OF is not mirrored", arguments: [
        ("update users set id = 2 where id = 1 returning id", "an UPDATE that assigns the key column id with RETURNING is not mirrored yet"),
        ("insert into users values (1) on conflict (id) do update set id = 2", "the statement assigns the key column id"),
        ("update users set id = 2 where current of c", "an UPDATE … WHERE CURRENT OF that assigns a key column is not mirrored"),
    ])
    func notMirrored(sql: String, reason: String) {
        #expect(WriteMirrorTests.plan(sql) == .notMirrored(migration: "users_v2", reason: reason))
    }
}

@Suite("Write mirror: COPY FROM")
struct CopyMirrorTests {
    static func tail(_ insert: String) -> String {
        "; WITH switchyard_rows AS (INSERT INTO public.users \(insert) FROM pg_temp.switchyard_copy RETURNING users.*), "
            + "switchyard_mirror AS (\(WriteMirrorTests.upsert)) SELECT 'm:COPY ' || count(*) AS switchyard_mirrored_q FROM switchyard_rows; "
            + "DROP TABLE pg_temp.switchyard_copy"
    }
    static let staging = "CREATE TEMP TABLE switchyard_copy AS SELECT * FROM public.users WITH NO DATA; "

    @Test("COPY FROM fills a staging table; one statement inserts its rows into the old table and mirrors them")
    func withColumns() {
        let sql = #"COPY public.users (id, "Name", Created) FROM STDIN WITH (FORMAT csv)"#
        #expect(WriteMirrorTests.plan(sql) == .mirrored(
            Self.staging + #"COPY pg_temp.switchyard_copy (id, "Name", Created) FROM STDIN WITH (FORMAT csv)"#
                + Self.tail(#"(id, "Name", created) SELECT id, "Name", created"#),
            migrations: ["users_v2"]))
        #expect(WriteMirror.isMirroredCopy(Self.staging))
    }

    @Test("without a column list every column goes across, in the table's order")
    func allColumns() {
        #expect(WriteMirrorTests.plan("copy users from stdin;") == .mirrored(
            Self.staging + "copy pg_temp.switchyard_copy from stdin" + Self.tail("SELECT *") + ";",
            migrations: ["users_v2"]))
    }

    @Test("COPY FROM in the extended protocol is not mirrored; COPY TO is a read")
    func notMirrored() {
        #expect(WriteMirrorTests.plan("copy users from stdin", wire: .extended)
                == .notMirrored(migration: "users_v2", reason: "COPY FROM in the extended protocol is not mirrored"))
        #expect(WriteMirrorTests.plan("copy users to stdout") == .untouched)
    }
}
