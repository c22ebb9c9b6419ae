// Reads the migrations, flags and control sections and checks the rules that span several entries.

import Yams

extension DocumentReader {
    static let migrationKeys = ["name", "old", "new", "key", "columns", "extra_new_columns", "backfill", "strict", "unmirrored_writes"]
    static let columnKeys = ["new", "forward", "inverse"]
    static let flagKeys = ["name", "migration", "stage", "percent", "cohort_key", "salt", "routing", "shadow_sample", "guardrails"]
    static let searchPathKeys = ["old", "new"]

    /// A migration and the lines that the checks spanning several entries blame.
    struct MigrationSite {
        var config: MigrationConfig
        var path: String
        var nameLine: Int?
        var oldLine: Int?
        var newLine: Int?
    }

    /// A flag and the line of its migration reference, checked once every migration is known.
    struct FlagSite {
        var config: FlagConfig
        var path: String
        var nameLine: Int?
        var migrationLine: Int?
    }

    /// A list item with its path (`migrations[0]`) and line.
    struct Item {
        var node: Node
        var path: String
        var line: Int?
    }

    // MARK: - Migrations

    func migrations(_ section: Entry) throws(ConfigError) -> [MigrationSite] {
        var sites: [MigrationSite] = []
        var names: [String: MigrationSite] = [:]
        var relations: [RelationName: (path: String, line: Int?)] = [:]
        for item in try listItems(section, expecting: "a list of migrations, each starting with \"- name:\"") {
            let site = try migration(item)
            let name = site.config.name
            if let first = names[name] {
                throw error(site.nameLine, "\(item.path).name",
                            "migration name \(name) is already used by \(first.path) (line \(lineText(first.nameLine)))")
            }
            names[name] = site
            for (relation, side, line) in [(site.config.old, "old", site.oldLine), (site.config.new, "new", site.newLine)] {
                if let first = relations[relation] {
                    throw error(line, "\(item.path).\(side)",
                                "\(relation) is already part of \(first.path) (line \(lineText(first.line))); "
                                    + "a relation can take part in only one migration at a time")
                }
                relations[relation] = ("\(item.path).\(side)", line)
            }
            sites.append(site)
        }
        return sites
    }

