// Walks libpg_query's JSON parse tree of one statement: which relations it names, in what role, and what kind of statement it is.
import Foundation

/// A JSON object from `JSONSerialization`.
typealias JSONObject = [String: Any]

/// Collects relations from one statement's parse tree.
///
/// The walk is generic — every object and array is visited, so no position that can hold a
/// `RangeVar` is missed — with special handling only where a node changes the *role* of what is
/// below it (targets, `FROM`, joins, subqueries, set operations, `WITH` scopes) or holds names
/// that are not relation references (`FOR UPDATE OF alias`).
///
/// libpg_query's JSON omits default values (`0`, `false`, empty lists, unset enums), so every
/// field read here has a default. Node-typed fields are wrapped (`{"RangeVar": {…}}`), struct-typed
/// fields are not (`"relation": {"relname": …}`), and both are handled.
struct ParseTreeWalker {
    /// The statement's tokens, with byte offsets relative to the statement text.
    private let tokens: [SQLToken]
    /// The statement text's UTF-8 bytes, for matching names the tree gives without a location.
    private let text: [UInt8]
    /// Where the statement starts in the text the tree's locations refer to.
    private let baseOffset: Int

    private(set) var relations: [RelationReference] = []
    private(set) var cteDefinitions: [(name: String, location: Int)] = []
    /// Some INSERT/UPDATE/DELETE/MERGE appears anywhere (e.g. a data-modifying CTE).
    private(set) var containsDataModification = false
    private(set) var lockingRead = false

    init(tokens: [SQLToken], text: [UInt8], baseOffset: Int) {
        self.tokens = tokens
        self.text = text
        self.baseOffset = baseOffset
    }

    /// The role of the relations found below the current node.
    struct Scope {
        var access: RelationReference.Access
        var position: RelationReference.Position
        /// Inside a subquery, CTE body or set-operation arm: `FROM`/`JOIN` no longer refine the position.
        var nested = false
        /// CTE names visible here; an unqualified name among them is the CTE, not a table.
        var visibleCTEs: Set<String> = []
        /// False for statement targets, which PostgreSQL always resolves to tables.
        var cteResolvable = true

        func entering(_ position: RelationReference.Position) -> Scope {
            var scope = self
            scope.position = position
            scope.nested = true
            scope.cteResolvable = true
            return scope
        }

        func refined(_ position: RelationReference.Position) -> Scope {
            var scope = self
            if !nested { scope.position = position }
            scope.cteResolvable = true
            return scope
        }

        func target(_ access: RelationReference.Access) -> Scope {
            var scope = self
            scope.access = access
            scope.position = .target
            scope.cteResolvable = false
            return scope
        }

        func reading() -> Scope {
            var scope = self
            scope.access = .read
            scope.cteResolvable = true
            return scope
        }
    }

    // MARK: - Statements

    /// Walks the top-level statement node `type` with `fields`, in the default role for its kind.
    mutating func walkStatement(type: String, fields: JSONObject, kind: StatementKind) {
        let scope: Scope
        switch kind {
        case .read, .write, .transactionControl, .unknown:
            scope = Scope(access: .read, position: .from)
        case .ddl:
            scope = Scope(access: .ddl, position: .target, cteResolvable: false)
        case .utility:
            scope = Scope(access: .read, position: .target, cteResolvable: false)
        }
        visitNode(type, fields, scope)
    }

    // MARK: - Generic walk

    mutating func walk(_ value: Any?, _ scope: Scope) {
        if let array = value as? [Any] {
            for element in array { walk(element, scope) }
            return
        }
        guard let object = value as? JSONObject else { return }
        if object["relname"] is String {
            record(object, scope)
            return
        }
        // A wrapped node: one key, the node type, which (unlike field names) is capitalised.
        if object.count == 1, let (type, inner) = object.first, let fields = inner as? JSONObject,
           type.first?.isUppercase == true {
            visitNode(type, fields, scope)
            return
        }
        visitFields(object, scope)
    }

    /// Visits an object's fields, opening the scope of its `WITH` clause first if it has one
    /// (callers that opened it themselves skip it).
    private mutating func visitFields(_ fields: JSONObject, _ scope: Scope, skipping skipped: Set<String> = []) {
        var scope = scope
        if !skipped.contains("withClause"), let with = fields["withClause"] as? JSONObject {
            scope = visitWith(with, scope)
        }
        for (key, value) in fields where key != "withClause" && !skipped.contains(key) {
            walk(value, scope)
        }
    }

