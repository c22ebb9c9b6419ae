// `switchyard check`: validates migrations against the live database before anything is routed.
import SwitchyardConfig
import SwitchyardRouting

/// One finding, worded for the DBA who has to act on it.
public struct CheckFinding: Sendable, Equatable, CustomStringConvertible {
    public enum Level: String, Sendable { case ok = "OK", warning = "WARNING", error = "ERROR" }
    public var level: Level
    public var migration: String
    public var message: String
    public var description: String { "\(level.rawValue)  \(migration): \(message)" }
}

/// A column of a table as the catalog has it.
struct CatalogColumn: Equatable {
    var name: String
    var type: String
    var notNull: Bool
    /// attcollation, 0 for types without a collation.
    var collation: UInt32

    var relationColumn: RelationColumn { RelationColumn(name: name, type: type, collation: collation) }
}

/// Checks each migration: both relations exist, the mapping covers the old table's
/// columns in order, key columns exist and are the old table's primary key, and every
/// forward, inverse and extra-column expression type-checks (by preparing it) and gives
/// the target column's type.
public enum MigrationCheck {
    public static func run(_ config: SwitchyardConfiguration) throws(ControlError) -> [CheckFinding] {
        // The migrated tables are in the upstream's database, wherever the control schema lives.
        let connection = try ControlConnection(config.upstream, applicationName: "switchyard-check")
        var findings: [CheckFinding] = []
        for m in config.migrations {
            findings += check(m, connection)
        }
        if config.migrations.isEmpty {
            findings.append(CheckFinding(level: .ok, migration: "-", message: "no migrations configured; nothing to check"))
        } else {
            findings += sessionSettings(config, connection)
        }
        return findings
    }

    /// The settings routing reads from a session's start: `search_path`, by which unqualified
    /// names resolve, and the custom settings flags take cohort keys from.
    static func routedSettingNames(_ config: SwitchyardConfiguration) -> [String] {
        var names = ["search_path"]
        for flag in config.flags {
            for case let .setting(name) in flag.cohortKey where !names.contains(name.lowercased()) { names.append(name.lowercased()) }
        }
        return names
    }

    /// The settings named `names` that roles and databases give their sessions (`ALTER ROLE … SET`,
    /// `ALTER DATABASE … SET`): in every database, or with `currentDatabaseOnly` those for every
    /// database and the connection's own. (The catalog holds a few rows: all are read, and the
    /// names picked here.)
    static func roleSettings(_ names: [String], currentDatabaseOnly: Bool, _ c: ControlConnection) throws(ControlError) -> RoleSettings {
        let rows = try c.execute("""
            SELECT r.rolname, d.datname, split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1)
            FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
                 LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS cfg
            WHERE NOT $1::bool OR s.setdatabase = 0 OR d.datname = current_database()
            ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 3
            """, [currentDatabaseOnly ? "true" : "false"])
        let entries = rows.map { RoleSettings.Entry(role: $0[0], database: $0[1], name: $0[2] ?? "", value: $0[3] ?? "") }
        return RoleSettings(entries.filter { names.contains($0.name) })
    }

    /// The schemas that hold a relation with one of `names` (the old relations' names): a
    /// session's `$user` finds such a schema when it has the role's name (temporary schemas left out).
    static func schemasHolding(_ names: [String], _ c: ControlConnection) throws(ControlError) -> Set<String> {
        var found = Set<String>()
        for name in Set(names) {
            for row in try c.execute("""
                SELECT DISTINCT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE r.relname = $1 AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
                """, [name]) {
                if let schema = row.first ?? nil { found.insert(schema) }
            }
        }
        return found
    }

    /// The routed settings roles and databases give their sessions: sessions that start after
    /// Switchyard has read them are routed by them.
    static func sessionSettings(_ config: SwitchyardConfiguration, _ c: ControlConnection) -> [CheckFinding] {
        do {
            return try roleSettings(routedSettingNames(config), currentDatabaseOnly: true, c).entries.map { e in
                let source = switch (e.role, e.database) {
                case let (role?, database?): "ALTER ROLE \(RelationName.quotedIdentifier(role)) IN DATABASE \(RelationName.quotedIdentifier(database)) SET"
                case let (role?, nil): "ALTER ROLE \(RelationName.quotedIdentifier(role)) SET"
                case let (nil, database?): "ALTER DATABASE \(RelationName.quotedIdentifier(database)) SET"
                case (nil, nil): "ALTER ROLE ALL SET"
                }
                let use = e.name == "search_path" ? "resolves their unqualified table names with it" : "takes their cohort key for setting:\(e.name) from it"
                return CheckFinding(level: .ok, migration: "-", message: "\(source) \(e.name) = \(e.value): Switchyard \(use) in sessions that start after it has read it (at start, then every \(Int(ControlSync.refreshInterval.components.seconds)) seconds); a session that sets it at connect or with SET follows its own")
            }
        } catch {
            return [CheckFinding(level: .warning, migration: "-", message: "cannot read the settings roles and databases give their sessions (pg_db_role_setting): \(error)")]
        }
    }