    private func migration(_ item: Item) throws(ConfigError) -> MigrationSite {
        let fields = try itemEntries(item, keys: Self.migrationKeys)
        var name: (text: String, line: Int?)?
        var old: (relation: RelationName, line: Int?)?
        var new: (relation: RelationName, line: Int?)?
        var key: (columns: [(name: String, line: Int?)], entry: Entry)?
        var columns: [ColumnSite]?
        var extras: [(column: ExtraNewColumn, path: String, line: Int?)] = []
        var backfill = BackfillConfig()
        var strict = false
        var unmirrored: MigrationConfig.UnmirroredWrites?
        for entry in fields {
            switch entry.name {
            case "name":
                name = (try plainName(entry, what: "migration"), entry.valueLine)
            case "old", "new":
                let text = try scalarText(entry, expecting: "a relation name such as public.users")
                let relation = try located(entry) { () throws(ConfigError) in try RelationName.parse(text, key: entry.path) }
                if entry.name == "old" { old = (relation, entry.valueLine) } else { new = (relation, entry.valueLine) }
            case "key":
                key = (try identifierList(entry, expecting: "a list of primary key columns such as [id]"), entry)
            case "columns":
                columns = try columnMappings(entry)
            case "extra_new_columns":
                extras = try extraNewColumns(entry)
            case "backfill":
                backfill = try self.backfill(entry)
            case "strict":
                let text = try scalarText(entry, expecting: "true or false")
                strict = try located(entry) { () throws(ConfigError) in try ConfigValues.bool(text, key: entry.path) }
            case "unmirrored_writes":
                let text = try scalarText(entry, expecting: "record or refuse")
                guard let value = MigrationConfig.UnmirroredWrites(rawValue: text) else {
                    throw error(entry.valueLine, entry.path, "expected record or refuse, got \(quoted(text))")
                }
                unmirrored = value
            default:
                throw unknownKey(entry, known: Self.migrationKeys)
            }
        }
        func missing(_ key: String, _ what: String) -> ConfigError {
            error(item.line, "\(item.path).\(key)", "required: \(what)")
        }
        guard let name else { throw missing("name", "the migration's name, which flags refer to, such as name: users_v2") }
        guard let old else { throw missing("old", "the relation the application uses today, such as old: public.users") }
        guard let new else { throw missing("new", "the shadow relation with the new schema, such as new: public.users_v2") }
        guard let key else { throw missing("key", "the primary key columns, such as key: [id]") }
        guard let columns else {
            throw missing("columns", "every old column the application may read, such as columns: {id: id, name: full_name}")
        }
        if old.relation == new.relation {
            throw error(new.line, "\(item.path).new",
                        "is the same relation as old (\(old.relation)); the shadow relation must be another one")
        }
        // The key: present, unrepeated, and mapped, so a row can be found on both sides.
        if key.columns.isEmpty {
            throw error(key.entry.keyLine, key.entry.path, "at least one primary key column is needed, such as key: [id]")
        }
        var keyColumns: Set<String> = []
        for column in key.columns {
            guard keyColumns.insert(column.name).inserted else {
                throw error(column.line, key.entry.path, "key column \(RelationName.quotedIdentifier(column.name)) is listed twice")
            }
            guard columns.contains(where: { $0.mapping.oldColumn == column.name }) else {
                let quotedName = RelationName.quotedIdentifier(column.name)
                throw error(column.line, key.entry.path,
                            "key column \(quotedName) is not in columns; map it there (\(quotedName): \(quotedName) "
                                + "when the name is unchanged)")
            }
        }
        // Extra columns fill new columns that no old column mirrors.
        for extra in extras {
            if let mapped = columns.first(where: { $0.mapping.newColumn == extra.column.column }) {
                throw error(extra.line, extra.path,
                            "new column \(RelationName.quotedIdentifier(extra.column.column)) is already filled from old column "
                                + "\(RelationName.quotedIdentifier(mapped.mapping.oldColumn)) (line \(lineText(mapped.newLine))); "
                                + "extra_new_columns are only for new columns with no old counterpart")
            }
        }
        let config = MigrationConfig(
            name: name.text, old: old.relation, new: new.relation, key: key.columns.map(\.name),
            columns: columns.map(\.mapping), extraNewColumns: extras.map(\.column), backfill: backfill, strict: strict,
            unmirroredWrites: unmirrored)
        return MigrationSite(config: config, path: item.path, nameLine: name.line, oldLine: old.line, newLine: new.line)
    }

    /// A column mapping and where its new column was named, for the duplicate checks.
    struct ColumnSite {
        var mapping: ColumnMapping
        var oldLine: Int?
        var newPath: String
        var newLine: Int?
    }

    private func columnMappings(_ entry: Entry) throws(ConfigError) -> [ColumnSite] {
        let expectation = "expected a mapping from each old column to its new column, such as {id: id, name: full_name}"
        guard case .mapping = entry.value else {
            throw error(entry.keyLine, entry.path, "\(expectation), got \(describe(entry.value))")
        }
        var sites: [ColumnSite] = []
        for column in try entries(of: entry.value, under: entry.path) {
            let old = try at(column.keyLine) { () throws(ConfigError) in
                try RelationName.parseIdentifier(column.name, key: column.path)
            }
            if let first = sites.first(where: { $0.mapping.oldColumn == old }) {
                throw error(column.keyLine, column.path,
                            "old column \(RelationName.quotedIdentifier(old)) is already mapped on line \(lineText(first.oldLine)) "
                                + "(unquoted names are folded to lower case)")
            }
            var site: ColumnSite
            switch column.value {
            case .scalar where !isNull(column.value):
                let text = try scalarText(column, expecting: "a column name")
                let new = try located(column) { () throws(ConfigError) in try RelationName.parseIdentifier(text, key: column.path) }
                site = ColumnSite(mapping: ColumnMapping(oldColumn: old, newColumn: new), oldLine: column.keyLine,
                                  newPath: column.path, newLine: column.valueLine)
            case .mapping:
                site = try longColumnMapping(column, old: old)
            default:
                throw error(column.keyLine, column.path,
                            "expected the new column's name (\(column.name): \(column.name) when it is unchanged) "
                                + "or a mapping with new, forward and inverse, got \(describe(column.value))")
            }
            if let first = sites.first(where: { $0.mapping.newColumn == site.mapping.newColumn }) {
                throw error(site.newLine, site.newPath,
                            "new column \(RelationName.quotedIdentifier(site.mapping.newColumn)) already mirrors old column "
                                + "\(RelationName.quotedIdentifier(first.mapping.oldColumn)) (line \(lineText(first.newLine))); "
                                + "each new column mirrors one old column")
            }
            sites.append(site)
        }
        if sites.isEmpty {
            throw error(entry.keyLine, entry.path,
                        "at least one column is needed: every old column the application may read, such as {id: id}")
        }
        return sites
    }

