// Rewrites reads of an old relation into reads of its new relation, leaving the SQL's shape untouched.
import SwitchyardConfig
import SwitchyardSQL

/// How one migrated relation is read from the new schema path: a projection of the
/// new relation under the old relation's column names, in the old column order, or, when
/// the catalog shows the new relation has the old row shape, the new relation itself with
/// a column alias list of the old names.
public struct ReadRoute: Sendable, Equatable, Hashable {
    /// The old relation as PostgreSQL folds it (schema defaults to `public`).
    public var oldSchema: String
    public var oldName: String
    /// `(SELECT … FROM new) ` text that stands in for the old relation.
    public let projection: String
    /// The old relation's column names and primary key, to recognise references the
    /// projection cannot answer like the table.
    public let columnNames: [String]
    public let keyColumns: [String]
    /// Each column's `value AS name` item, in the old column order.
    let items: [String]
    let newRelation: String
    /// The old column names to give the new relation by position, the first columns' up to the
    /// last renamed one, set only when the catalog showed that the new relation itself answers
    /// like the projection (``ReadForm/direct(columns:)``).
    public let directColumns: [String]?
    /// `(aid, bid, …)`: the column alias list of the direct form, empty when no column is renamed.
    let directColumnList: String?
    /// A digest of everything above, computed once: routes key the rewrite-plan caches,
    /// and hashing the projection text for every statement would cost more than the lookup.
    private let digest: Int

    public static func == (a: ReadRoute, b: ReadRoute) -> Bool {
        a.digest == b.digest && a.unqualifiedSchema == b.unqualifiedSchema && a.oldSchema == b.oldSchema
            && a.oldName == b.oldName && a.projection == b.projection && a.keyColumns == b.keyColumns
            && a.directColumns == b.directColumns
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
        hasher.combine(unqualifiedSchema)
    }

    /// - Parameters:
    ///   - newRelation: the new relation, already quoted as needed (`public.users_v2`).
    ///   - columns: each old column (unquoted, as PostgreSQL folds it) with the SQL expression
    ///     over the new relation's row that gives its value (the inverse mapping).
    ///   - types: the old columns' types, when known, so each value is cast back to exactly the
    ///     type the old relation returns.
    ///   - directColumns: the column alias list when the new relation itself may stand in for
    ///     the old one (see ``ReadForm``): the old names of the first columns, in order; ignored
    ///     unless it is a prefix of `columns`' names.
    public init(
        oldSchema: String, oldName: String, newRelation: String, columns: [(column: String, inverse: String)],
        types: [String?] = [], keyColumns: [String] = [], directColumns: [String]? = nil
    ) {
        self.oldSchema = oldSchema
        self.oldName = oldName
        self.columnNames = columns.map(\.column)
        self.keyColumns = keyColumns
        var items: [String] = []
        for (i, c) in columns.enumerated() {
            let type = i < types.count ? types[i] : nil
            let value = type.map { "CAST((\(c.inverse)) AS \($0))" } ?? c.inverse
            items.append("\(value) AS \(RelationName.quotedIdentifier(c.column))")
        }
        self.items = items
        self.newRelation = newRelation
        let projection = "(SELECT \(items.joined(separator: ", ")) FROM \(newRelation))"
        self.projection = projection
        let direct = directColumns.flatMap { $0.elementsEqual(columns.prefix($0.count).lazy.map(\.column)) ? $0 : nil }
        self.directColumns = direct
        directColumnList = direct.map { $0.isEmpty ? "" : "(" + $0.map(RelationName.quotedIdentifier).joined(separator: ", ") + ")" }
        var hasher = Hasher()
        hasher.combine(oldSchema)
        hasher.combine(oldName)
        hasher.combine(projection)
        hasher.combine(keyColumns)
        hasher.combine(direct)
        digest = hasher.finalize()
    }

    /// What stands in for the old relation in a routed read, for display: the new relation
    /// under the old column names (direct form), or the projection.
    public var readForm: String {
        guard let list = directColumnList else { return projection }
        return "\(newRelation) AS \(RelationName.quotedIdentifier(oldName))\(list)"
    }

    /// The projection with only the columns a statement can use, in the old order: less
    /// for PostgreSQL to parse and plan. Nil when all are needed.
    func projection(keeping used: Set<String>) -> String {
        let kept = zip(columnNames, items).filter { used.contains($0.0) }.map(\.1)
        guard !kept.isEmpty, kept.count < items.count else { return projection }
        return "(SELECT \(kept.joined(separator: ", ")) FROM \(newRelation))"
    }

