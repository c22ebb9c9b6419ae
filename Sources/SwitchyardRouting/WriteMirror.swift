// Dual-write: a write to an old relation becomes one statement that also applies it to the new relation.
import SwitchyardConfig
import SwitchyardSQL

/// How writes to one migrated relation are mirrored into its new relation.
public struct MirrorTarget: Sendable, Equatable, Hashable {
    public var migration: String
    public var oldSchema: String
    public var oldName: String
    /// The new relation, quoted as needed.
    public var newRelation: String
    /// Key columns: old names (unquoted) and the new names (quoted as needed).
    public var oldKey: [String]
    public var newKey: [String]
    /// Each mapped column: the new column (quoted) and the forward expression over the old row.
    public var columns: [Column]
    /// New columns with no old counterpart: the column (quoted) and its SQL.
    public var extraColumns: [Column]
    /// The schema an unqualified name resolves to in this session (see ``ReadRoute``).
    public var unqualifiedSchema: String?
    /// Columns of the written relation's row, when known: what `RETURNING *` expands to.
    public var rowWidth: Int?
    /// A write whose mirror fails fails for the client (else it is applied alone and recorded).
    public var strict: Bool
    /// A write in a form not mirrored is refused (else it goes through and is recorded).
    public var refusesUnmirrored: Bool

    public struct Column: Sendable, Equatable, Hashable {
        public var newColumn: String
        public var expression: String
        public var isKey: Bool
    }

    /// Targets key the write-plan caches, looked up for every mirrored write: the hash takes the
    /// few fields that tell targets apart in practice (equality still compares every field), not
    /// every column's expression.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(migration)
        hasher.combine(oldName)
        hasher.combine(unqualifiedSchema)
        hasher.combine(rowWidth)
    }

    public init(migration m: MigrationConfig) {
        migration = m.name
        oldSchema = m.old.schema
        oldName = m.old.name
        newRelation = m.new.description
        oldKey = m.key
        newKey = m.key.map { key in RelationName.quotedIdentifier(m.column(old: key)?.newColumn ?? key) }
        columns = m.columns.map { c in
            Column(newColumn: RelationName.quotedIdentifier(c.newColumn), expression: c.forward, isKey: m.key.contains(c.oldColumn))
        }
        extraColumns = m.extraNewColumns.map { Column(newColumn: RelationName.quotedIdentifier($0.column), expression: $0.expression, isKey: false) }
        // `switchyard check` requires every old column to be mapped.
        rowWidth = m.columns.count
        strict = m.strict
        refusesUnmirrored = m.unmirroredWrites == .refuse
    }

    /// Reverse mirroring, for `live`: writes to the new relation applied to the old one through
    /// the inverse mapping. The new relation's own extra columns have no old counterpart.
    public init(reverseOf m: MigrationConfig) {
        migration = m.name
        oldSchema = m.new.schema
        oldName = m.new.name
        newRelation = m.old.description
        oldKey = m.key.map { key in m.column(old: key)?.newColumn ?? key }
        newKey = m.key.map { RelationName.quotedIdentifier($0) }
        columns = m.columns.map { c in
            Column(newColumn: RelationName.quotedIdentifier(c.oldColumn), expression: c.inverse, isKey: m.key.contains(c.oldColumn))
        }
        extraColumns = []
        // The new relation may have columns the mapping does not name.
        rowWidth = nil
        strict = m.strict
        refusesUnmirrored = m.unmirroredWrites == .refuse
    }

    func matches(_ r: RelationReference) -> Bool {
        guard r.catalog == nil, r.name == oldName else { return false }
        return (r.schema ?? unqualifiedSchema ?? "public") == oldSchema
    }

    /// The statement that applies the changed old rows (`switchyard_rows`, the old relation's
    /// columns) to the new relation: an upsert by key for inserted and updated rows, so a row the
    /// backfill has not copied yet is created; a delete by key for deleted rows.
    /// `source` is where the changed rows are, as a FROM item without its alias.
    func mirrorStatement(_ command: WriteShape.Command, source: String = "switchyard_rows") -> String {
        let alias = RelationName.quotedIdentifier(oldName)
        switch command {
        case .delete:
            let keys = oldKey.map { "\(alias).\(RelationName.quotedIdentifier($0))" }.joined(separator: ", ")
            return "DELETE FROM \(newRelation) WHERE (\(newKey.joined(separator: ", "))) IN (SELECT \(keys) FROM \(source) AS \(alias))"
        case .insert, .update:
            let all = columns + extraColumns
            let updates = columns.filter { !$0.isKey }.map { "\($0.newColumn) = EXCLUDED.\($0.newColumn)" }
            let conflict = updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET " + updates.joined(separator: ", ")
            return "INSERT INTO \(newRelation) (\(all.map(\.newColumn).joined(separator: ", "))) "
                + "SELECT \(all.map(\.expression).joined(separator: ", ")) FROM \(source) AS \(alias) "
                + "ON CONFLICT (\(newKey.joined(separator: ", "))) \(conflict)"
        }
    }
}

