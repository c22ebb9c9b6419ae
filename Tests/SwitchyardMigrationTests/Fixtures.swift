// Migrations the statement tests build on: a composite key with renames and casts, and one with awkward names.

import SwitchyardConfig
import SwitchyardMigration

enum Fixtures {
    /// orders (region text, id int, amount numeric, "Note" text) to orders_v2 with id renamed to order_id
    /// (and widened to bigint), amount stored in cents, and a `source` column that orders has no counterpart for.
    static let orders = ResolvedMigration(
        MigrationConfig(
            name: "orders_v2", old: RelationName(name: "orders"), new: RelationName(name: "orders_v2"),
            key: ["region", "id"],
            columns: [
                ColumnMapping(oldColumn: "region", newColumn: "region"),
                ColumnMapping(oldColumn: "id", newColumn: "order_id"),
                ColumnMapping(oldColumn: "amount", newColumn: "amount_cents", forward: "(amount * 100)::bigint",
                              inverse: "amount_cents / 100.0"),
                ColumnMapping(oldColumn: "Note", newColumn: "note"),
            ],
            extraNewColumns: [ExtraNewColumn(column: "source", expression: "'legacy'")]),
        oldKeyTypes: ["text", "integer"], newKeyTypes: ["text", "bigint"],
        newColumnTypes: ["text", "bigint", "bigint", "text"])

    /// Names that must be quoted: a schema with a space, a keyword, capitals and a double quote.
    static let awkward = ResolvedMigration(
        MigrationConfig(
            name: "lines_v2", old: RelationName(schema: "My Schema", name: "Order Lines"),
            new: RelationName(schema: "My Schema", name: "order\"lines"),
            key: ["user"],
            columns: [
                ColumnMapping(oldColumn: "user", newColumn: "User ID"),
                ColumnMapping(oldColumn: "select", newColumn: "choice"),
            ]),
        oldKeyTypes: ["character varying(20)"], newKeyTypes: ["character varying(20)"],
        newColumnTypes: ["character varying(20)", "\"MyEnum\""])
}
