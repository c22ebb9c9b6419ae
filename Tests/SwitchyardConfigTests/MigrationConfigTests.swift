// The migrations section: SQL identifier folding and quoting, accepted forms, and every rule with its key and line.

import Testing
import SwitchyardConfig

@Suite("Identifiers and relation names")
struct IdentifierTests {
    @Test("relation names are folded like PostgreSQL's", arguments: [
        ("users", "public", "users"),
        ("public.users", "public", "users"),
        ("Users", "public", "users"),
        ("PUBLIC.USERS", "public", "users"),
        ("\"Users\"", "public", "Users"),
        ("\"My Schema\".\"Users\"", "My Schema", "Users"),
        ("sales.\"Order Lines\"", "sales", "Order Lines"),
        ("\"a\"\"b\".c", "a\"b", "c"),
        (" app . users ", "app", "users"),
        ("_x$1", "public", "_x$1"),
        ("Café", "public", "café"),
        ("\"a.b\"", "public", "a.b"),
        (String(repeating: "a", count: 63), "public", String(repeating: "a", count: 63)),
    ])
    func relationParses(text: String, schema: String, name: String) throws {
        #expect(try RelationName.parse(text, key: "k") == RelationName(schema: schema, name: name))
    }

    @Test("invalid relation names", arguments: [
        ("", "the name is empty"),
        ("   ", "the name is empty"),
        ("a.", "nothing follows the last \".\""),
        (".a", "starts with a letter or underscore"),
        ("a.b.c", "at most two parts"),
        ("\"\"", "may not be empty"),
        ("\"abc", "no closing"),
        ("1abc", "starts with a letter or underscore"),
        ("a b", "unexpected \"b\""),
        ("a-b", "unexpected \"-\""),
        ("\"a\"b", "unexpected \"b\""),
        (String(repeating: "a", count: 64), "longer than 63 bytes"),
        ("\"" + String(repeating: "é", count: 32) + "\"", "longer than 63 bytes"),
    ])
    func relationRejected(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try RelationName.parse(text, key: "m.old") }
        #expect(error.key == "m.old")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("a single identifier has one part")
    func singleIdentifier() throws {
        #expect(try RelationName.parseIdentifier("Created_At", key: "k") == "created_at")
        #expect(try RelationName.parseIdentifier("\"Created At\"", key: "k") == "Created At")
        let error = try #require(throws: ConfigError.self) { try RelationName.parseIdentifier("a.b", key: "k") }
        #expect(error.message.contains("expected a single column name"))
    }

    @Test("identifiers are quoted only when needed", arguments: [
        ("users", "users"),
        ("_x", "_x"),
        ("full_name2", "full_name2"),
        ("Users", "\"Users\""),
        ("user", "\"user\""),
        ("order", "\"order\""),
        ("table", "\"table\""),
        ("select", "\"select\""),
        ("timestamp", "\"timestamp\""),
        ("left", "\"left\""),
        ("my table", "\"my table\""),
        ("a\"b", "\"a\"\"b\""),
        ("1abc", "\"1abc\""),
        ("x$", "\"x$\""),
        ("café", "\"café\""),
        ("a.b", "\"a.b\""),
    ])
    func quoting(identifier: String, expected: String) {
        #expect(RelationName.quotedIdentifier(identifier) == expected)
        #expect((try? RelationName.parseIdentifier(expected, key: "k")) == identifier)
    }

    @Test("description is a qualified name that parses back", arguments: [
        RelationName(name: "users"),
        RelationName(schema: "app_v2", name: "users"),
        RelationName(schema: "My Schema", name: "Users"),
        RelationName(schema: "public", name: "user"),
        RelationName(schema: "we\"ird", name: "a.b"),
        RelationName(schema: "Ünïcode", name: "naïve"),
    ])
    func relationRoundTrip(relation: RelationName) throws {
        #expect(try RelationName.parse(relation.description, key: "k") == relation)
    }