/// What the proxy does with a write.
public enum WritePlan: Sendable, Equatable {
    /// Writes no migrated relation (or is not a write): send it as it is.
    case untouched
    /// Send this text: each write to a migrated relation mirrored in the same statement.
    case mirrored(String, migrations: [String])
    /// Writes a migrated relation in a form not mirrored: what and why.
    case notMirrored(migration: String, reason: String)
}

/// Turns each top-level INSERT, UPDATE or DELETE on an old relation into a data-modifying CTE:
///
///     WITH switchyard_rows AS (<the statement> RETURNING <target>.*),
///          switchyard_mirror AS (<upsert or delete by key on the new relation>)
///     SELECT '<marker>:<command tag>' AS <marker column> FROM …
///
/// The change and its mirror are one statement, so the new relation changes if and only if the
/// old one does, in the client's transaction, with the values the old relation stored (defaults,
/// sequences, triggers' results come back through RETURNING). The proxy then turns the marker row
/// back into the command tag the original statement gives (see `MirrorResponseFixer`).
///
/// An INSERT or UPDATE alone in its text, without RETURNING, goes out in the cheaper tag form,
/// when the upsert changes exactly one new row for each old row (some mapped column is not a key,
/// so a conflict updates rather than skips):
///
///     WITH switchyard_rows AS (<the statement> RETURNING <target>.*) <upsert>
///
/// Its answer is the upsert's `INSERT 0 n`, n the rows the statement changed: an INSERT's own tag,
/// and for an UPDATE (marked by a trailing comment) the proxy makes it `UPDATE n`. It saves the
/// server the marker's query level and a second scan of the changed rows: PostgreSQL plans and
/// runs it faster than the marker form (`loadtests/mirror-cost.sh`). A BEFORE trigger on the new
/// relation that skips rows would make the count differ; the marker form does not depend on it.
public enum WriteMirror {
    /// Where the marker answer comes from: the column name says the protocol the statement went
    /// out in (the simple protocol's row description is dropped, the extended protocol's Describe
    /// answer becomes NoData), the value carries the command tag.
    public enum Wire: String, Sendable {
        case simple = "switchyard_mirrored_q"
        case extended = "switchyard_mirrored_x"
    }

    /// The first column of a mirrored statement with RETURNING: the client's rows follow it and
    /// the old row (for the mirror), and a last row carries the command tag (see `MirrorResponseFixer`).
    public static let returningColumn = "switchyard_mirrored_r"

    /// The statement sent instead of a write that is refused: it fails with SQLSTATE 0A000
    /// (feature_not_supported) and a message naming the migration, and changes nothing.
    public static func refusal(migration: String, reason: String) -> String {
        let message = "switchyard: this write is refused because migration \(migration) cannot mirror it into its new table: \(reason)"
        let hint = "migration \(migration) sets unmirrored_writes: refuse (or strict: true); rewrite the statement as INSERT, UPDATE or DELETE, "
            + "or set unmirrored_writes: record to let such writes through as recorded write divergences"
        func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
        return "DO $switchyard_refusal$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = \(literal(message)), "
            + "HINT = \(literal(hint)); END$switchyard_refusal$"
    }

    public static func isRefusal(_ text: String) -> Bool { text.hasPrefix("DO $switchyard_refusal$") }