    /// `created: { new: created_at, forward: "...", inverse: "..." }`.
    private func longColumnMapping(_ column: Entry, old: String) throws(ConfigError) -> ColumnSite {
        var new: (name: String, line: Int?)?
        var forward: String?
        var inverse: String?
        for entry in try entries(of: column.value, under: column.path) {
            switch entry.name {
            case "new":
                let text = try scalarText(entry, expecting: "the new column's name")
                let name = try located(entry) { () throws(ConfigError) in try RelationName.parseIdentifier(text, key: entry.path) }
                new = (name, entry.valueLine)
            case "forward":
                forward = try expression(entry, omitted: "the old column as it is")
            case "inverse":
                inverse = try expression(entry, omitted: "the new column as it is")
            default:
                throw unknownKey(entry, known: Self.columnKeys)
            }
        }
        guard let new else {
            throw error(column.keyLine, "\(column.path).new",
                        "required: the new column's name, as in \(column.name): {new: \(column.name)_v2, forward: ..., inverse: ...}")
        }
        return ColumnSite(
            mapping: ColumnMapping(oldColumn: old, newColumn: new.name, forward: forward, inverse: inverse),
            oldLine: column.keyLine, newPath: "\(column.path).new", newLine: new.line)
    }

    private func extraNewColumns(_ entry: Entry) throws(ConfigError) -> [(column: ExtraNewColumn, path: String, line: Int?)] {
        if isNull(entry.value) { return [] }
        guard case .mapping = entry.value else {
            throw error(entry.keyLine, entry.path,
                        "expected a mapping from each new column to the SQL that fills it, such as {tenant_id: \"0\"}, "
                            + "got \(describe(entry.value))")
        }
        var result: [(column: ExtraNewColumn, path: String, line: Int?)] = []
        for column in try entries(of: entry.value, under: entry.path) {
            let name = try at(column.keyLine) { () throws(ConfigError) in
                try RelationName.parseIdentifier(column.name, key: column.path)
            }
            if let first = result.first(where: { $0.column.column == name }) {
                throw error(column.keyLine, column.path,
                            "new column \(RelationName.quotedIdentifier(name)) is already listed on line \(lineText(first.line)) "
                                + "(unquoted names are folded to lower case)")
            }
            guard let expression = try expression(column, omitted: nil) else {
                throw error(column.keyLine, column.path,
                            "expected the SQL that fills the column on a mirrored write, such as \"0\" or \"now()\", got nothing (null)")
            }
            result.append((ExtraNewColumn(column: name, expression: expression), column.path, column.keyLine))
        }
        return result
    }

    /// An SQL expression, stored as written (trimmed); nil when the value is null and `omitted` says what that means.
    private func expression(_ entry: Entry, omitted: String?) throws(ConfigError) -> String? {
        if isNull(entry.value), omitted != nil { return nil }
        let text = try scalarText(entry, expecting: "an SQL expression")
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else {
            let hint = omitted.map { "; omit \(entry.name) to use \($0)" } ?? ""
            throw error(entry.valueLine, entry.path, "the SQL expression is empty\(hint)")
        }
        return trimmed
    }