    @Test("descriptions")
    func descriptions() {
        #expect(RelationName(name: "users").description == "public.users")
        #expect(RelationName(schema: "My Schema", name: "Users").description == "\"My Schema\".\"Users\"")
        #expect(RelationName(schema: "public", name: "order").description == "public.\"order\"")
    }
}

@Suite("The migrations section")
struct MigrationConfigTests {
    @Test("the full document reads into the model")
    func fullDocument() throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.text)
        #expect(config.migrations == [
            MigrationConfig(
                name: "users_v2",
                old: RelationName(schema: "public", name: "users"),
                new: RelationName(schema: "public", name: "users_v2"),
                key: ["id"],
                columns: [
                    ColumnMapping(oldColumn: "id", newColumn: "id", forward: "id", inverse: "id"),
                    ColumnMapping(oldColumn: "name", newColumn: "full_name", forward: "name", inverse: "full_name"),
                    ColumnMapping(
                        oldColumn: "created", newColumn: "created_at",
                        forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'"),
                ],
                extraNewColumns: [ExtraNewColumn(column: "tenant_id", expression: "0")]),
        ])
        #expect(config.migrations[0].columns.map(\.isPlainRename) == [true, true, false])
        #expect(config.migrations[0].column(old: "name")?.newColumn == "full_name")
        #expect(config.migrations[0].column(old: "missing") == nil)
    }

    @Test("without the sections: no migrations, no flags, the default control schema")
    func defaults() throws {
        for body in ["", "migrations:\nflags: []\ncontrol:", "migrations: []\nflags:\ncontrol: {}"] {
            let config = try Fixture.parse(body)
            #expect(config.migrations.isEmpty)
            #expect(config.flags.isEmpty)
            #expect(config.control == ControlConfig(schema: "switchyard", database: nil))
            #expect(config == SwitchyardConfiguration(upstream: config.upstream))
        }
    }

    @Test("column names are folded, quoted names kept, and default expressions quote when needed")
    func columnForms() throws {
        let config = try Fixture.parse("""
            migrations:
              - name: orders_v2
                old: '"Sales"."Orders"'
                new: sales.orders_v2
                key: [ID]
                columns:
                  ID: id
                  '"Customer"': customer_id
                  user: owner
                  Total: { new: '"Total Cents"', forward: "(\\"Total\\" * 100)::bigint" }
                  note: { new: note, inverse: "coalesce(note, '')" }
                  placed: { new: placed_at, forward: null }
                extra_new_columns:
                  Currency: "'EUR'"
                  "\\"Source\\"": "'legacy'"
            """)
        let migration = try #require(config.migrations.first)
        #expect(migration.old == RelationName(schema: "Sales", name: "Orders"))
        #expect(migration.new == RelationName(schema: "sales", name: "orders_v2"))
        #expect(migration.key == ["id"])
        #expect(migration.columns == [
            ColumnMapping(oldColumn: "id", newColumn: "id"),
            ColumnMapping(oldColumn: "Customer", newColumn: "customer_id", forward: "\"Customer\"", inverse: "customer_id"),
            ColumnMapping(oldColumn: "user", newColumn: "owner", forward: "\"user\"", inverse: "owner"),
            ColumnMapping(oldColumn: "total", newColumn: "Total Cents", forward: "(\"Total\" * 100)::bigint",
                          inverse: "\"Total Cents\""),
            ColumnMapping(oldColumn: "note", newColumn: "note", forward: "note", inverse: "coalesce(note, '')"),
            ColumnMapping(oldColumn: "placed", newColumn: "placed_at", forward: "placed", inverse: "placed_at"),
        ])
        #expect(migration.extraNewColumns == [
            ExtraNewColumn(column: "currency", expression: "'EUR'"),
            ExtraNewColumn(column: "Source", expression: "'legacy'"),
        ])
    }

    @Test("several migrations, and flags written before the migrations they name")
    func severalMigrations() throws {
        let config = try Fixture.parse("""
            flags:
              - {name: b_flag, migration: b}
              - {name: a_flag, migration: a}
            migrations:
              - {name: a, old: a, new: a_v2, key: [id], columns: {id: id}}
              - {name: b, old: app.b, new: app.b_v2, key: [x, y], columns: {x: x, y: y, z: zz}, extra_new_columns: {}}
            """)
        #expect(config.migrations.map(\.name) == ["a", "b"])
        #expect(config.migrations[1].key == ["x", "y"])
        #expect(config.migrations[1].extraNewColumns.isEmpty)
        #expect(config.flags.map(\.name) == ["b_flag", "a_flag"])
        #expect(config.flags.map(\.migration) == ["b", "a"])
    }

    /// Every rule, as a variant of MigrationDocument with the given lines replaced.
    @Test("rejected migrations name the key and line", arguments: [
        // name
        InvalidCase(MigrationDocument.replacing([3: "  - name: Users"]), key: "migrations[0].name", line: 3,
                    "a migration name is a plain identifier"),
        InvalidCase(MigrationDocument.replacing([3: "  - name: users-v2"]), key: "migrations[0].name", line: 3,
                    "got \"users-v2\""),
        InvalidCase(MigrationDocument.replacing([3: "  - name:"]), key: "migrations[0].name", line: 3, "got nothing (null)"),
        InvalidCase(MigrationDocument.replacing([3: "  -"]), key: "migrations[0].name", line: 4, "required"),
        InvalidCase(MigrationDocument.replacing([3: "  - nmae: users_v2"]), key: "migrations[0].nmae", line: 3,
                    "unknown key; did you mean name?"),
        InvalidCase(MigrationDocument.replacing([11: "    extra_new_column:"]), key: "migrations[0].extra_new_column",
                    line: 11, "did you mean extra_new_columns?"),
        // old and new
        InvalidCase(MigrationDocument.replacing([4: "    old: public.users_v2"]), key: "migrations[0].new", line: 5,
                    "is the same relation as old (public.users_v2)"),
        InvalidCase(MigrationDocument.replacing([5: "    new: USERS"]), key: "migrations[0].new", line: 5,
                    "is the same relation as old (public.users)"),
        InvalidCase(MigrationDocument.replacing([4: "    old: db.public.users"]), key: "migrations[0].old", line: 4,
                    "at most two parts"),
        InvalidCase(MigrationDocument.replacing([4: "    old: '\"users'"]), key: "migrations[0].old", line: 4, "no closing"),
        InvalidCase(MigrationDocument.replacing([4: "    old: 2users"]), key: "migrations[0].old", line: 4,
                    "starts with a letter or underscore"),
        InvalidCase(MigrationDocument.replacing([4: "    old: my users"]), key: "migrations[0].old", line: 4,
                    "write names with spaces or punctuation in double quotes"),
        InvalidCase(MigrationDocument.replacing([4: "    old:"]), key: "migrations[0].old", line: 4, "got nothing (null)"),
        InvalidCase(MigrationDocument.replacing([4: "    # no old"]), key: "migrations[0].old", line: 3, "required"),
        InvalidCase(MigrationDocument.replacing([5: "    new: [users_v2]"]), key: "migrations[0].new", line: 5, "got a list"),
        InvalidCase(MigrationDocument.replacing([4: "    old: switchyard.users"]), key: "migrations[0].old", line: 4,
                    "is in the control schema switchyard"),
        InvalidCase(MigrationDocument.replacing([5: "    new: '\"Ctl\".users_v2'", 19: "  schema: '\"Ctl\"'"]),
                    key: "migrations[0].new", line: 5, "is in the control schema \"Ctl\""),
        // key
        InvalidCase(MigrationDocument.replacing([6: "    key: []"]), key: "migrations[0].key", line: 6,
                    "at least one primary key column"),
        InvalidCase(MigrationDocument.replacing([6: "    key: [uid]"]), key: "migrations[0].key", line: 6,
                    "key column uid is not in columns; map it there (uid: uid when the name is unchanged)"),
        InvalidCase(MigrationDocument.replacing([6: "    key:\n      - id\n      - email"]), key: "migrations[0].key", line: 8,
                    "key column email is not in columns"),
        InvalidCase(MigrationDocument.replacing([6: "    key: [id, ID]"]), key: "migrations[0].key", line: 6,
                    "key column id is listed twice"),
        InvalidCase(MigrationDocument.replacing([6: "    key: id"]), key: "migrations[0].key", line: 6,
                    "expected a list of primary key columns such as [id], got \"id\""),
        InvalidCase(MigrationDocument.replacing([6: "    key: [[id]]"]), key: "migrations[0].key", line: 6, "got a list in it"),
        InvalidCase(MigrationDocument.replacing([6: "    key: [full_name]"]), key: "migrations[0].key", line: 6,
                    "key column full_name is not in columns"),
        InvalidCase(MigrationDocument.replacing([6: "    # no key"]), key: "migrations[0].key", line: 3, "required"),
        // columns
        InvalidCase(MigrationDocument.replacing([7: "    columns: {}", 8: "#", 9: "#", 10: "#"]),
                    key: "migrations[0].columns", line: 7, "at least one column is needed"),
        InvalidCase(MigrationDocument.replacing([7: "    columns: [id]", 8: "#", 9: "#", 10: "#"]),
                    key: "migrations[0].columns", line: 7, "expected a mapping from each old column to its new column"),
        InvalidCase(MigrationDocument.replacing([7: "#", 8: "#", 9: "#", 10: "#"]),
                    key: "migrations[0].columns", line: 3, "required"),
        InvalidCase(MigrationDocument.replacing([9: "      name: id"]), key: "migrations[0].columns.name", line: 9,
                    "new column id already mirrors old column id (line 8)"),
        InvalidCase(MigrationDocument.replacing([10: "      created: { new: FULL_NAME }"]),
                    key: "migrations[0].columns.created.new", line: 10,
                    "new column full_name already mirrors old column name (line 9)"),
        InvalidCase(MigrationDocument.replacing([9: "      ID: full_name"]), key: "migrations[0].columns.ID", line: 9,
                    "old column id is already mapped on line 8"),
        InvalidCase(MigrationDocument.replacing([9: "      id: full_name"]), key: "migrations[0].columns.id", line: 9,
                    "duplicate key (first set on line 8)"),
        InvalidCase(MigrationDocument.replacing([9: "      name:"]), key: "migrations[0].columns.name", line: 9,
                    "expected the new column's name (name: name when it is unchanged)"),
        InvalidCase(MigrationDocument.replacing([9: "      name: [full_name]"]), key: "migrations[0].columns.name", line: 9,
                    "got a list"),
        InvalidCase(MigrationDocument.replacing([9: "      name: full name"]), key: "migrations[0].columns.name", line: 9,
                    "invalid column name \"full name\""),
        InvalidCase(MigrationDocument.replacing([9: "      1name: full_name"]), key: "migrations[0].columns.1name", line: 9,
                    "starts with a letter or underscore"),
        InvalidCase(MigrationDocument.replacing([9: "      name: " + String(repeating: "n", count: 64)]),
                    key: "migrations[0].columns.name", line: 9, "longer than 63 bytes"),
        InvalidCase(MigrationDocument.replacing([10: "      created: { new: created_at, forwrd: x }"]),
                    key: "migrations[0].columns.created.forwrd", line: 10, "did you mean forward?"),
        InvalidCase(MigrationDocument.replacing([10: "      created: { forward: x }"]),
                    key: "migrations[0].columns.created.new", line: 10, "required: the new column's name"),
        InvalidCase(MigrationDocument.replacing([10: "      created: { new: created_at, forward: '' }"]),
                    key: "migrations[0].columns.created.forward", line: 10,
                    "the SQL expression is empty; omit forward to use the old column as it is"),
        InvalidCase(MigrationDocument.replacing([10: "      created:\n        new: created_at\n        inverse: '  '"]),
                    key: "migrations[0].columns.created.inverse", line: 12, "the SQL expression is empty; omit inverse"),
        InvalidCase(MigrationDocument.replacing([10: "      created: { new: created_at, forward: [a] }"]),
                    key: "migrations[0].columns.created.forward", line: 10, "expected an SQL expression, got a list"),
        // extra_new_columns
        InvalidCase(MigrationDocument.replacing([12: "      full_name: \"''\""]),
                    key: "migrations[0].extra_new_columns.full_name", line: 12,
                    "new column full_name is already filled from old column name (line 9)"),
        InvalidCase(MigrationDocument.replacing([12: "      tenant_id: ''"]),
                    key: "migrations[0].extra_new_columns.tenant_id", line: 12, "the SQL expression is empty"),
        InvalidCase(MigrationDocument.replacing([12: "      tenant_id:"]),
                    key: "migrations[0].extra_new_columns.tenant_id", line: 12, "got nothing (null)"),
        InvalidCase(MigrationDocument.replacing([11: "    extra_new_columns: [tenant_id]", 12: "#"]),
                    key: "migrations[0].extra_new_columns", line: 11, "expected a mapping from each new column"),
        InvalidCase(MigrationDocument.replacing([12: "      tenant_id: \"0\"\n      TENANT_ID: \"1\""]),
                    key: "migrations[0].extra_new_columns.TENANT_ID", line: 13, "already listed on line 12"),
        // the list and its items
        InvalidCase(MigrationDocument.replacing([2: "migrations: {users_v2: {}}"] + blank(3...12)),
                    key: "migrations", line: 2, "expected a list of migrations"),
        InvalidCase(MigrationDocument.replacing([3: "  - users_v2"] + blank(4...12)), key: "migrations[0]", line: 3,
                    "expected a mapping with the keys name, old, new, key, columns, extra_new_columns"),
        InvalidCase(MigrationDocument.replacing([12: "      tenant_id: \"0\"\n  - {name: users_v2, old: a, new: b, key: [id], "
                    + "columns: {id: id}}"]), key: "migrations[1].name", line: 13,
                    "migration name users_v2 is already used by migrations[0] (line 3)"),
        InvalidCase(MigrationDocument.replacing([12: "      tenant_id: \"0\"\n  - name: users_v3\n    old: Users_V2"
                    + "\n    new: users_v3\n    key: [id]\n    columns: {id: id}"]), key: "migrations[1].old", line: 14,
                    "public.users_v2 is already part of migrations[0].new (line 5)"),
    ])
    func rejected(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("unmirrored_writes: record or refuse; without it, refuse follows strict")
    func unmirroredWrites() throws {
        func policy(_ lines: String) throws -> MigrationConfig.UnmirroredWrites? {
            try ConfigLoader.parse(yaml: MigrationDocument.replacing([6: "    key: [id]" + lines])).migrations.first?.unmirroredWrites
        }
        #expect(try policy("") == .record)
        #expect(try policy("\n    strict: true") == .refuse)
        #expect(try policy("\n    unmirrored_writes: refuse") == .refuse)
        #expect(try policy("\n    strict: true\n    unmirrored_writes: record") == .record)
        let error = try #require(Fixture.error(MigrationDocument.replacing([6: "    key: [id]\n    unmirrored_writes: reject"])))
        #expect(error.key == "migrations[0].unmirrored_writes")
        #expect(error.line == 7)
        #expect(error.message == "expected record or refuse, got \"reject\"", "\(error.message)")
    }

    @Test("an error's description carries the file, line and indexed key")
    func description() throws {
        let error = try #require(Fixture.error(MigrationDocument.replacing([10: "      created: { new: created_at, forward: '' }"]),
                                               file: "switchyard.yaml"))
        #expect(error.description.hasPrefix("switchyard.yaml:10: migrations[0].columns.created.forward: the SQL expression is empty"))
    }
}

/// Lines replaced by comments, keeping the numbering of the lines after them.
func blank(_ lines: ClosedRange<Int>) -> [Int: String] {
    Dictionary(uniqueKeysWithValues: lines.map { ($0, "#") })
}

extension Dictionary where Key == Int, Value == String {
    static func + (lhs: Self, rhs: Self) -> Self { lhs.merging(rhs) { $1 } }
}