    /// The parameter types of a refusal prepared in place of `sql`: the client's declared types,
    /// unspecified ones as text, and as many as the highest `$n` in `sql`, so the client's Bind
    /// still fits (PostgreSQL rejects an unused parameter of unknown type).
    public static func refusalParameterTypes(declared: [Int32], sql: String) -> [Int32] {
        let text: Int32 = 25  // pg_type's text
        var types = declared.map { $0 == 0 ? text : $0 }
        var used = 0
        if let tokens = try? SQLAnalyzer.tokens(in: sql) {
            let bytes = Array(sql.utf8)
            used = tokens.filter { $0.kind == .parameter }.compactMap { token in
                Int(String(decoding: bytes[token.byteRange].dropFirst(), as: UTF8.self))
            }.max() ?? 0
        }
        if types.count < used { types += Array(repeating: text, count: used - types.count) }
        return types
    }

    struct Unmirrorable: Error {
        var text: String
    }

    /// The edits that mirror an UPDATE assigning a key column. RETURNING cannot show a row's key
    /// before the update, so the statement joins the old relation to itself by key (the row as it
    /// was), returns the old key beside the new row, and the mirror deletes the moved rows' old keys
    /// from the new relation before upserting the rows under their new keys. The join is on the key,
    /// not on `ctid`: when a concurrent update makes PostgreSQL recheck a row, its latest version
    /// still has the key (a `ctid` would have moved, and the row would be skipped).
    ///
    /// The old relation joins as a subquery whose columns are renamed, so the statement's unqualified
    /// column names do not become ambiguous.
    ///
    ///     WITH switchyard_rows AS (UPDATE users SET id = id + 1000
    ///                              FROM (SELECT id AS switchyard_old_key_1 FROM public.users) AS switchyard_prior
    ///                              WHERE (id = 12) AND switchyard_prior.switchyard_old_key_1 = users.id
    ///                              RETURNING users.*, switchyard_prior.switchyard_old_key_1),
    ///          switchyard_moved AS (DELETE FROM <new> WHERE (id) IN (<old keys of rows whose key changed>)),
    ///          switchyard_mirror AS (<upsert>)
    ///     SELECT '<marker>:UPDATE ' || count(*) …
    static func keyChangeEdits(
        statement: StatementAnalysis, tokens: [SQLToken], target: MirrorTarget, targetEnd: Int, visible: String, wire: Wire, marker: String
    ) -> Result<[ReadRewriter.Edit], Unmirrorable> {
        let bytes = Array(statement.text.utf8)
        func word(_ t: SQLToken) -> String { String(decoding: bytes[t.byteRange], as: UTF8.self).lowercased() }
        // The clauses of the UPDATE itself: keywords at parenthesis depth 0 after the target.
        var depth = 0
        var from: SQLToken?
        var whereAt: Int?
        for (i, t) in tokens.enumerated() where !t.isComment {
            let text = t.byteRange.count == 1 ? word(t) : ""
            if text == "(" { depth += 1 } else if text == ")" { depth -= 1 }
            guard depth == 0, t.byteRange.lowerBound >= targetEnd, t.isKeyword else { continue }
            switch word(t) {
            case "from" where from == nil: from = t
            case "where": whereAt = i
            default: break
            }
        }
        if let w = whereAt, let next = tokens[(w + 1)...].first(where: { !$0.isComment }), word(next) == "current" {
            return .failure(Unmirrorable(text: "an UPDATE … WHERE CURRENT OF that assigns a key column is not mirrored"))
        }
        guard let firstToken = tokens.first(where: { !$0.isComment }),
              let lastToken = tokens.last(where: { !$0.isComment && $0.kind != .semicolon }) else {
            return .failure(Unmirrorable(text: "cannot scan the statement"))
        }
        let offset = statement.range.lowerBound
        let oldKeys = (1...target.oldKey.count).map { "switchyard_old_key_\($0)" }
        let renamed = zip(target.oldKey, oldKeys).map { "\(RelationName.quotedIdentifier($0)) AS \($1)" }.joined(separator: ", ")
        let old = "(SELECT \(renamed) FROM \(RelationName.quotedIdentifier(target.oldSchema)).\(RelationName.quotedIdentifier(target.oldName)))"
        let join = zip(target.oldKey, oldKeys).map { "switchyard_prior.\($1) = \(visible).\(RelationName.quotedIdentifier($0))" }.joined(separator: " AND ")
        let priorKeys = oldKeys.map { "switchyard_prior.\($0)" }
        var edits = [ReadRewriter.Edit(range: (offset + firstToken.byteRange.lowerBound)..<(offset + firstToken.byteRange.lowerBound),
                                       replacement: "WITH switchyard_rows AS (")]
        var tail = ""
        if let from {
            // The row as it was joins first, so the statement's own FROM items keep their order.
            let at = offset + from.byteRange.upperBound
            edits.append(ReadRewriter.Edit(range: at..<at, replacement: " \(old) AS switchyard_prior,"))
        }
        if let w = whereAt {
            guard let condition = tokens[(w + 1)...].first(where: { !$0.isComment }) else {
                return .failure(Unmirrorable(text: "cannot scan the statement"))
            }
            let at = offset + condition.byteRange.lowerBound
            edits.append(ReadRewriter.Edit(range: at..<at, replacement: "("))
            tail += ") AND \(join)"
        } else {
            tail += (from == nil ? " FROM \(old) AS switchyard_prior" : "") + " WHERE \(join)"
        }
        if from == nil, let w = whereAt {
            let at = offset + tokens[w].byteRange.lowerBound
            edits.append(ReadRewriter.Edit(range: at..<at, replacement: "FROM \(old) AS switchyard_prior "))
        }
        let newKeys = target.oldKey.map { RelationName.quotedIdentifier($0) }
        let moved = "DELETE FROM \(target.newRelation) WHERE (\(target.newKey.joined(separator: ", "))) IN "
            + "(SELECT \(oldKeys.joined(separator: ", ")) FROM switchyard_rows "
            + "WHERE (\(oldKeys.joined(separator: ", "))) IS DISTINCT FROM (\(newKeys.joined(separator: ", "))))"
        tail += " RETURNING \(visible).*, \(priorKeys.joined(separator: ", "))), switchyard_moved AS (\(moved)), "
            + "switchyard_mirror AS (\(target.mirrorStatement(.update))) "
            + "SELECT '\(marker):UPDATE ' || count(*) AS \(wire.rawValue) FROM switchyard_rows"
        let end = offset + lastToken.byteRange.upperBound
        edits.append(ReadRewriter.Edit(range: end..<end, replacement: tail))
        return .success(edits)
    }