    // MARK: - Flags

    func flags(_ section: Entry) throws(ConfigError) -> [FlagSite] {
        var sites: [FlagSite] = []
        for item in try listItems(section, expecting: "a list of flags, each starting with \"- name:\"") {
            let site = try flag(item)
            if let first = sites.first(where: { $0.config.name == site.config.name }) {
                throw error(site.nameLine, "\(item.path).name",
                            "flag name \(site.config.name) is already used by \(first.path) (line \(lineText(first.nameLine)))")
            }
            sites.append(site)
        }
        return sites
    }

    private func flag(_ item: Item) throws(ConfigError) -> FlagSite {
        let fields = try itemEntries(item, keys: Self.flagKeys)
        var name: (text: String, line: Int?)?
        var migration: (name: String, line: Int?)?
        var stage = FlagStage.off
        var percent = 0
        var cohortKey = CohortSource.defaultKey
        var salt: String?
        var routing = RoutingMode.rewrite
        var guardrails = GuardrailConfig()
        var shadow = FlagShadowConfig()
        for entry in fields {
            switch entry.name {
            case "name":
                name = (try plainName(entry, what: "flag"), entry.valueLine)
            case "migration":
                migration = (try plainName(entry, what: "migration"), entry.valueLine)
            case "stage":
                let stages = FlagStage.allCases.map(\.rawValue).joined(separator: ", ")
                let text = try scalarText(entry, expecting: "one of \(stages)")
                stage = try located(entry) { () throws(ConfigError) in try FlagStage.parse(text, key: entry.path) }
            case "percent":
                let text = try scalarText(entry, expecting: "a percentage from 0 to 100, such as 12.5")
                percent = try located(entry) { () throws(ConfigError) in
                    try ConfigValues.percentBasisPoints(text, key: entry.path)
                }
            case "cohort_key":
                cohortKey = try cohortSources(entry)
            case "salt":
                let text = try scalarText(entry, expecting: "a string mixed into the cohort hash")
                guard !text.isEmpty else {
                    throw error(entry.valueLine, entry.path, "the salt is empty; omit it to use the flag's name")
                }
                salt = text
            case "routing":
                routing = try routingMode(entry)
            case "guardrails":
                guardrails = try self.guardrails(entry)
            case "shadow_sample":
                // A share of reads, 0.10 for one in ten, kept in hundredths of a percent.
                shadow.samplePercentBasisPoints = try rate(entry, example: "0.10 for one read in ten", decimals: 4) / 100
            default:
                throw unknownKey(entry, known: Self.flagKeys)
            }
        }
        guard let name else {
            throw error(item.line, "\(item.path).name", "required: the flag's name, such as name: users_v2")
        }
        guard let migration else {
            throw error(item.line, "\(item.path).migration",
                        "required: the name of the migration this flag rolls out, such as migration: users_v2")
        }
        let config = FlagConfig(
            name: name.text, migration: migration.name, stage: stage, percentBasisPoints: percent, cohortKey: cohortKey,
            salt: salt, routing: routing, shadow: shadow, guardrails: guardrails)
        return FlagSite(config: config, path: item.path, nameLine: name.line, migrationLine: migration.line)
    }

    private func cohortSources(_ entry: Entry) throws(ConfigError) -> [CohortSource] {
        let expectation = "expected a list of cohort sources such as [comment:cohort, setting:switchyard.cohort, application_name]"
        guard case .sequence(let sequence) = entry.value else {
            throw error(entry.keyLine, entry.path, "\(expectation), got \(describe(entry.value))")
        }
        var sources: [CohortSource] = []
        for node in sequence {
            let line = node.mark?.line ?? entry.keyLine
            guard case .scalar(let scalar) = node, !isNull(node) else {
                throw error(line, entry.path, "\(expectation); got \(describe(node)) in it")
            }
            let source = try at(line) { () throws(ConfigError) in try CohortSource.parse(scalar.string, key: entry.path) }
            guard !sources.contains(source) else {
                throw error(line, entry.path, "\(source) is listed twice")
            }
            sources.append(source)
        }
        guard !sources.isEmpty else {
            throw error(entry.keyLine, entry.path, "at least one cohort source is needed; omit cohort_key for the default "
                + "[" + CohortSource.defaultKey.map(\.description).joined(separator: ", ") + "]")
        }
        return sources
    }