    private mutating func visitNode(_ type: String, _ fields: JSONObject, _ scope: Scope) {
        switch type {
        case "RangeVar":
            record(fields, scope)
        case "SelectStmt":
            visitSelect(fields, scope)
        case "InsertStmt":
            containsDataModification = true
            var scope = scope
            if let with = fields["withClause"] as? JSONObject { scope = visitWith(with, scope) }
            let conflict = fields["onConflictClause"] as? JSONObject
            let upserts = (conflict?["action"] as? String) == "ONCONFLICT_UPDATE"
            walk(fields["relation"], scope.target(upserts ? .readWrite : .write))
            visitFields(fields, scope.reading(), skipping: ["relation", "withClause"])
        case "UpdateStmt", "DeleteStmt", "MergeStmt":
            containsDataModification = true
            var scope = scope
            if let with = fields["withClause"] as? JSONObject { scope = visitWith(with, scope) }
            walk(fields["relation"], scope.target(.readWrite))
            let reading = scope.reading()
            walk(fields["fromClause"], reading.refined(.from))
            walk(fields["usingClause"], reading.refined(.using))
            walk(fields["sourceRelation"], reading.refined(.using))
            visitFields(fields, reading, skipping: ["relation", "withClause", "fromClause", "usingClause", "sourceRelation"])
        case "CopyStmt":
            let isFrom = (fields["is_from"] as? Bool) ?? false
            walk(fields["relation"], scope.target(isFrom ? .write : .read))
            visitFields(fields, scope.reading(), skipping: ["relation"])
        case "TruncateStmt", "RefreshMatViewStmt":
            walk(fields["relations"], scope.target(.write))
            walk(fields["relation"], scope.target(.write))
        case "LockStmt":
            // AccessShareLock (1) and RowShareLock (2) only conflict with exclusive locks.
            let mode = (fields["mode"] as? Int) ?? 0
            walk(fields["relations"], scope.target(mode <= 2 ? .read : .write))
        case "CreateTableAsStmt":
            walk(fields["into"], scope.target(.ddl))
            visitFields(fields, scope.reading().refined(.from), skipping: ["into"])
        case "ViewStmt":
            walk(fields["view"], scope.target(.ddl))
            visitFields(fields, scope.reading().refined(.from), skipping: ["view"])
        case "DropStmt":
            visitDrop(fields, scope)
        case "RangeSubselect":
            walk(fields["subquery"], scope.entering(.subquery))
        case "SubLink":
            walk(fields["subselect"], scope.entering(.subquery))
            walk(fields["testexpr"], scope)
        case "JoinExpr":
            // The leftmost relation keeps the enclosing position; what is joined to it is `.join`.
            walk(fields["larg"], scope)
            walk(fields["rarg"], scope.refined(.join))
            walk(fields["quals"], scope)
        case "CommonTableExpr":
            // Only reached outside a WITH clause, which PostgreSQL's grammar does not produce.
            walk(fields["ctequery"], scope.entering(.cteBody))
        case "LockingClause":
            // `FOR UPDATE OF x` names FROM items by alias, not relations.
            lockingRead = true
        default:
            visitFields(fields, scope)
        }
    }

    private mutating func visitSelect(_ fields: JSONObject, _ scope: Scope) {
        var scope = scope.reading()
        if let with = fields["withClause"] as? JSONObject { scope = visitWith(with, scope) }
        if let op = fields["op"] as? String, op != "SETOP_NONE" {
            // Set-operation arms are unwrapped SelectStmts.
            let arm = scope.entering(.setOperation)
            for key in ["larg", "rarg"] {
                if let armFields = fields[key] as? JSONObject { visitSelect(unwrapped(armFields, "SelectStmt"), arm) }
            }
        }
        for (key, value) in fields {
            switch key {
            case "withClause", "larg", "rarg":
                continue
            case "fromClause":
                walk(value, scope.refined(.from))
            case "intoClause":
                walk(value, scope.target(.write))
            case "lockingClause":
                lockingRead = true
            default:
                walk(value, scope)
            }
        }
    }

    /// Opens a WITH clause: walks the CTE bodies with the right names visible and returns the
    /// scope in which the statement's body sees all of them.
    private mutating func visitWith(_ with: JSONObject, _ scope: Scope) -> Scope {
        let recursive = (with["recursive"] as? Bool) ?? false
        let ctes = (with["ctes"] as? [Any] ?? []).compactMap { element -> JSONObject? in
            guard let object = element as? JSONObject else { return nil }
            return object["CommonTableExpr"] as? JSONObject ?? object
        }
        var visible = scope.visibleCTEs
        for cte in ctes {
            guard let name = cte["ctename"] as? String else { continue }
            cteDefinitions.append((name, (cte["location"] as? Int) ?? 0))
            // In WITH RECURSIVE every CTE of the list is visible in every body, including its own.
            if recursive { visible.insert(name) }
        }
        for cte in ctes {
            var body = scope.entering(.cteBody)
            body.visibleCTEs = visible
            walk(cte["ctequery"], body)
            // Otherwise a body sees only the CTEs before it: `WITH users AS (SELECT * FROM users)`
            // reads the table.
            if !recursive, let name = cte["ctename"] as? String { visible.insert(name) }
        }
        var result = scope
        result.visibleCTEs = visible
        return result
    }