    /// The staging table a mirrored COPY FROM fills; the proxy drops its statements' answers.
    public static let copyStaging = "pg_temp.switchyard_copy"

    /// Whether a mirrored text is a COPY FROM through the staging table.
    public static func isMirroredCopy(_ text: String) -> Bool { text.containsBytes("CREATE TEMP TABLE switchyard_copy ") }

    /// The edits that mirror `COPY users [(a, b)] FROM …`, alone in a simple-protocol query. The
    /// rows go to a temporary staging table shaped like the old relation (same columns and types,
    /// no defaults and no constraints, NOT NULL included: a column the COPY leaves out is NULL
    /// there), then one statement inserts them into the old relation (whose
    /// defaults, sequences and triggers apply to the columns the COPY leaves out, as they would)
    /// and mirrors what it stored, all in the query's one transaction:
    ///
    ///     CREATE TEMP TABLE switchyard_copy AS SELECT * FROM public.users WITH NO DATA;
    ///     COPY pg_temp.switchyard_copy (a, b) FROM STDIN …;
    ///     WITH switchyard_rows AS (INSERT INTO public.users (a, b) SELECT a, b FROM pg_temp.switchyard_copy RETURNING users.*),
    ///          switchyard_mirror AS (<upsert>)
    ///     SELECT '<marker>:COPY ' || count(*) …;
    ///     DROP TABLE pg_temp.switchyard_copy
    ///
    /// The client's COPY data flows to the server untouched; the proxy drops the answers of the
    /// staging statements and turns the marker into the `COPY n` tag.
    static func copyEdits(statement: StatementAnalysis, relation: RelationReference, target: MirrorTarget, marker: String)
        -> Result<[ReadRewriter.Edit], Unmirrorable> {
        guard let tokens = try? SQLAnalyzer.tokens(in: statement.text),
              let firstToken = tokens.first(where: { !$0.isComment }),
              let lastToken = tokens.last(where: { !$0.isComment && $0.kind != .semicolon }),
              let nameEnd = tokens.firstIndex(where: { $0.byteRange.upperBound == relation.byteRange.upperBound }) else {
            return .failure(Unmirrorable(text: "cannot scan the statement"))
        }
        let bytes = Array(statement.text.utf8)
        func text(_ t: SQLToken) -> String { String(decoding: bytes[t.byteRange], as: UTF8.self) }
        // The COPY's column list, if any: identifiers between the parentheses after the name.
        var columns: [String] = []
        var i = nameEnd + 1
        while i < tokens.count, tokens[i].isComment { i += 1 }
        if i < tokens.count, text(tokens[i]) == "(" {
            i += 1
            while i < tokens.count, text(tokens[i]) != ")" {
                let t = tokens[i]
                if t.kind == .identifier || t.isKeyword {
                    var name = text(t)
                    if name.hasPrefix("\"") {
                        name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
                    } else {
                        name = name.lowercased()
                    }
                    columns.append(name)
                } else if !t.isComment && text(t) != "," {
                    return .failure(Unmirrorable(text: "cannot read the COPY's column list"))
                }
                i += 1
            }
        }
        // Without a list the COPY fills every column, in the table's order, as the staging table has them.
        let list = columns.map(RelationName.quotedIdentifier).joined(separator: ", ")
        let insert = columns.isEmpty ? "SELECT *" : "(\(list)) SELECT \(list)"
        let old = "\(RelationName.quotedIdentifier(target.oldSchema)).\(RelationName.quotedIdentifier(target.oldName))"
        let offset = statement.range.lowerBound
        let start = offset + firstToken.byteRange.lowerBound
        let name = (offset + relation.byteRange.lowerBound)..<(offset + relation.byteRange.upperBound)
        let end = offset + lastToken.byteRange.upperBound
        return .success([
            ReadRewriter.Edit(range: start..<start, replacement: "CREATE TEMP TABLE switchyard_copy AS SELECT * FROM \(old) WITH NO DATA; "),
            ReadRewriter.Edit(range: name, replacement: copyStaging),
            ReadRewriter.Edit(range: end..<end, replacement: "; WITH switchyard_rows AS (INSERT INTO \(old) \(insert) FROM \(copyStaging) "
                + "RETURNING \(RelationName.quotedIdentifier(target.oldName)).*), switchyard_mirror AS (\(target.mirrorStatement(.insert))) "
                + "SELECT '\(marker):COPY ' || count(*) AS \(Wire.simple.rawValue) FROM switchyard_rows; DROP TABLE \(copyStaging)"),
        ])
    }

