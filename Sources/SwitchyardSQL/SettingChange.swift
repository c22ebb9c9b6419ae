// What a SET or RESET statement does to a session setting, read from PostgreSQL's parse tree.
import Foundation

/// A change to a run-time setting made by `SET`, `SET LOCAL`, `RESET` or `RESET ALL`.
/// The router reads custom settings such as `switchyard.cohort` from these.
public enum SettingChange: Sendable, Equatable {
    /// `SET name = value` / `SET name TO value`; `isLocal` for `SET LOCAL`, which lasts until the transaction ends.
    case set(name: String, value: String, isLocal: Bool)
    /// `RESET name` or `SET name TO DEFAULT`.
    case reset(name: String)
    /// `RESET ALL`.
    case resetAll

    /// The changes a statement makes, if it is a `VariableSetStmt`; empty otherwise.
    public static func changes(in statement: StatementAnalysis) -> [SettingChange] {
        guard statement.statementType == "VariableSetStmt",
              let json = try? SQLAnalyzer.parseTreeJSON(statement.text),
              let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let stmts = root["stmts"] as? [[String: Any]] else { return [] }
        var out: [SettingChange] = []
        for entry in stmts {
            guard let stmt = entry["stmt"] as? [String: Any], let set = stmt["VariableSetStmt"] as? [String: Any] else { continue }
            let kind = set["kind"] as? String ?? ""
            let name = (set["name"] as? String ?? "").lowercased()
            let isLocal = set["is_local"] as? Bool ?? false
            switch kind {
            case "VAR_SET_VALUE":
                let args = set["args"] as? [[String: Any]] ?? []
                let values = args.compactMap(constantText)
                guard values.count == args.count else { continue }
                out.append(.set(name: name, value: values.joined(separator: ", "), isLocal: isLocal))
            case "VAR_SET_DEFAULT", "VAR_RESET":
                out.append(.reset(name: name))
            case "VAR_RESET_ALL":
                out.append(.resetAll)
            default:
                continue
            }
        }
        return out
    }

    /// The text of a constant argument (`'tenant-42'`, `42`, `on`), as PostgreSQL would store it.
    private static func constantText(_ node: [String: Any]) -> String? {
        guard let constant = node["A_Const"] as? [String: Any] else { return nil }
        if let s = constant["sval"] as? [String: Any] { return s["sval"] as? String ?? "" }
        if let i = constant["ival"] as? [String: Any] { return String((i["ival"] as? Int) ?? 0) }
        if let f = constant["fval"] as? [String: Any] { return f["fval"] as? String }
        if let b = constant["boolval"] as? [String: Any] { return (b["boolval"] as? Bool ?? false) ? "on" : "off" }
        return nil
    }
}
