// A migration together with the column types the catalog gives, which key parameters and checksums need.

import SwitchyardConfig

/// A configured migration plus what only the live catalog knows: the types of the key columns on both
/// sides (key values travel as text parameters cast to them) and the new columns' types (the old side of
/// a verify casts each forward expression to its new column's type, as an INSERT would).
public struct ResolvedMigration: Sendable, Equatable {
    public var migration: MigrationConfig
    /// The old relation's key column types, in key order, as format_type prints them.
    public var oldKeyTypes: [String]
    /// The new relation's key column types, in key order.
    public var newKeyTypes: [String]
    /// The type of each mapped new column, in the order of `migration.columns`.
    public var newColumnTypes: [String]

    public init(_ migration: MigrationConfig, oldKeyTypes: [String], newKeyTypes: [String], newColumnTypes: [String]) {
        precondition(oldKeyTypes.count == migration.key.count && newKeyTypes.count == migration.key.count,
                     "one type per key column on each side")
        precondition(newColumnTypes.count == migration.columns.count, "one type per mapped column")
        self.migration = migration
        self.oldKeyTypes = oldKeyTypes
        self.newKeyTypes = newKeyTypes
        self.newColumnTypes = newColumnTypes
    }

    /// The old key columns, quoted, in key order.
    var oldKeyColumns: [String] { migration.key.map(RelationName.quotedIdentifier) }

    /// The new relation's key columns, quoted, in key order. The loader guarantees each key column is mapped.
    var newKeyColumns: [String] {
        migration.key.map { key in
            RelationName.quotedIdentifier(migration.column(old: key)?.newColumn ?? key)
        }
    }

    /// Each mapped column's forward expression, cast to its new column's type: the value a mirrored write
    /// stores, computed from an old row.
    var castForwardExpressions: [String] {
        zip(migration.columns, newColumnTypes).map { "(\($0.forward))::\($1)" }
    }

    /// The mapped new columns, quoted, in the order of `migration.columns`.
    var newMappedColumns: [String] { migration.columns.map { RelationName.quotedIdentifier($0.newColumn) } }

    /// Whether every mapped column is a key column. The proxy's mirror upsert then has no column to update
    /// and inserts with `ON CONFLICT DO NOTHING` (see `MirrorTarget.mirrorStatement`), which keeps a
    /// conflicting new row without changing or locking it.
    var mirrorKeepsConflictingRows: Bool {
        migration.columns.allSatisfy { migration.key.contains($0.oldColumn) }
    }
}