    /// `DROP TABLE/VIEW/…` names its objects as lists of strings without locations; they are
    /// found among the scanner's tokens, in order.
    private mutating func visitDrop(_ fields: JSONObject, _ scope: Scope) {
        let relationTypes: Set<String> = [
            "OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE", "OBJECT_SEQUENCE", "OBJECT_INDEX",
        ]
        guard let removeType = fields["removeType"] as? String, relationTypes.contains(removeType) else { return }
        var searchFrom = 0
        for object in fields["objects"] as? [Any] ?? [] {
            let items = (unwrapped(object as? JSONObject ?? [:], "List")["items"] as? [Any]) ?? []
            let parts = items.compactMap { item in
                ((item as? JSONObject)?["String"] as? JSONObject)?["sval"] as? String
            }
            guard let name = parts.last, parts.count <= 3 else { continue }
            let found = findName(parts, fromToken: searchFrom)
            if let found { searchFrom = found.nextToken }
            relations.append(RelationReference(
                catalog: parts.count == 3 ? parts[0] : nil,
                schema: parts.count >= 2 ? parts[parts.count - 2] : nil,
                name: name, alias: nil,
                byteRange: found?.range ?? 0..<0,
                access: .ddl, position: .target
            ))
        }
    }

    // MARK: - Relations

    private mutating func record(_ rangeVar: JSONObject, _ scope: Scope) {
        guard let name = rangeVar["relname"] as? String else { return }
        let schema = rangeVar["schemaname"] as? String
        let catalog = rangeVar["catalogname"] as? String
        if scope.cteResolvable, schema == nil, catalog == nil, scope.visibleCTEs.contains(name) { return }
        let alias = (rangeVar["alias"] as? JSONObject)?["aliasname"] as? String
        let parts = [catalog, schema, name].compactMap { $0 }
        let location = (rangeVar["location"] as? Int) ?? 0
        let range = nameRange(at: location - baseOffset, parts: parts)
        relations.append(RelationReference(
            catalog: catalog, schema: schema, name: name, alias: alias,
            byteRange: range, access: scope.access, position: scope.position
        ))
    }

    /// The byte range of a (qualified) name that starts at `location`: its first token, then one
    /// `.`-separated name token per further part, skipping comments in between.
    private func nameRange(at location: Int, parts: [String]) -> Range<Int> {
        guard location >= 0, let first = tokenIndex(startingAt: location) else {
            return findName(parts, fromToken: 0)?.range ?? 0..<0
        }
        var end = tokens[first].byteRange.upperBound
        var current = first
        for _ in parts.dropFirst() {
            guard let dot = nextSignificantToken(after: current), tokens[dot].kind == .dot,
                  let part = nextSignificantToken(after: dot), isNameToken(tokens[part]) else { break }
            end = tokens[part].byteRange.upperBound
            current = part
        }
        return location..<end
    }

    /// Finds the first token sequence at or after `fromToken` spelling the qualified name `parts`.
    private func findName(_ parts: [String], fromToken: Int) -> (range: Range<Int>, nextToken: Int)? {
        guard !parts.isEmpty, fromToken < tokens.count else { return nil }
        candidates: for start in fromToken..<tokens.count {
            var current = start
            guard identifier(tokens[current]).map({ matches($0, parts[0]) }) == true else { continue }
            for part in parts.dropFirst() {
                guard let dot = nextSignificantToken(after: current), tokens[dot].kind == .dot,
                      let next = nextSignificantToken(after: dot),
                      identifier(tokens[next]).map({ matches($0, part) }) == true else { continue candidates }
                current = next
            }
            return (tokens[start].byteRange.lowerBound..<tokens[current].byteRange.upperBound, current + 1)
        }
        return nil
    }

    /// PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes.
    private func matches(_ written: String, _ folded: String) -> Bool {
        written == folded || (folded.utf8.count == 63 && written.utf8.starts(with: folded.utf8))
    }

    private func tokenIndex(startingAt location: Int) -> Int? {
        var low = 0
        var high = tokens.count
        while low < high {
            let middle = (low + high) / 2
            if tokens[middle].byteRange.lowerBound < location { low = middle + 1 } else { high = middle }
        }
        return low < tokens.count && tokens[low].byteRange.lowerBound == location ? low : nil
    }

    private func nextSignificantToken(after index: Int) -> Int? {
        var next = index + 1
        while next < tokens.count, tokens[next].isComment { next += 1 }
        return next < tokens.count ? next : nil
    }