    /// `routing: rewrite` or `routing: {search_path: {old: app_v1, new: app_v2}}`.
    private func routingMode(_ entry: Entry) throws(ConfigError) -> RoutingMode {
        let expectation = "expected rewrite or {search_path: {old: SCHEMA, new: SCHEMA}}"
        switch entry.value {
        case _ where isNull(entry.value):
            return .rewrite
        case .scalar(let scalar):
            let word = scalar.string.trimmingWhitespace().lowercased()
            if word == "rewrite" { return .rewrite }
            let hint = word == "search_path"
                ? "; search_path routing names both schemas: routing: {search_path: {old: app_v1, new: app_v2}}" : ""
            throw error(entry.valueLine, entry.path, "\(expectation), got \(quoted(scalar.string))\(hint)")
        case .mapping:
            var mode: RoutingMode?
            for inner in try entries(of: entry.value, under: entry.path) {
                guard inner.name == "search_path" else { throw unknownKey(inner, known: ["search_path"]) }
                mode = try searchPath(inner)
            }
            guard let mode else { throw error(entry.keyLine, entry.path, "\(expectation), got an empty mapping") }
            return mode
        default:
            throw error(entry.keyLine, entry.path, "\(expectation), got \(describe(entry.value))")
        }
    }

    private func searchPath(_ entry: Entry) throws(ConfigError) -> RoutingMode {
        guard case .mapping = entry.value else {
            throw error(entry.keyLine, entry.path,
                        "expected {old: SCHEMA, new: SCHEMA}, the versioned schemas, got \(describe(entry.value))")
        }
        var schemas: [String: (name: String, line: Int?)] = [:]
        for inner in try entries(of: entry.value, under: entry.path) {
            guard Self.searchPathKeys.contains(inner.name) else { throw unknownKey(inner, known: Self.searchPathKeys) }
            let text = try scalarText(inner, expecting: "a schema name")
            let schema = try located(inner) { () throws(ConfigError) in
                try RelationName.parseIdentifier(text, key: inner.path, what: "schema")
            }
            schemas[inner.name] = (schema, inner.valueLine)
        }
        for side in Self.searchPathKeys where schemas[side] == nil {
            throw error(entry.keyLine, "\(entry.path).\(side)", "required: the \(side) version's schema, such as \(side): app_v1")
        }
        let old = schemas["old"]!, new = schemas["new"]!
        if old.name == new.name {
            throw error(new.line, "\(entry.path).new", "is the same schema as old (\(RelationName.quotedIdentifier(old.name)))")
        }
        return .searchPath(old: old.name, new: new.name)
    }

    // MARK: - Control