    /// What routing needs from the catalog for one migration: the old relation's column types in
    /// the mapping's order, for exact casts on the new path, and whether reads may name the new
    /// relation directly (decided by ``ReadForm/decide(_:old:new:)`` from both relations' columns).
    static func routeCatalog(_ m: MigrationConfig, _ c: ControlConnection) throws(ControlError) -> RouteCatalog {
        let old = try columnsOf(m.old, c)
        let new = try columnsOf(m.new, c)
        return RouteCatalog(migration: m, old: old.map(\.relationColumn), new: new.map(\.relationColumn))
    }

    /// The relation's visible columns in attnum order; empty when it does not exist.
    static func columnsOf(_ relation: RelationName, _ c: ControlConnection) throws(ControlError) -> [CatalogColumn] {
        try c.execute("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attcollation::int8
            FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
            WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [relation.schema, relation.name]).map {
                CatalogColumn(name: $0[0] ?? "", type: $0[1] ?? "", notNull: $0[2] == "t", collation: UInt32($0[3] ?? "") ?? 0)
            }
    }

    static func check(_ m: MigrationConfig, _ c: ControlConnection) -> [CheckFinding] {
        var out: [CheckFinding] = []
        func add(_ level: CheckFinding.Level, _ message: String) { out.append(CheckFinding(level: level, migration: m.name, message: message)) }
        let old: [CatalogColumn]
        let new: [CatalogColumn]
        do {
            old = try columnsOf(m.old, c)
            new = try columnsOf(m.new, c)
        } catch {
            add(.error, "cannot read the catalog: \(error)")
            return out
        }
        if old.isEmpty { add(.error, "old relation \(m.old) does not exist (or has no columns, or this user cannot see it)") }
        if new.isEmpty { add(.error, "new relation \(m.new) does not exist (or has no columns, or this user cannot see it); create it before dual_write") }
        if old.isEmpty || new.isEmpty { return out }

        // Every old column, in the table's order, so SELECT * answers the same on both paths.
        let mapped = m.columns.map(\.oldColumn)
        let actual = old.map(\.name)
        for name in mapped where !actual.contains(name) {
            add(.error, "columns: \(m.old) has no column \(RelationName.quotedIdentifier(name)); its columns are \(actual.joined(separator: ", "))")
        }
        let missing = actual.filter { !mapped.contains($0) }
        if !missing.isEmpty {
            add(.error, "columns: \(missing.joined(separator: ", ")) of \(m.old) are not mapped; reads of the new path could not return them (map every column)")
        } else if mapped != actual.filter({ mapped.contains($0) }) {
            add(.error, "columns: list them in the table's order (\(actual.joined(separator: ", "))) so SELECT * returns the same columns on both paths")
        }

        // Keys.
        let newNames = new.map(\.name)
        for k in m.key {
            guard let mapping = m.column(old: k) else { continue }
            if !newNames.contains(mapping.newColumn) {
                add(.error, "key: \(m.new) has no column \(RelationName.quotedIdentifier(mapping.newColumn)) for key \(k)")
            }
        }
        do {
            let pk = try c.execute("""
                SELECT array_to_string(array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum)), ',')
                FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = ANY(i.indkey)
                WHERE n.nspname = $1 AND r.relname = $2 AND i.indisprimary
                """, [m.old.schema, m.old.name]).first?.first ?? nil
            if let pk, !pk.isEmpty {
                if pk.split(separator: ",").map(String.init) != m.key {
                    add(.error, "key: the primary key of \(m.old) is (\(pk)), not (\(m.key.joined(separator: ", ")))")
                }
            } else {
                add(.error, "key: \(m.old) has no primary key; dual-write and verify need one")
            }
        } catch {
            add(.error, "key: cannot read the primary key: \(error)")
        }

        // Inverse expressions: read the new relation back as the old columns.
        for mapping in m.columns {
            let target = old.first { $0.name == mapping.oldColumn }
            do {
                let described = try c.describe("SELECT \(mapping.inverse) FROM \(m.new) LIMIT 0")
                if let target, let type = described.first?.type, type != target.type {
                    add(.warning, "columns.\(mapping.oldColumn).inverse gives \(type), the old column is \(target.type); the new path casts it to \(target.type)")
                }
            } catch {
                add(.error, "columns.\(mapping.oldColumn).inverse `\(mapping.inverse)` does not work on \(m.new): \(error.message)")
            }
            let newTarget = new.first { $0.name == mapping.newColumn }
            if newTarget == nil {
                add(.error, "columns.\(mapping.oldColumn): \(m.new) has no column \(RelationName.quotedIdentifier(mapping.newColumn))")
            }
            do {
                let described = try c.describe("SELECT \(mapping.forward) FROM \(m.old) LIMIT 0")
                if let newTarget, let type = described.first?.type, type != newTarget.type {
                    add(.warning, "columns.\(mapping.oldColumn).forward gives \(type), \(m.new).\(mapping.newColumn) is \(newTarget.type); PostgreSQL will convert it on mirrored writes if it can")
                }
            } catch {
                add(.error, "columns.\(mapping.oldColumn).forward `\(mapping.forward)` does not work on \(m.old): \(error.message)")
            }
        }
        for extra in m.extraNewColumns {
            if !newNames.contains(extra.column) {
                add(.error, "extra_new_columns: \(m.new) has no column \(RelationName.quotedIdentifier(extra.column))")
            }
            do {
                _ = try c.describe("SELECT \(extra.expression) FROM \(m.old) LIMIT 0")
            } catch {
                add(.error, "extra_new_columns.\(extra.column) `\(extra.expression)` does not work: \(error.message)")
            }
        }
        // New NOT NULL columns without a value on mirrored writes.
        let filled = Set(m.columns.map(\.newColumn) + m.extraNewColumns.map(\.column))
        for col in new where col.notNull && !filled.contains(col.name) {
            let hasDefault = (try? c.execute("""
                SELECT a.atthasdef FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE n.nspname = $1 AND r.relname = $2 AND a.attname = $3
                """, [m.new.schema, m.new.name, col.name]).first?.first) ?? nil
            if hasDefault != "t" {
                add(.error, "\(m.new).\(col.name) is NOT NULL with no default and nothing fills it; add it to extra_new_columns")
            }
        }
        // BEFORE ROW triggers on either table see every mirrored row: one that skips a row (returns
        // NULL) or changes it makes the two tables differ, and on the new table it also makes a
        // mirrored write's tag (the count of rows upserted there) differ from the client's own.
        for (relation, side) in [(m.new, "new"), (m.old, "old")] {
            do {
                let rows = try c.execute("""
                    SELECT t.tgname, (t.tgtype & 4) <> 0, (t.tgtype & 16) <> 0
                    FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                    WHERE n.nspname = $1 AND r.relname = $2 AND NOT t.tgisinternal AND t.tgenabled <> 'D'
                      AND (t.tgtype & 1) <> 0 AND (t.tgtype & 2) <> 0 AND (t.tgtype & 20) <> 0
                    ORDER BY t.tgname
                    """, [relation.schema, relation.name])
                for row in rows {
                    let name = RelationName.quotedIdentifier(row.first.flatMap { $0 } ?? "?")
                    let events = [row.count > 1 && row[1] == "t" ? "INSERT" : nil, row.count > 2 && row[2] == "t" ? "UPDATE" : nil].compactMap { $0 }
                    if side == "new" {
                        add(.warning, "trigger \(name) on \(m.new) runs BEFORE \(events.joined(separator: " OR ")) FOR EACH ROW: every mirrored write goes through it; if it skips or changes rows, verify will find differences and a mirrored INSERT or UPDATE reports the rows it upserted into \(m.new), not the rows it changed in \(m.old)")
                    } else {
                        add(.warning, "trigger \(name) on \(m.old) runs BEFORE \(events.joined(separator: " OR ")) FOR EACH ROW: at live, writes mirrored back from \(m.new) go through it; if it skips or changes rows, the tables will differ")
                    }
                }
            } catch {
                add(.warning, "cannot read the triggers of \(relation): \(error)")
            }
        }
        // Another relation with the old relation's name: a session whose search_path finds it
        // first reads it. Switchyard follows the search_path a session is given or sets, and
        // `$user` when a schema of the role's name holds one of these names; not a search_path
        // set where the text does not show it.
        do {
            let others = try c.execute("""
                SELECT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE r.relname = $2 AND n.nspname <> $1 AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
                ORDER BY 1
                """, [m.old.schema, m.old.name]).compactMap { $0.first ?? nil }
            if !others.isEmpty {
                let names = others.map { RelationName(schema: $0, name: m.old.name).description }.joined(separator: ", ")
                add(.warning, "\(names) \(others.count == 1 ? "has" : "have") the name of \(m.old): Switchyard follows the search_path a session is given or sets, and `$user` for the role it logs in as, but not a search_path set where the text does not show it (in a function, or by set_config with an expression), nor SET ROLE; in such a session an unqualified \(RelationName.quotedIdentifier(m.old.name)) may be \(others.count == 1 ? "it" : "one of them") while Switchyard routes it as \(m.old); qualify the name in the application")
            }
        } catch {
            add(.warning, "cannot look for other relations named \(RelationName.quotedIdentifier(m.old.name)): \(error)")
        }
        if !out.contains(where: { $0.level == .error }) {
            add(.ok, "\(m.old) -> \(m.new): \(m.columns.count) columns mapped, key (\(m.key.joined(separator: ", "))), expressions type-check")
            switch ReadForm.decide(m, old: old.map(\.relationColumn), new: new.map(\.relationColumn)) {
            case .direct:
                add(.ok, "reads on the new path reference \(m.new) directly (same row shape)")
            case let .projection(reason):
                add(.ok, "reads on the new path go through a projection of \(m.new) (\(reason))")
            }
        }
        return out
    }
}