    /// Whether a text may be a mirrored write of any form: each starts its changed rows' CTE so.
    /// One search that rules out most texts before the checks for each form.
    public static func mayBeMirrored(_ text: String) -> Bool { text.containsBytes("WITH switchyard_rows AS (") }

    /// Whether a statement text is a mirrored write (it answers with a marker).
    public static func isMirrored(_ text: String) -> Bool { text.containsBytes("switchyard_mirrored_") }

    /// Whether a mirrored text carries the client's RETURNING rows behind the marker columns.
    public static func returnsRows(_ text: String) -> Bool { text.containsBytes(returningColumn) }

    /// Follows a mirrored UPDATE in the tag form: its answer is the mirror's `INSERT 0 n`, which the
    /// proxy turns into `UPDATE n` (an INSERT's tag form answers with the tag its client expects).
    public static func updateTagComment(marker: String) -> String { "/*switchyard_tag:\(marker):UPDATE*/" }

    /// For a mirrored write in the tag form, the verb of the tag its client expects instead of the
    /// mirror's `INSERT 0 n`; nil for any other text. `tagComment`: ``updateTagComment(marker:)``.
    public static func renamedVerb(_ text: String, tagComment: String) -> String? {
        text.containsBytes(tagComment) ? "UPDATE" : nil
    }