    func control(_ section: Entry) throws(ConfigError) -> ControlConfig {
        var result = ControlConfig()
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "schema":
                let text = try scalarText(entry, expecting: "a schema name such as switchyard")
                result.schema = try located(entry) { () throws(ConfigError) in
                    try RelationName.parseIdentifier(text, key: entry.path, what: "schema")
                }
            case "database":
                if isNull(entry.value) {
                    result.database = nil
                } else {
                    let text = try scalarText(entry, expecting: "a URI such as postgresql://switchyard@127.0.0.1:5432/postgres, or null")
                    do {
                        result.database = try UpstreamURI.parse(text)
                    } catch {
                        throw error.renamed(to: entry.path).located(file: file, line: entry.valueLine)
                    }
                }
            default:
                throw unknownKey(entry, known: Self.sectionKeys["control"]!)
            }
        }
        return result
    }

    // MARK: - Checks across sections

    /// Flags must name a defined migration, one flag per migration; no migrated relation may sit in the control schema.
    func checkReferences(migrations: [MigrationSite], flags: [FlagSite], control: ControlConfig) throws(ConfigError) {
        for site in migrations {
            for (relation, side, line) in [(site.config.old, "old", site.oldLine), (site.config.new, "new", site.newLine)]
            where relation.schema == control.schema {
                throw error(line, "\(site.path).\(side)",
                            "\(relation) is in the control schema \(RelationName.quotedIdentifier(control.schema)), "
                                + "which belongs to Switchyard; migrate relations of another schema, or change control.schema")
            }
        }
        let names = migrations.map(\.config.name)
        var flagged: [String: String] = [:]
        for site in flags {
            let migration = site.config.migration
            guard names.contains(migration) else {
                let known = names.isEmpty
                    ? "no migrations are defined; add one under migrations:"
                    : "the migrations are \(names.joined(separator: ", "))" + Suggestions.hint(for: migration, among: names)
                throw error(site.migrationLine, "\(site.path).migration", "migration \(migration) is not defined; \(known)")
            }
            if let first = flagged[migration] {
                throw error(site.migrationLine, "\(site.path).migration",
                            "migration \(migration) already has a flag (\(first)); a migration has at most one flag")
            }
            flagged[migration] = site.path
        }
    }

    // MARK: - Structure

    /// The items of a list section; a null section (`flags:` with nothing under it) is an empty list.
    private func listItems(_ section: Entry, expecting expectation: String) throws(ConfigError) -> [Item] {
        if isNull(section.value) { return [] }
        guard case .sequence(let sequence) = section.value else {
            throw error(section.keyLine, section.path, "expected \(expectation), got \(describe(section.value))")
        }
        return sequence.enumerated().map { index, node in
            Item(node: node, path: "\(section.path)[\(index)]", line: node.mark?.line ?? section.keyLine)
        }
    }

    private func itemEntries(_ item: Item, keys: [String]) throws(ConfigError) -> [Entry] {
        guard case .mapping = item.node else {
            throw error(item.line, item.path,
                        "expected a mapping with the keys \(keys.joined(separator: ", ")), got \(describe(item.node))")
        }
        return try entries(of: item.node, under: item.path)
    }

    /// A name Switchyard itself uses (migrations, flags): lower-case letters, digits and underscores.
    private func plainName(_ entry: Entry, what: String) throws(ConfigError) -> String {
        let text = try scalarText(entry, expecting: "a \(what) name such as users_v2")
        let name = text.trimmingWhitespace()
        let scalars = name.unicodeScalars
        guard let first = scalars.first, first == "_" || ("a"..."z").contains(first),
              scalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }),
              scalars.count <= RelationName.maximumIdentifierBytes else {
            throw error(entry.valueLine, entry.path,
                        "a \(what) name is a plain identifier: lower-case letters, digits and underscores, "
                            + "starting with a letter or underscore, at most \(RelationName.maximumIdentifierBytes) "
                            + "characters; got \(quoted(text))")
        }
        return name
    }

    /// A list of identifiers (folded like SQL), each error at its own line.
    private func identifierList(_ entry: Entry, expecting expectation: String) throws(ConfigError) -> [(name: String, line: Int?)] {
        guard case .sequence(let sequence) = entry.value else {
            throw error(entry.keyLine, entry.path, "expected \(expectation), got \(describe(entry.value))")
        }
        var result: [(name: String, line: Int?)] = []
        for node in sequence {
            let line = node.mark?.line ?? entry.keyLine
            guard case .scalar(let scalar) = node, !isNull(node) else {
                throw error(line, entry.path, "expected \(expectation); got \(describe(node)) in it")
            }
            let name = try at(line) { () throws(ConfigError) in try RelationName.parseIdentifier(scalar.string, key: entry.path) }
            result.append((name, line))
        }
        return result
    }

    /// Runs a parser that knows no positions and places its error at `line`.
    private func at<T>(_ line: Int?, _ parse: () throws(ConfigError) -> T) throws(ConfigError) -> T {
        do {
            return try parse()
        } catch {
            throw error.located(file: file, line: line)
        }
    }

    private func lineText(_ line: Int?) -> String {
        line.map(String.init) ?? "?"
    }
}