    /// The schema an unqualified name resolves to in this session: the first schema of its
    /// search_path when the session set one, else PostgreSQL's default, which finds public.
    public var unqualifiedSchema: String?

    func matches(_ r: RelationReference) -> Bool {
        matches(r, unqualifiedSchema: unqualifiedSchema)
    }

    /// ``matches(_:)`` for a session whose unqualified names resolve to `schema`, without a
    /// copy of the route to set it on.
    func matches(_ r: RelationReference, unqualifiedSchema schema: String?) -> Bool {
        r.names(schema: oldSchema, name: oldName, unqualifiedSchema: schema)
    }
}

extension RelationReference {
    /// Whether this reference names relation `schema.name` in a session whose unqualified names
    /// resolve to `unqualifiedSchema` (PostgreSQL's default search_path finds `public`).
    func names(schema: String, name: String, unqualifiedSchema: String?) -> Bool {
        guard catalog == nil, self.name == name else { return false }
        return (self.schema ?? unqualifiedSchema ?? "public") == schema
    }
}

/// What the router does with one query string.
public enum RewriteOutcome: Sendable, Equatable {
    /// Nothing in it reads a routed relation (or it is not a read): send it as it is.
    case untouched
    /// Send this text instead.
    case rewritten(String)
    /// It reads a routed relation but cannot be rewritten safely: serve it from the old path.
    case keptOnOldPath(reason: String)
}

/// Replaces each read reference to an old relation, at its exact byte range, with a
/// projection of the new relation carrying the old column names and the same alias.
/// PostgreSQL's planner pulls such subqueries up, so plans stay as good as on a table.
/// When the route allows it, the reference names the new relation itself instead, with a
/// column alias list of the old names: the same answer, and cheaper for PostgreSQL to
/// parse and plan than the subquery.
/// Anything it cannot prove safe stays on the old path: a wrong answer is worse than an old one.
public enum ReadRewriter {
    public static func rewrite(sql: String, statements: [StatementAnalysis], routes: [ReadRoute]) -> RewriteOutcome {
        switch plan(sql: sql, statements: statements, routes: routes) {
        case .untouched: return .untouched
        case let .keptOnOldPath(reason): return .keptOnOldPath(reason: reason)
        case let .edits(_, rewritten): return .rewritten(rewritten)
        }
    }

    /// The rewrite as a plan: the byte ranges replaced and their replacements, so the same
    /// plan can be applied to another text of the same token shape.
    public enum Plan: Sendable, Equatable {
        case untouched
        case keptOnOldPath(reason: String)
        case edits([Edit], rewritten: String)
    }

    public struct Edit: Sendable, Equatable, Hashable {
        public var range: Range<Int>
        public var replacement: String
    }

    public static func plan(sql: String, statements: [StatementAnalysis], routes: [ReadRoute]) -> Plan {
        guard !routes.isEmpty else { return .untouched }
        var edits: [(range: Range<Int>, text: String)] = []
        for statement in statements {
            let matching = statement.relations.filter { r in routes.contains { $0.matches(r) } }
            if matching.isEmpty { continue }
            // Writes go to the old relation by design (dual-write mirrors them); only reads are routed.
            guard statement.kind == .read else { return .untouched }
            if statement.lockingRead { return .keptOnOldPath(reason: "locking read (FOR UPDATE/SHARE)") }
            for r in matching where r.access != .read {
                return .keptOnOldPath(reason: "\(r.name) is not only read here")
            }
            let tokens: [SQLToken]
            do { tokens = try SQLAnalyzer.tokens(in: statement.text) } catch { return .keptOnOldPath(reason: "cannot scan the statement") }
            let textBytes = Array(statement.text.utf8)
            let columns = ColumnReference.all(in: statement)
            for r in matching {
                guard let route = routes.first(where: { $0.matches(r) }) else { continue }
                if let reason = unsafeReason(r, route: route, columns: columns, tokens: tokens, text: textBytes) {
                    return .keptOnOldPath(reason: reason)
                }
                let offset = statement.range.lowerBound
                if let direct = directEdits(r, route: route, columns: columns, tokens: tokens, text: textBytes) {
                    for e in direct { edits.append(((e.range.lowerBound + offset)..<(e.range.upperBound + offset), e.text)) }
                    continue
                }
                let projection = route.projection(keeping: usedColumns(of: r, route: route, columns: columns, tokens: tokens, text: textBytes))
                let replacement = r.alias == nil ? "\(projection) AS \(RelationName.quotedIdentifier(r.name))" : projection
                edits.append(((r.byteRange.lowerBound + offset)..<(r.byteRange.upperBound + offset), replacement))
            }
        }
        if edits.isEmpty { return .untouched }
        let planned = edits.map { Edit(range: $0.range, replacement: $0.text) }
        guard let rewritten = apply(planned, to: sql) else { return .keptOnOldPath(reason: "reference outside the text") }
        // The rewrite must still be one valid statement per original statement.
        let check = SQLAnalyzer.analyze(rewritten)
        guard check.count == statements.count, check.allSatisfy({ $0.error == nil }) else {
            return .keptOnOldPath(reason: "the rewritten statement does not parse")
        }
        return .edits(planned, rewritten: rewritten)
    }