    /// The mirrored text of `sql`, as edits on token boundaries (insertions before the statement's
    /// first token and after its last one), so one plan serves every text of a token shape.
    public static func plan(
        sql: String, statements: [StatementAnalysis], targets: [MirrorTarget], wire: Wire, marker: String
    ) -> (plan: WritePlan, edits: [ReadRewriter.Edit]) {
        guard !targets.isEmpty else { return (.untouched, []) }
        var edits: [ReadRewriter.Edit] = []
        var migrations: [String] = []
        var addedStatements = 0
        for statement in statements {
            // LOCK changes no rows; locking the old relation already holds back the writes it would mirror.
            if statement.statementType == "LockStmt" { continue }
            let written = statement.relations.filter { r in r.access != .read && targets.contains { $0.matches(r) } }
            guard let first = written.first, let target = targets.first(where: { $0.matches(first) }) else { continue }
            if statement.statementType == "TruncateStmt" {
                // TRUNCATE takes a list: the new relations join it, so both are emptied in one statement.
                guard let tokens = try? SQLAnalyzer.tokens(in: statement.text) else {
                    return (.notMirrored(migration: target.migration, reason: "cannot scan the statement"), [])
                }
                for r in written {
                    guard let t = targets.first(where: { $0.matches(r) }),
                          var end = tokens.firstIndex(where: { $0.byteRange.upperBound == r.byteRange.upperBound }) else {
                        return (.notMirrored(migration: target.migration, reason: "cannot find the table in the statement"), [])
                    }
                    // `users *` (with its descendants): the new relation goes after the star.
                    if let next = tokens[(end + 1)...].firstIndex(where: { !$0.isComment }),
                       String(decoding: Array(statement.text.utf8)[tokens[next].byteRange], as: UTF8.self) == "*" {
                        end = next
                    }
                    let at = statement.range.lowerBound + tokens[end].byteRange.upperBound
                    edits.append(ReadRewriter.Edit(range: at..<at, replacement: ", \(t.newRelation)"))
                    migrations.append(t.migration)
                }
                continue
            }
            if statement.statementType == "CopyStmt" {
                guard wire == .simple, statements.count == 1 else {
                    return (.notMirrored(migration: target.migration, reason: wire == .simple
                        ? "COPY FROM in a query string with other statements is not mirrored"
                        : "COPY FROM in the extended protocol is not mirrored"), [])
                }
                switch copyEdits(statement: statement, relation: first, target: target, marker: marker) {
                case let .success(more):
                    edits += more
                    // The staging table's creation, the insert and the drop.
                    addedStatements += 3
                    migrations.append(target.migration)
                    continue
                case let .failure(reason):
                    return (.notMirrored(migration: target.migration, reason: reason.text), [])
                }
            }
            if statement.statementType == "PrepareStmt" {
                return (.notMirrored(migration: target.migration, reason:
                    "a write prepared with SQL PREPARE is not mirrored (each EXECUTE would change the old table alone); prepare it through the protocol instead"), [])
            }
            guard let shape = statement.write else {
                let what = statement.statementType == "SelectStmt" ? "writes to the table inside a WITH clause are" : "\(statement.statementType ?? "this statement") is"
                return (.notMirrored(migration: target.migration, reason: "\(what) not mirrored yet"), [])
            }
            guard written.count == 1, first.byteRange.lowerBound == shape.targetLocation else {
                return (.notMirrored(migration: target.migration, reason: "writes to the table inside a WITH clause are not mirrored yet"), [])
            }
            if statement.relations.contains(where: { $0.access != .read && $0.byteRange.lowerBound != shape.targetLocation }) {
                return (.notMirrored(migration: target.migration, reason: "a statement that also writes other tables in a WITH clause is not mirrored"), [])
            }
            let keyChange = shape.assignedColumns.first(where: { target.oldKey.contains($0) })
            if let key = keyChange, shape.command != .update || shape.hasReturning {
                return (.notMirrored(migration: target.migration, reason: shape.command == .update
                    ? "an UPDATE that assigns the key column \(key) with RETURNING is not mirrored yet"
                    : "the statement assigns the key column \(key)"), [])
            }
            guard let tokens = try? SQLAnalyzer.tokens(in: statement.text),
                  let firstToken = tokens.first(where: { !$0.isComment }),
                  let lastToken = tokens.last(where: { !$0.isComment && $0.kind != .semicolon }) else {
                return (.notMirrored(migration: target.migration, reason: "cannot scan the statement"), [])
            }
            let visible = RelationName.quotedIdentifier(first.alias ?? first.name)
            if keyChange != nil {
                switch keyChangeEdits(statement: statement, tokens: tokens, target: target, targetEnd: first.byteRange.upperBound,
                                      visible: visible, wire: wire, marker: marker) {
                case let .success(more):
                    edits += more
                    migrations.append(target.migration)
                    continue
                case let .failure(reason):
                    return (.notMirrored(migration: target.migration, reason: reason.text), [])
                }
            }
            let tag = shape.command == .insert ? "INSERT 0 " : "\(shape.command.rawValue) "
            let offset = statement.range.lowerBound
            if shape.hasReturning {
                // The client's RETURNING list, after a marker column and the old row: the rows come
                // back with both, for the mirror; the proxy strips them, and the last row (the tag).
                var columnsReturned = shape.returningItems
                for star in shape.returningStars {
                    if let width = target.rowWidth, star == nil && !shape.hasOtherSources || star == first.alias ?? first.name {
                        columnsReturned += width
                    } else {
                        return (.notMirrored(migration: target.migration, reason: target.rowWidth == nil
                            ? "RETURNING * of a new relation is not mirrored back yet" : "RETURNING * over other tables is not mirrored yet"), [])
                    }
                }
                guard let listStart = shape.returningListLocation,
                      let listToken = tokens.first(where: { $0.byteRange.lowerBound == listStart }) else {
                    return (.notMirrored(migration: target.migration, reason: "cannot find the RETURNING list"), [])
                }
                let sentinel = ["'\(marker):\(tag)' || count(*)", "NULL"] + Array(repeating: "NULL", count: columnsReturned)
                edits.append(ReadRewriter.Edit(range: (offset + firstToken.byteRange.lowerBound)..<(offset + firstToken.byteRange.lowerBound),
                                               replacement: "WITH switchyard_rows AS ("))
                edits.append(ReadRewriter.Edit(range: (offset + listToken.byteRange.lowerBound)..<(offset + listToken.byteRange.lowerBound),
                                               replacement: "'\(marker):row' AS \(returningColumn), \(visible) AS switchyard_row, "))
                let source = "(SELECT (switchyard_row).* FROM switchyard_rows)"
                edits.append(ReadRewriter.Edit(
                    range: (offset + lastToken.byteRange.upperBound)..<(offset + lastToken.byteRange.upperBound),
                    replacement: "), switchyard_mirror AS (\(target.mirrorStatement(shape.command, source: source))) "
                        + "SELECT * FROM switchyard_rows UNION ALL SELECT \(sentinel.joined(separator: ", ")) FROM switchyard_rows"))
                migrations.append(target.migration)
                continue
            }
            let returning: String
            switch shape.command {
            case .delete: returning = target.oldKey.map { "\(visible).\(RelationName.quotedIdentifier($0))" }.joined(separator: ", ")
            case .insert, .update: returning = "\(visible).*"
            }
            let start = offset + firstToken.byteRange.lowerBound
            let end = offset + lastToken.byteRange.upperBound
            edits.append(ReadRewriter.Edit(range: start..<start, replacement: "WITH switchyard_rows AS ("))
            if statements.count == 1, shape.command != .delete, target.columns.contains(where: { !$0.isKey }) {
                // The tag form: the upsert is the statement's own, so the server answers with its tag.
                let rename = shape.command == .update ? " " + updateTagComment(marker: marker) : ""
                edits.append(ReadRewriter.Edit(
                    range: end..<end, replacement: " RETURNING \(returning)) \(target.mirrorStatement(shape.command))\(rename)"))
                migrations.append(target.migration)
                continue
            }
            edits.append(ReadRewriter.Edit(
                range: end..<end,
                replacement: " RETURNING \(returning)), switchyard_mirror AS (\(target.mirrorStatement(shape.command))) "
                    + "SELECT '\(marker):\(tag)' || count(*) AS \(wire.rawValue) FROM switchyard_rows"))
            migrations.append(target.migration)
        }
        guard !edits.isEmpty, let text = ReadRewriter.apply(edits, to: sql) else { return (.untouched, []) }
        let check = SQLAnalyzer.analyze(text)
        guard check.count == statements.count + addedStatements, check.allSatisfy({ $0.error == nil }) else {
            return (.notMirrored(migration: migrations.first ?? "", reason: "the mirrored statement does not parse"), [])
        }
        return (.mirrored(text, migrations: migrations), edits)
    }
}
