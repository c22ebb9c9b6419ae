// The verify statements: chunk bounds, count and checksum of both sides, split keys and the row-by-row diff.

import SwitchyardConfig

/// Which relation of a migration.
public enum VerifySide: String, Sendable, Equatable {
    case old, new
}

/// Builds the statements `switchyard verify` runs. Both sides are compared through the forward mapping:
/// each old row is mapped to the mapped new columns (each forward expression cast to its new column's
/// type, as an INSERT would store it) and compared with the new row's same columns; extra new columns
/// are not compared. Rows are rendered with `ROW(...)::text`, which tells NULL from an empty string
/// (`(1,)` and `(1,"")`), and concatenated in key order, so a checksum is equal exactly when the same
/// keys hold the same mapped values. Old rows are ranged by the old key columns, new rows by the new
/// key columns, with the same key values (the key holds the same values on both sides).
public struct VerifyStatements: Sendable, Equatable {
    public let migration: ResolvedMigration

    public init(_ migration: ResolvedMigration) {
        self.migration = migration
    }

    /// The old keys at offsets `size - 1` and `size` after `lower`: the first is the chunk's upper bound
    /// when both exist; with fewer than two rows the chunk is the last and runs to the last key, so new
    /// keys above every old key fall into it too.
    public func chunkBound(after lower: [String]?, size: Int) -> SQLStatement {
        precondition(size > 0, "a chunk holds at least one row")
        var parameters = ParameterList()
        let predicate = KeyRange(lower: lower, upper: nil)
            .predicate(columns: migration.oldKeyColumns, types: migration.oldKeyTypes, parameters: &parameters)
        let offset = parameters.add(String(size - 1), as: "bigint")
        var text = "SELECT \(migration.oldKeyColumns.joined(separator: ", ")) FROM \(migration.migration.old)"
        if let predicate { text += " WHERE \(predicate)" }
        text += " ORDER BY \(ordinals) OFFSET \(offset) LIMIT 2"
        return SQLStatement(text, parameters: parameters.values)
    }

    /// One row: the old side's row count and checksum, then the new side's, over `range`. The checksum is
    /// NULL for an empty side. One statement, so both sides are read in one snapshot.
    public func summary(_ range: KeyRange) -> SQLStatement {
        var parameters = ParameterList()
        let old = side(.old, range: range, parameters: &parameters)
        let new = side(.new, range: range, parameters: &parameters)
        let text = """
            SELECT sy_old.row_count, sy_old.checksum, sy_new.row_count, sy_new.checksum
            FROM (SELECT count(*) AS row_count, md5(string_agg(\(old.row)::text, ',' ORDER BY \(old.keys))) AS checksum
                  FROM \(old.relation)\(old.filter)) AS sy_old,
                 (SELECT count(*) AS row_count, md5(string_agg(\(new.row)::text, ',' ORDER BY \(new.keys))) AS checksum
                  FROM \(new.relation)\(new.filter)) AS sy_new
            """
        return SQLStatement(text, parameters: parameters.values)
    }

    /// The key at `offset` (0-based, in key order) among `side`'s rows in `range`: where to split it.
    public func key(at offset: Int, of side: VerifySide, in range: KeyRange) -> SQLStatement {
        var parameters = ParameterList()
        let chosen = self.side(side, range: range, parameters: &parameters)
        let offsetParameter = parameters.add(String(offset), as: "bigint")
        let text = "SELECT \(chosen.keys) FROM \(chosen.relation)\(chosen.filter) ORDER BY \(ordinals) OFFSET \(offsetParameter) LIMIT 1"
        return SQLStatement(text, parameters: parameters.values)
    }

    /// The keys in `range` whose rows differ, in key order, at most `limit` of them. Each result row: the
    /// key's column values, the kind (`missing_in_new`, `extra_in_new` or `different`) and the number of
    /// differing keys in the whole range. A full outer join on the key (the new key cast to the old key's
    /// types), comparing the mapped rows as text.
    public func differences(_ range: KeyRange, limit: Int) -> SQLStatement {
        precondition(limit > 0, "ask for at least one key")
        var parameters = ParameterList()
        let old = side(.old, range: range, parameters: &parameters)
        let new = side(.new, range: range, parameters: &parameters)
        let limitParameter = parameters.add(String(limit), as: "bigint")
        let aliases = migration.migration.key.indices.map { "sy_k\($0 + 1)" }
        let oldKeys = zip(migration.oldKeyColumns, aliases).map { "\($0) AS \($1)" }
        let newKeys = zip(zip(migration.newKeyColumns, migration.oldKeyTypes), aliases).map { "(\($0.0))::\($0.1) AS \($1)" }
        let text = """
            SELECT \(aliases.joined(separator: ", ")),
                   CASE WHEN sy_new.sy_row IS NULL THEN '\(KeyDifference.Kind.missingInNew.rawValue)'
                        WHEN sy_old.sy_row IS NULL THEN '\(KeyDifference.Kind.extraInNew.rawValue)'
                        ELSE '\(KeyDifference.Kind.different.rawValue)' END,
                   count(*) OVER ()
            FROM (SELECT \(oldKeys.joined(separator: ", ")), \(old.row)::text AS sy_row FROM \(old.relation)\(old.filter)) AS sy_old
            FULL JOIN (SELECT \(newKeys.joined(separator: ", ")), \(new.row)::text AS sy_row FROM \(new.relation)\(new.filter)) AS sy_new
                USING (\(aliases.joined(separator: ", ")))
            WHERE sy_old.sy_row IS DISTINCT FROM sy_new.sy_row
            ORDER BY \(ordinals)
            LIMIT \(limitParameter)
            """
        return SQLStatement(text, parameters: parameters.values)
    }

    // MARK: - Pieces

    /// "1, 2": the key's positions in a select list that starts with the key columns.
    private var ordinals: String {
        migration.migration.key.indices.map { String($0 + 1) }.joined(separator: ", ")
    }

    /// What one side contributes: its relation, the range filter, its key columns and its mapped row.
    private func side(_ side: VerifySide, range: KeyRange, parameters: inout ParameterList)
        -> (relation: RelationName, filter: String, keys: String, row: String)
    {
        let m = migration.migration
        let (relation, keys, types, values) = switch side {
        case .old: (m.old, migration.oldKeyColumns, migration.oldKeyTypes, migration.castForwardExpressions)
        case .new: (m.new, migration.newKeyColumns, migration.newKeyTypes, migration.newMappedColumns)
        }
        let predicate = range.predicate(columns: keys, types: types, parameters: &parameters)
        return (relation, predicate.map { " WHERE \($0)" } ?? "", keys.joined(separator: ", "),
                "ROW(\(values.joined(separator: ", ")))")
    }
}