    private func isNameToken(_ token: SQLToken) -> Bool {
        token.kind == .identifier || token.kind == .unicodeIdentifier || token.isKeyword
    }

    /// The identifier a name token denotes, folded as PostgreSQL does: quoted names lose their
    /// quotes (`""` is a quote), unquoted ones have ASCII letters lower-cased. Unicode-escaped
    /// identifiers are not decoded (nil), so they are never matched by spelling.
    private func identifier(_ token: SQLToken) -> String? {
        guard token.kind == .identifier || token.isKeyword,
              token.byteRange.upperBound <= text.count else { return nil }
        let bytes = text[token.byteRange]
        if bytes.first == UInt8(ascii: "\""), bytes.count >= 2 {
            let inner = String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
            return inner.replacingOccurrences(of: "\"\"", with: "\"")
        }
        return String(decoding: bytes.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    private func unwrapped(_ object: JSONObject, _ type: String) -> JSONObject {
        if object.count == 1, let inner = object[type] as? JSONObject { return inner }
        return object
    }
}

// MARK: - Classification

extension ParseTreeWalker {
    static let transactionStatements: Set<String> = ["TransactionStmt"]
    static let utilityStatements: Set<String> = [
        "VariableSetStmt", "DiscardStmt", "ListenStmt", "UnlistenStmt", "NotifyStmt", "PrepareStmt",
        "ExecuteStmt", "DeallocateStmt", "FetchStmt", "ClosePortalStmt", "VacuumStmt", "ClusterStmt",
        "ReindexStmt", "CheckPointStmt", "LoadStmt", "LockStmt", "ConstraintsSetStmt", "AlterSystemStmt",
    ]

    /// The statement kind of node `type`. `containsDataModification` comes from walking the whole
    /// statement, so a SELECT whose WITH deletes rows is a write.
    static func kind(of type: String, _ fields: JSONObject, containsDataModification: Bool) -> StatementKind {
        switch type {
        case "SelectStmt":
            return fields["intoClause"] != nil || containsDataModification ? .write : .read
        case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt", "RefreshMatViewStmt",
             "CallStmt", "DoStmt":
            return .write
        case "CopyStmt":
            return (fields["is_from"] as? Bool) ?? false || containsDataModification ? .write : .read
        case "VariableShowStmt":
            return .read
        case "ExplainStmt":
            // Only EXPLAIN ANALYZE executes the statement.
            guard explainAnalyzes(fields), let (innerType, inner) = node(fields["query"]) else { return .read }
            return kind(of: innerType, inner, containsDataModification: containsDataModification)
        case "DeclareCursorStmt":
            guard let (innerType, inner) = node(fields["query"]) else { return .read }
            return kind(of: innerType, inner, containsDataModification: containsDataModification)
        default:
            if transactionStatements.contains(type) { return .transactionControl }
            if utilityStatements.contains(type) { return .utility }
            return .ddl
        }
    }

    /// The (type, fields) of a wrapped node.
    static func node(_ value: Any?) -> (String, JSONObject)? {
        guard let object = value as? JSONObject, object.count == 1, let (type, inner) = object.first,
              let fields = inner as? JSONObject else { return nil }
        return (type, fields)
    }

    /// `EXPLAIN ANALYZE`, `EXPLAIN (ANALYZE)` and `EXPLAIN (ANALYZE on)` execute; `(ANALYZE false)` does not.
    private static func explainAnalyzes(_ fields: JSONObject) -> Bool {
        for option in fields["options"] as? [Any] ?? [] {
            guard let (type, element) = node(option), type == "DefElem",
                  (element["defname"] as? String) == "analyze" else { continue }
            return booleanOption(element["arg"])
        }
        return false
    }

    /// The value of a boolean option as PostgreSQL's defGetBoolean reads it; absent means true.
    private static func booleanOption(_ argument: Any?) -> Bool {
        guard let (type, fields) = node(argument) else { return true }
        switch type {
        case "String":
            let value = ((fields["sval"] as? String) ?? "").lowercased()
            return !["false", "off", "no", "0", "f", "n", "of"].contains(value)
        case "Integer":
            return ((fields["ival"] as? Int) ?? 0) != 0
        case "Boolean":
            return (fields["boolval"] as? Bool) ?? false
        case "A_Const":
            for (innerType, value) in fields {
                if let inner = value as? JSONObject, ["sval", "ival", "boolval"].contains(innerType) {
                    let wrapped = ["sval": "String", "ival": "Integer", "boolval": "Boolean"][innerType] ?? ""
                    return booleanOption([wrapped: inner])
                }
            }
            return true
        default:
            return true
        }
    }
}
