// The migrations section's model: an old relation, its shadow, and how each column maps between them.

/// How one old column appears in the new relation. The expressions are SQL, stored as written;
/// `switchyard check` validates them against the live database.
public struct ColumnMapping: Sendable, Equatable {
    /// The column the application reads today (as PostgreSQL stores the name).
    public var oldColumn: String
    /// The new relation's column that mirrors it.
    public var newColumn: String
    /// Computes the new column from an old row (a mirrored write); by default the old column itself.
    public var forward: String
    /// Computes the old column from a new row (a read served from the new relation); by default the new column.
    public var inverse: String

    /// A mapping; omitted expressions are the plain (quoted when needed) column references.
    public init(oldColumn: String, newColumn: String, forward: String? = nil, inverse: String? = nil) {
        self.oldColumn = oldColumn
        self.newColumn = newColumn
        self.forward = forward ?? RelationName.quotedIdentifier(oldColumn)
        self.inverse = inverse ?? RelationName.quotedIdentifier(newColumn)
    }

    /// Whether the column only changes its name (or nothing): both expressions are plain column references.
    public var isPlainRename: Bool {
        forward == RelationName.quotedIdentifier(oldColumn) && inverse == RelationName.quotedIdentifier(newColumn)
    }
}

/// A column of the new relation with no old counterpart, and how to fill it on a mirrored write.
public struct ExtraNewColumn: Sendable, Equatable {
    public var column: String
    /// SQL evaluated for each mirrored row, stored as written (e.g. "0", "now()").
    public var expression: String

    public init(column: String, expression: String) {
        self.column = column
        self.expression = expression
    }
}

/// One entry of `migrations:`: the relation the application uses, the shadow relation with the new
/// schema, and the column correspondence that lets Switchyard keep the two in step.
public struct MigrationConfig: Sendable, Equatable {
    /// name: unique among migrations; flags refer to it.
    public var name: String
    /// old: the relation the application uses today.
    public var old: RelationName
    /// new: the shadow relation (the new schema path).
    public var new: RelationName
    /// key: the primary key columns (old names), holding the same values on both sides.
    public var key: [String]
    /// columns: every old column the application may read, in the order written.
    public var columns: [ColumnMapping]
    /// extra_new_columns: new columns with no old counterpart, in the order written.
    public var extraNewColumns: [ExtraNewColumn]
    /// backfill: how `switchyard backfill` paces the copy of existing rows.
    public var backfill: BackfillConfig
    /// strict: a write whose mirror the new relation rejects fails for the client. By default
    /// (false) the client's write is applied alone and the failure recorded as a write divergence.
    public var strict: Bool
    /// unmirrored_writes: what happens to a write of the old relation in a form Switchyard cannot
    /// mirror (COPY FROM, MERGE, ...). Default: `refuse` when strict, else `record`.
    public var unmirroredWrites: UnmirroredWrites

    /// The two answers to a write that cannot be mirrored.
    public enum UnmirroredWrites: String, Sendable, Equatable, CaseIterable {
        /// Let it through and record a write divergence (SHOW DIVERGENCES, the cutover report).
        case record
        /// Refuse it: the client gets an error naming the migration, and nothing of the statement runs.
        case refuse
    }

    public init(
        name: String, old: RelationName, new: RelationName, key: [String], columns: [ColumnMapping],
        extraNewColumns: [ExtraNewColumn] = [], backfill: BackfillConfig = BackfillConfig(), strict: Bool = false,
        unmirroredWrites: UnmirroredWrites? = nil
    ) {
        self.name = name
        self.old = old
        self.new = new
        self.key = key
        self.columns = columns
        self.extraNewColumns = extraNewColumns
        self.backfill = backfill
        self.strict = strict
        self.unmirroredWrites = unmirroredWrites ?? (strict ? .refuse : .record)
    }

    /// The mapping of an old column, if it is mapped.
    public func column(old name: String) -> ColumnMapping? {
        columns.first { $0.oldColumn == name }
    }
}
