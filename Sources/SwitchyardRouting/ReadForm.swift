// Decides, from the catalog, whether routed reads may name the new relation itself instead of a projection of it.
import SwitchyardConfig

/// A visible column of a relation (attnum > 0, not dropped) as the catalog describes it.
public struct RelationColumn: Sendable, Equatable, Hashable {
    /// The name as PostgreSQL stores it.
    public var name: String
    /// `format_type(atttypid, atttypmod)`: the type with its modifier (`numeric(10,2)`).
    public var type: String
    /// `attcollation`: the collation's OID, 0 for types without one.
    public var collation: UInt32

    public init(name: String, type: String, collation: UInt32) {
        self.name = name
        self.type = type
        self.collation = collation
    }
}

/// How a routed read names the new relation.
public enum ReadForm: Sendable, Equatable, Hashable {
    /// The new relation itself, renamed to the old column names by position with a column
    /// alias list: `public.accounts_v2 AS accounts(aid, bid, abalance)`. PostgreSQL plans it
    /// exactly like a table reference. `columns` is that list: the old names of the first
    /// columns, up to the last one the new relation names otherwise (the later columns keep
    /// their names, which are already the old ones), empty when no column is renamed. Each
    /// name in it is more text for PostgreSQL to parse on every routed read.
    case direct(columns: [String])
    /// A projection subquery over the new relation, which can compute and cast each old
    /// column; `reason` says why the direct form does not apply.
    case projection(reason: String)

    /// The direct form applies only when naming the new relation under the old column names
    /// answers exactly like the projection: the new relation's visible columns are the
    /// mapped columns, one for one and in the same order, each old column read back as the
    /// plain value of its new column, of the same type and collation. `old` and `new` are the
    /// relations' visible columns in attnum order; empty when unknown (not read, or missing).
    public static func decide(_ migration: MigrationConfig, old: [RelationColumn], new: [RelationColumn]) -> ReadForm {
        let mapped = migration.columns
        guard !old.isEmpty else { return .projection(reason: "the columns of \(migration.old) are not known") }
        guard !new.isEmpty else { return .projection(reason: "the columns of \(migration.new) are not known") }
        guard !mapped.isEmpty else { return .projection(reason: "no columns are mapped") }
        guard new.count == mapped.count else {
            return .projection(reason: "\(migration.new) has \(new.count) columns, \(mapped.count) are mapped")
        }
        for (position, (mapping, newColumn)) in zip(mapped, new).enumerated() {
            let label = "column \(position + 1) (\(mapping.oldColumn))"
            guard isPlainReference(mapping.inverse, to: newColumn.name) else {
                return .projection(reason: "\(label) is read as `\(mapping.inverse)`, not as \(migration.new).\(RelationName.quotedIdentifier(newColumn.name))")
            }
            guard let oldColumn = old.first(where: { $0.name == mapping.oldColumn }) else {
                return .projection(reason: "\(migration.old) has no column \(RelationName.quotedIdentifier(mapping.oldColumn))")
            }
            guard oldColumn.type == newColumn.type else {
                return .projection(reason: "\(label) is \(oldColumn.type), \(RelationName.quotedIdentifier(newColumn.name)) is \(newColumn.type)")
            }
            guard oldColumn.collation == newColumn.collation else {
                return .projection(reason: "\(label) and \(RelationName.quotedIdentifier(newColumn.name)) have different collations")
            }
        }
        let lastRenamed = new.indices.last { mapped[$0].oldColumn != new[$0].name }
        return .direct(columns: lastRenamed.map { mapped[...$0].map(\.oldColumn) } ?? [])
    }

    /// Whether the SQL expression `expression` is nothing but a reference to column `name`:
    /// the name double-quoted, or written bare in a spelling PostgreSQL folds to it.
    static func isPlainReference(_ expression: String, to name: String) -> Bool {
        let text = expression.trimmingWhitespace
        if text == "\"" + name.replacingAll("\"", with: "\"\"") + "\"" { return true }
        // A bare identifier is folded to lower case; it must fold to a name that needs no quotes.
        guard RelationName.quotedIdentifier(name) == name,
              text.unicodeScalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        else { return false }
        return text.lowercased() == name
    }

    /// The column alias list (the old names of the first columns) when the form is direct.
    public var directColumns: [String]? {
        if case let .direct(columns) = self { return columns }
        return nil
    }
}

/// What routing needs from the catalog about one migration: the old column types the
/// projection casts back to, and the form reads take.
public struct RouteCatalog: Sendable, Equatable {
    /// The old relation's column types in the mapping's order; nil where a column is unknown.
    public var oldColumnTypes: [String?]
    public var form: ReadForm

    public init(oldColumnTypes: [String?], form: ReadForm) {
        self.oldColumnTypes = oldColumnTypes
        self.form = form
    }

    /// From the two relations' visible columns in attnum order (empty when unknown).
    public init(migration: MigrationConfig, old: [RelationColumn], new: [RelationColumn]) {
        oldColumnTypes = migration.columns.map { mapping in old.first { $0.name == mapping.oldColumn }?.type }
        form = ReadForm.decide(migration, old: old, new: new)
    }
}

private extension String {
    var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
