// Where a SELECT's integer constants could be parameters without changing its answer.

/// The integer constants of a SELECT that a parameter declared `int4` may replace: PostgreSQL
/// types an integer constant of up to nine digits `int4`, so the parameter resolves every operator,
/// function and cast as the constant did. Only places where nothing compares the expression with
/// another are taken: an operand of an operator in the top-level WHERE (through AND, OR, NOT,
/// IN lists and BETWEEN bounds, not into subqueries or function calls) and a bare LIMIT or OFFSET.
/// Elsewhere a parameter can change the statement: `ORDER BY 1` names a column, `GROUP BY a + 1`
/// must equal the select list's `a + 1`, and a type's `varchar(10)` takes no parameter.
public enum ParameterPlaces {
    /// The constants' byte offsets in `statement`, the statement's bytes (the tree's locations are
    /// relative to `treeOffset`), in no particular order.
    static func find(select fields: JSONObject, treeOffset: Int, statement: [UInt8]) -> [Int] {
        var places: [Int] = []
        // A set operation's arms have their own WHERE clauses, matched against nothing either, but
        // its top level has none: only a plain SELECT is looked at.
        guard fields["op"] == nil || (fields["op"] as? String) == "SETOP_NONE" else { return [] }
        collect(fields["whereClause"], into: &places)
        for key in ["limitCount", "limitOffset"] {
            if let place = integerConstant(fields[key]) { places.append(place) }
        }
        if (fields["limitOption"] as? String) == "LIMIT_OPTION_WITH_TIES" { places.removeAll() }
        // A negative constant is the minus sign's: only unsigned ones are digits where they begin.
        return places.map { $0 - treeOffset }.filter { place in
            place >= 0 && place < statement.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(statement[place])
        }
    }

    /// The location of `value` if it is an integer constant (`A_Const` holding an `ival`).
    private static func integerConstant(_ value: Any?) -> Int? {
        guard let (type, fields) = ParseTreeWalker.node(value), type == "A_Const", fields["ival"] is JSONObject else { return nil }
        return (fields["location"] as? Int) ?? 0
    }

    /// An operator's operand, or the items of an IN list or BETWEEN bounds (a list, bare or as a `List` node).
    private static func operands(_ value: Any?) -> [Any] {
        if let list = value as? [Any] { return list }
        if let (type, fields) = ParseTreeWalker.node(value), type == "List" { return fields["items"] as? [Any] ?? [] }
        return value.map { [$0] } ?? []
    }

    private static func collect(_ value: Any?, into places: inout [Int]) {
        if let list = value as? [Any] {
            for item in list { collect(item, into: &places) }
            return
        }
        guard let (type, fields) = ParseTreeWalker.node(value) else { return }
        switch type {
        case "BoolExpr":
            collect(fields["args"], into: &places)
        case "A_Expr":
            for side in ["lexpr", "rexpr"] {
                for operand in operands(fields[side]) {
                    if let place = integerConstant(operand) { places.append(place) } else { collect(operand, into: &places) }
                }
            }
        default:
            // Subqueries, function calls, casts and the rest keep their constants.
            break
        }
    }
}