    /// Replaces each edit's byte range; nil if a range falls outside the text. A replacement
    /// that would run into the token beside it gets a space there (see ``separated(_:in:at:)``).
    public static func apply(_ edits: [Edit], to sql: String) -> String? {
        applyAsGiven(spaced(edits, in: sql), to: sql)
    }

    /// `edits` with each replacement ``separated(_:in:at:)`` in `sql`. Most texts are spaced
    /// already: the edits are copied only when one needs a space.
    static func spaced(_ edits: [Edit], in sql: String) -> [Edit] {
        var text = sql
        return text.withUTF8 { bytes in
            guard edits.contains(where: { spacing($0.replacement, in: bytes, at: $0.range) != (false, false) }) else { return edits }
            return edits.map { Edit(range: $0.range, replacement: separated($0.replacement, in: bytes, at: $0.range)) }
        }
    }

    /// ``apply(_:to:)`` with the replacements as they are.
    static func applyAsGiven(_ edits: [Edit], to sql: String) -> String? {
        if let spliced = splicedInOrder(edits, into: sql) { return spliced }
        var bytes = Array(sql.utf8)
        for edit in edits.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            guard edit.range.upperBound <= bytes.count else { return nil }
            bytes.replaceSubrange(edit.range, with: Array(edit.replacement.utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `replacement` with a space before it when it begins with a character of a name and the
    /// text before its range ends with one, and after it likewise: `from"users"` would otherwise
    /// become `frompublic.users_v2`. Edits are planned on one text of a shape and applied to
    /// others, whose spacing may differ, so this is decided on the text the edit is applied to.
    static func separated(_ replacement: String, in bytes: UnsafeBufferPointer<UInt8>, at range: Range<Int>) -> String {
        let (before, after) = spacing(replacement, in: bytes, at: range)
        guard before || after else { return replacement }
        return (before ? " " : "") + replacement + (after ? " " : "")
    }

    /// Whether ``separated(_:in:at:)`` puts a space before and after `replacement`.
    private static func spacing(_ replacement: String, in bytes: UnsafeBufferPointer<UInt8>, at range: Range<Int>) -> (Bool, Bool) {
        guard let first = replacement.utf8.first, let last = replacement.utf8.last else { return (false, false) }
        let before = range.lowerBound > 0 && range.lowerBound <= bytes.count && isNameByte(bytes[range.lowerBound - 1]) && isNameByte(first)
        let after = range.upperBound >= 0 && range.upperBound < bytes.count && isNameByte(bytes[range.upperBound]) && isNameByte(last)
        return (before, after)
    }

    /// A byte of an unquoted name, a keyword or a number as PostgreSQL's scanner reads them.
    @inline(__always) static func isNameByte(_ b: UInt8) -> Bool {
        b >= 0x80 || b == UInt8(ascii: "_") || b == UInt8(ascii: "$") || (b | 0x20) &- UInt8(ascii: "a") < 26 || b &- UInt8(ascii: "0") < 10
    }

    /// ``apply(_:to:)`` in one pass for the usual case, edits in ascending order that do not
    /// overlap (every routed statement takes this path): the result is written once, with no
    /// copy of the text to edit in place. Nil when the edits are not in that order, or a range
    /// falls outside the text; the caller then takes the general path, which gives the same
    /// answer for ordered edits.
    static func splicedInOrder(_ edits: [Edit], into sql: String) -> String? {
        guard let last = edits.last else { return sql }
        var total = 0
        var previous: Edit?
        for e in edits {
            if let p = previous, p.range.lowerBound >= e.range.lowerBound || p.range.upperBound > e.range.lowerBound { return nil }
            total += e.replacement.utf8.count - e.range.count
            previous = e
        }
        var text = sql
        return text.withUTF8 { bytes -> String? in
            guard last.range.upperBound <= bytes.count, edits[0].range.lowerBound >= 0 else { return nil }
            return String(unsafeUninitializedCapacity: bytes.count + total) { out in
                var written = 0
                var at = 0
                func copy(_ part: UnsafeBufferPointer<UInt8>) {
                    guard let base = part.baseAddress, !part.isEmpty else { return }
                    UnsafeMutableRawPointer(out.baseAddress! + written).copyMemory(from: base, byteCount: part.count)
                    written += part.count
                }
                for e in edits {
                    copy(UnsafeBufferPointer(rebasing: bytes[at..<e.range.lowerBound]))
                    var replacement = e.replacement
                    replacement.withUTF8 { copy($0) }
                    at = e.range.upperBound
                }
                copy(UnsafeBufferPointer(rebasing: bytes[at...]))
                return written
            }
        }
    }

    /// The edits (byte ranges within the statement, each on token boundaries) that make reference
    /// `r` name the new relation itself under the old column names, or nil when the route has no
    /// direct form or this reference needs the projection:
    /// `users` → `public.users_v2 AS users(id, name)`, `users u` → `public.users_v2 u(id, name)`,
    /// and `users AS t(a, b)` (a full column list, which keeps its meaning by position) →
    /// `public.users_v2 AS t(a, b)`.
    static func directEdits(_ r: RelationReference, route: ReadRoute, columns: [ColumnReference], tokens: [SQLToken], text: [UInt8]) -> [(range: Range<Int>, text: String)]? {
        guard let list = route.directColumnList else { return nil }
        func spelling(_ t: SQLToken) -> String {
            String(decoding: text[max(0, t.byteRange.lowerBound)..<min(text.count, t.byteRange.upperBound)], as: UTF8.self)
        }
        // The columns visible through the reference: the old names, or those of the alias's column list.
        var visibleColumns = route.columnNames
        var aliasEdit: (range: Range<Int>, text: String)?
        if let alias = r.alias {
            let following = tokens.lazy.filter { !$0.isComment && $0.byteRange.lowerBound >= r.byteRange.upperBound }
            var i = following.startIndex
            guard i != following.endIndex else { return nil }
            if following[i].isKeyword, spelling(following[i]).uppercased() == "AS" { i = following.index(after: i) }
            guard i != following.endIndex, foldedIdentifier(spelling(following[i])) == alias else { return nil }
            let aliasToken = following[i]
            i = following.index(after: i)
            if i != following.endIndex, spelling(following[i]) == "(" {
                // A column list names the columns by position. A partial one leaves the later
                // columns named as the table names them, which the projection does and the new
                // relation does not.
                var names: [String] = []
                i = following.index(after: i)
                while i != following.endIndex, spelling(following[i]) != ")" {
                    let word = spelling(following[i])
                    if word != "," {
                        guard let name = foldedIdentifier(word) else { return nil }
                        names.append(name)
                    }
                    i = following.index(after: i)
                }
                guard i != following.endIndex, names.count == route.columnNames.count else { return nil }
                visibleColumns = names
            } else if !list.isEmpty {
                aliasEdit = (aliasToken.byteRange, spelling(aliasToken) + list)
            }
        }
        // `u.f` where f is no column calls a function in attribute notation on the row, whose type
        // is the new relation's here; a field of a column's value (`u.c.f`) is left to the projection too.
        let visible = r.alias ?? r.name
        let known = Set(visibleColumns)
        for c in columns where c.fields.count >= 2 {
            guard let last = c.fields.last else { continue }
            if c.fields[c.fields.count - 2] == visible, last != "*", !known.contains(last) { return nil }
            if c.fields.count > 2, c.fields[0] == visible { return nil }
        }
        guard r.alias != nil else { return [(r.byteRange, "\(route.newRelation) AS \(RelationName.quotedIdentifier(r.name))\(list)")] }
        return [(r.byteRange, route.newRelation)] + (aliasEdit.map { [$0] } ?? [])
    }

    /// An identifier token as PostgreSQL folds it: quoted kept (with `""` unescaped), bare with
    /// ASCII letters lower-cased; nil for anything else (Unicode escapes, punctuation).
    static func foldedIdentifier(_ word: String) -> String? {
        if word.hasPrefix("\""), word.hasSuffix("\""), word.utf8.count >= 2 {
            let inner = word.dropFirst().dropLast()
            return inner.split(separator: "\"\"", omittingEmptySubsequences: false).joined(separator: "\"")
        }
        func isLetter(_ c: Unicode.Scalar) -> Bool { c == "_" || c.value >= 0x80 || ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        guard let first = word.unicodeScalars.first, isLetter(first),
              word.unicodeScalars.allSatisfy({ isLetter($0) || $0 == "$" || ("0"..."9").contains($0) }) else { return nil }
        return String(decoding: word.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// The old columns a statement may read through reference `r`: every column its column
    /// references could name (unqualified names count for every relation they might belong to),
    /// all of them for a star or for NATURAL/USING joins (which match columns by name unseen),
    /// and the key, so the projection is never empty.
    static func usedColumns(of r: RelationReference, route: ReadRoute, columns: [ColumnReference], tokens: [SQLToken], text: [UInt8]) -> Set<String> {
        let all = Set(route.columnNames)
        for t in tokens where t.isKeyword {
            let word = String(decoding: text[max(0, t.byteRange.lowerBound)..<min(text.count, t.byteRange.upperBound)], as: UTF8.self).uppercased()
            if word == "NATURAL" || word == "USING" { return all }
        }
        // An alias with a column list, `users AS t (a, b)`, renames columns by position. The
        // three tokens after the reference, comments passed over (`users /* … */ t (a, b)`).
        let following = tokens.lazy.filter { !$0.isComment && $0.byteRange.lowerBound >= r.byteRange.upperBound }.prefix(3)
        for t in following where String(decoding: text[max(0, t.byteRange.lowerBound)..<min(text.count, t.byteRange.upperBound)], as: UTF8.self) == "(" {
            return all
        }
        let visible = r.alias ?? r.name
        var used = Set(route.keyColumns.filter { all.contains($0) })
        for c in columns {
            guard let last = c.fields.last else { continue }
            if last == "*" {
                if c.fields.count == 1 || c.fields[c.fields.count - 2] == visible { return all }
                continue
            }
            // Any reference whose last part names a column keeps it, whatever the qualifier
            // (a join alias can name it too).
            if all.contains(last) { used.insert(last) }
            // u.something that is not a column: a function in attribute notation or a composite field.
            if c.fields.count >= 2, c.fields[c.fields.count - 2] == visible, !all.contains(last) { return all }
            if c.fields.count > 2, c.fields[0] == visible { return all }
        }
        if used.isEmpty, let first = route.columnNames.first { used.insert(first) }
        return used
    }

    /// System columns exist on tables, not on subqueries.
    static let systemColumns: Set<String> = ["tableoid", "ctid", "xmin", "xmax", "cmin", "cmax", "oid"]

    /// Shapes where a subquery would not answer exactly like the table did. The column
    /// references come from PostgreSQL's parse tree; ONLY and TABLESAMPLE from the scanner.
    static func unsafeReason(_ r: RelationReference, route: ReadRoute, columns: [ColumnReference], tokens: [SQLToken], text: [UInt8]) -> String? {
        func spelling(_ t: SQLToken) -> String {
            String(decoding: text[max(0, t.byteRange.lowerBound)..<min(text.count, t.byteRange.upperBound)], as: UTF8.self)
        }
        guard let refIndex = tokens.firstIndex(where: { $0.byteRange.lowerBound == r.byteRange.lowerBound }) else {
            return "cannot find the reference among the tokens"
        }
        // ONLY and TABLESAMPLE decorate a table, not a subquery. The two tokens before the
        // reference, comments passed over (`ONLY /* … */ users`).
        let before = Array(tokens[..<refIndex].reversed().lazy.filter { !$0.isComment }.prefix(2))
        if let previous = before.first, previous.isKeyword, spelling(previous).uppercased() == "ONLY" {
            return "ONLY"
        }
        // `ONLY (users)`: the parenthesized spelling.
        if before.count == 2, spelling(before[0]) == "(", before[1].isKeyword, spelling(before[1]).uppercased() == "ONLY" {
            return "ONLY"
        }
        if tokens.contains(where: { $0.isKeyword && spelling($0).uppercased() == "TABLESAMPLE" }) {
            return "TABLESAMPLE"
        }
        let visible = r.alias ?? r.name
        for c in columns {
            guard let last = c.fields.last else { continue }
            if Self.systemColumns.contains(last) { return "system column \(last)" }
            // public.users.name: the subquery answers to an alias only.
            if c.fields.count >= 3, c.fields[c.fields.count - 2] == r.name { return "column qualified with the schema" }
            // A bare table or alias name is the whole row, whose type would change.
            if c.fields == [visible], !route.columnNames.contains(visible) { return "whole-row reference to \(visible)" }
            // u.* as a value (not expanded as output columns) is a row of another type.
            if c.fields == [visible, "*"], !c.isTargetListStar { return "row value \(visible).*" }
            // GROUP BY the primary key lets other columns go ungrouped on a table only.
            if c.inGroupBy, route.keyColumns.contains(last), c.fields.count == 1 || c.fields[c.fields.count - 2] == visible {
                return "GROUP BY the primary key"
            }
        }
        return nil
    }
}
