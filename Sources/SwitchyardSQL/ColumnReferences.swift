// The column references of a statement (ColumnRef nodes), with where they stand, from the parse tree.
import Foundation

/// One column reference as written: `name`, `u.name`, `public.users.name`, `u.*`, `u`.
public struct ColumnReference: Sendable, Equatable {
    /// The dotted parts, folded as PostgreSQL folds them; `*` for a star.
    public var fields: [String]
    /// A star directly as an output column (`SELECT u.*`), which expands to columns
    /// rather than being one row value.
    public var isTargetListStar: Bool
    /// Inside a GROUP BY clause.
    public var inGroupBy: Bool

    public init(fields: [String], isTargetListStar: Bool, inGroupBy: Bool) {
        self.fields = fields
        self.isTargetListStar = isTargetListStar
        self.inGroupBy = inGroupBy
    }

    /// Every column reference in `statement`; empty when it does not parse.
    public static func all(in statement: StatementAnalysis) -> [ColumnReference] {
        guard statement.error == nil,
              let json = try? SQLAnalyzer.parseTreeJSON(statement.text),
              let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return [] }
        var out: [ColumnReference] = []
        walk(root, targetEntry: false, groupBy: false, into: &out)
        return out
    }

    private static func walk(_ node: Any, targetEntry: Bool, groupBy: Bool, into out: inout [ColumnReference]) {
        if let array = node as? [Any] {
            for item in array { walk(item, targetEntry: targetEntry, groupBy: groupBy, into: &out) }
            return
        }
        guard let dict = node as? [String: Any] else { return }
        if let ref = dict["ColumnRef"] as? [String: Any] {
            let fields = (ref["fields"] as? [Any] ?? []).map { field -> String in
                if let f = field as? [String: Any] {
                    if let s = f["String"] as? [String: Any] { return s["sval"] as? String ?? "" }
                    if f["A_Star"] != nil { return "*" }
                }
                return ""
            }
            out.append(ColumnReference(fields: fields, isTargetListStar: targetEntry && fields.last == "*", inGroupBy: groupBy))
            return
        }
        if let target = dict["ResTarget"] as? [String: Any] {
            // A ResTarget's own value is a target entry; anything nested deeper is an expression.
            if let value = target["val"] as? [String: Any], value["ColumnRef"] != nil {
                walk(value, targetEntry: true, groupBy: groupBy, into: &out)
            } else if let value = target["val"] {
                walk(value, targetEntry: false, groupBy: groupBy, into: &out)
            }
            if let indirection = target["indirection"] { walk(indirection, targetEntry: false, groupBy: groupBy, into: &out) }
            return
        }
        // In the keys' order, not the dictionary's, which differs from one parse to the next:
        // the first unsafe column found is the reason a statement stays on the old path.
        for (key, value) in dict.sorted(by: { $0.key < $1.key }) {
            walk(value, targetEntry: false, groupBy: groupBy || key == "groupClause", into: &out)
        }
    }
}
