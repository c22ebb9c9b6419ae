// What a SET or RESET statement does to a session setting, read from PostgreSQL's parse tree.
import Foundation

/// A change to a run-time setting made by `SET`, `SET LOCAL`, `RESET` or `RESET ALL`.
/// The router reads custom settings such as `switchyard.cohort` from these.
public enum SettingChange: Sendable, Equatable {
    /// `SET name = value` / `SET name TO value`; `isLocal` for `SET LOCAL`, which lasts until the
    /// transaction ends. An empty value stands for the setting's default (`SET LOCAL name TO
    /// DEFAULT`): a cohort key source with an empty value counts as absent.
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
                let text = Array(statement.text.utf8)
                let values = args.compactMap { constantText($0, text: text) }
                guard values.count == args.count else { continue }
                out.append(.set(name: name, value: values.joined(separator: ", "), isLocal: isLocal))
            case "VAR_SET_DEFAULT" where isLocal:
                // SET LOCAL name TO DEFAULT: the default until the transaction ends.
                out.append(.set(name: name, value: "", isLocal: true))
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

    /// The value of an integer constant (`A_Const` with `ival`). libpg_query leaves out a 0 and, in
    /// the version PostgreSQL 15's packages carry, a negative value too (`"ival":{}`): those are
    /// read from the statement's text at the constant's location.
    static func integer(_ constant: [String: Any], text: [UInt8]) -> Int? {
        guard let ival = constant["ival"] as? [String: Any] else { return nil }
        if let value = ival["ival"] as? Int { return value }
        guard let at = constant["location"] as? Int, at > 0, at < text.count else { return nil }
        var i = at
        let negative = text[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        while i < text.count, text[i] == UInt8(ascii: " ") { i += 1 }
        var value = 0
        let start = i
        while i < text.count, text[i] >= 48, text[i] <= 57, i - start < 10 {
            value = value * 10 + Int(text[i] - 48)
            i += 1
        }
        guard i > start, i == text.count || !(text[i] >= 48 && text[i] <= 57) else { return nil }
        return negative ? -value : value
    }

    /// The text of a constant argument (`'tenant-42'`, `42`, `on`), as PostgreSQL would store it.
    private static func constantText(_ node: [String: Any], text: [UInt8]) -> String? {
        guard let constant = node["A_Const"] as? [String: Any] else { return nil }
        if let s = constant["sval"] as? [String: Any] { return s["sval"] as? String ?? "" }
        if constant["ival"] != nil { return integer(constant, text: text).map { String($0) } }
        if let f = constant["fval"] as? [String: Any] { return f["fval"] as? String }
        if let b = boolean(constant) { return b ? "on" : "off" }
        return nil
    }

    /// The value of a boolean constant (`A_Const` with `boolval`); libpg_query leaves out a false.
    static func boolean(_ constant: [String: Any]) -> Bool? {
        guard let b = constant["boolval"] as? [String: Any] else { return nil }
        return b["boolval"] as? Bool ?? false
    }
}

/// A call of `set_config(name, value, is_local)`, which sets a run-time setting like SET does and
/// is the only way to set one from a bound parameter (SET takes no parameters). Each argument
/// is a constant of the text or a parameter bound at execution.
public struct ConfigCall: Sendable, Equatable {
    public enum Argument: Sendable, Equatable {
        case constant(String)
        /// A NULL constant.
        case null
        /// `$n`, 1-based.
        case parameter(Int)
    }

    public var name: Argument
    public var value: Argument
    public var isLocal: Argument

    public init(name: Argument, value: Argument, isLocal: Argument) {
        self.name = name
        self.value = value
        self.isLocal = isLocal
    }

    /// The `set_config` calls of a statement whose three arguments are constants or parameters
    /// (optionally cast, `$1::text`); a call with any other argument (a column, an expression)
    /// sets a value the text does not show, and is left out. Empty for a text with no call.
    public static func calls(in statement: StatementAnalysis) -> [ConfigCall] {
        guard statement.error == nil, mayCall(statement.text),
              let json = try? SQLAnalyzer.parseTreeJSON(statement.text),
              let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return [] }
        var out: [ConfigCall] = []
        collect(root, text: Array(statement.text.utf8), into: &out)
        return out
    }

    /// Whether `text` may call set_config at all (ASCII case-insensitively): most texts do not,
    /// and they cost no parse.
    public static func mayCall(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { FoldedSearch.contains($0, "set_config") }
    }

    private static func collect(_ node: Any, text: [UInt8], into out: inout [ConfigCall]) {
        if let object = node as? [String: Any] {
            if let call = object["FuncCall"] as? [String: Any], let found = configCall(call, text: text) { out.append(found) }
            for value in object.values { collect(value, text: text, into: &out) }
        } else if let array = node as? [Any] {
            for value in array { collect(value, text: text, into: &out) }
        }
    }

    private static func configCall(_ call: [String: Any], text: [UInt8]) -> ConfigCall? {
        let names = (call["funcname"] as? [[String: Any]] ?? []).compactMap { ($0["String"] as? [String: Any])?["sval"] as? String }
        guard names.last == "set_config", names.count == 1 || (names.count == 2 && names[0] == "pg_catalog") else { return nil }
        let args = call["args"] as? [[String: Any]] ?? []
        guard args.count == 3, call["agg_star"] == nil, call["func_variadic"] == nil, call["agg_order"] == nil,
              call["over"] == nil, call["agg_filter"] == nil else { return nil }
        let arguments = zip(args, [false, false, true]).compactMap { argument($0, boolean: $1, text: text) }
        guard arguments.count == 3 else { return nil }
        return ConfigCall(name: arguments[0], value: arguments[1], isLocal: arguments[2])
    }

    /// Built-in types no set_config parameter takes: an argument cast to one makes PostgreSQL
    /// reject the call (there is no set_config(unknown, integer, boolean)), so it changes nothing.
    static let typesNotText: Set<String> = ["int2", "int4", "int8", "float4", "float8", "numeric", "bool", "date", "time",
                                            "timestamp", "timestamptz", "interval", "json", "jsonb", "uuid", "bytea", "oid"]

    /// Argument `node` of a text parameter of set_config (the name, the value) or, with `boolean`,
    /// of its boolean one. A cast to a type the parameter does not take is not known; a cast to a
    /// text type (a length limit or a domain included) is followed. A number or a boolean is a
    /// text only cast to one, and is known when PostgreSQL would print it as written (`42::text`).
    private static func argument(_ node: [String: Any], boolean: Bool, text: [UInt8]) -> Argument? {
        if let cast = node["TypeCast"] as? [String: Any], let inner = cast["arg"] as? [String: Any] {
            let typeName = cast["typeName"] as? [String: Any] ?? [:]
            let names = (typeName["names"] as? [[String: Any]] ?? []).compactMap { ($0["String"] as? [String: Any])?["sval"] as? String }
            guard typeName["arrayBounds"] == nil, let type = names.last else { return nil }
            let builtIn = names.count == 1 || names.first == "pg_catalog"
            if boolean { return builtIn && type == "bool" ? argument(inner, boolean: true, text: text) : nil }
            if builtIn && typesNotText.contains(type) { return nil }
            if let constant = inner["A_Const"] as? [String: Any], constant["sval"] == nil, constant["isnull"] == nil {
                // Only as text or varchar with no length: another type prints a boolean as t, or
                // pads or cuts.
                guard builtIn, type == "text" || type == "varchar", typeName["typmods"] == nil else { return nil }
                if constant["ival"] != nil { return SettingChange.integer(constant, text: text).map { Argument.constant(String($0)) } }
                if let f = constant["fval"] as? [String: Any], let digits = f["fval"] as? String, Self.printsAsWritten(digits) { return .constant(digits) }
                if let b = SettingChange.boolean(constant) { return .constant(b ? "true" : "false") }
                return nil
            }
            return argument(inner, boolean: false, text: text)
        }
        if let param = node["ParamRef"] as? [String: Any], let number = param["number"] as? Int, number >= 1 { return .parameter(number) }
        guard let constant = node["A_Const"] as? [String: Any] else { return nil }
        if constant["isnull"] as? Bool == true { return .null }
        if let s = constant["sval"] as? [String: Any] { return .constant(s["sval"] as? String ?? "") }
        if boolean, let b = SettingChange.boolean(constant) { return .constant(b ? "true" : "false") }
        return nil
    }

    /// Whether a numeric constant's text is what PostgreSQL prints for it: digits with an optional
    /// sign and fraction (not `1e3`, `.5` or `5.`, which print as 1000, 0.5 and 5).
    static func printsAsWritten(_ text: String) -> Bool {
        let body = text.utf8.first == UInt8(ascii: "-") ? Substring(text.dropFirst()) : Substring(text)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }) else { return false }
        return true
    }

    /// The change the call makes with `parameters` (text values by number, nil for NULL); nil
    /// when an argument is a parameter not given, the name is NULL or empty, or `is_local`
    /// is not a boolean PostgreSQL accepts (the call then fails, and changes nothing).
    /// As in PostgreSQL, a NULL value resets the setting (for the transaction only when local) and
    /// a NULL `is_local` means false.
    public func change(parameters: [Int: String?] = [:]) -> SettingChange? {
        func resolve(_ a: Argument) -> String?? {
            switch a {
            case let .constant(text): return .some(text)
            case .null: return .some(nil)
            case let .parameter(n): return parameters[n]
            }
        }
        guard case let .some(name?) = resolve(name), !name.isEmpty,
              case let .some(value) = resolve(value), case let .some(local) = resolve(isLocal) else { return nil }
        var isLocal = false
        if let local {
            guard let parsed = Self.boolean(local) else { return nil }
            isLocal = parsed
        }
        guard let value else { return isLocal ? .set(name: name.lowercased(), value: "", isLocal: true) : .reset(name: name.lowercased()) }
        return .set(name: name.lowercased(), value: value, isLocal: isLocal)
    }

    /// PostgreSQL's boolean input: a prefix of true, false, yes, no (at least one letter, "o" needs two),
    /// on, off, 1, 0; case-insensitive, surrounding whitespace ignored.
    static func boolean(_ text: String) -> Bool? {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard !t.isEmpty else { return nil }
        if t == "1" { return true }
        if t == "0" { return false }
        if t == "on" { return true }
        if t == "of" || t == "off" { return false }
        if "true".hasPrefix(t) { return true }
        if "false".hasPrefix(t) { return false }
        if "yes".hasPrefix(t) { return true }
        if "no".hasPrefix(t) { return false }
        return nil
    }

    /// Whether every argument is a constant of the text.
    public var isConstant: Bool {
        [name, value, isLocal].allSatisfy { if case .parameter = $0 { false } else { true } }
    }
}

extension ConfigCall {
    /// The changes `calls` make with a Bind's parameter values and format codes (0 text,
    /// 1 binary; none: all text, one: the same for all), given the Parse's declared parameter
    /// types (0 or missing: left to the server, which makes set_config's arguments text and
    /// boolean). A binary value is read as the binary form of the argument's type: the UTF-8
    /// bytes of a text, one byte for a boolean; a binary value of another declared type is not
    /// read, and its call is left out.
    public static func changes(_ calls: [ConfigCall], parameters: [[UInt8]?], formats: [Int16], types: [Int32] = []) -> [SettingChange] {
        func isBinary(_ index: Int) -> Bool {
            formats.count == 1 ? formats[0] == 1 : (index < formats.count && formats[index] == 1)
        }
        func type(_ index: Int) -> Int32 { index < types.count ? types[index] : 0 }
        // text, varchar, bpchar, name; bool.
        let textTypes: Set<Int32> = [0, 25, 1043, 1042, 19], booleanTypes: Set<Int32> = [0, 16]
        var values: [Int: String?] = [:]
        for (i, value) in parameters.enumerated() {
            guard let value else {
                values[i + 1] = .some(nil)
                continue
            }
            guard !isBinary(i) || textTypes.contains(type(i)) else { continue }
            values[i + 1] = String(decoding: value, as: UTF8.self)
        }
        return calls.compactMap { call in
            var resolved = values
            // A boolean sent in binary is one byte; as text it is PostgreSQL's boolean input.
            if case let .parameter(n) = call.isLocal, n >= 1, isBinary(n - 1), n - 1 < parameters.count, let bytes = parameters[n - 1] {
                resolved[n] = booleanTypes.contains(type(n - 1)) && bytes.count == 1 ? (bytes[0] == 0 ? "false" : "true") : "not a boolean"
            }
            return call.change(parameters: resolved)
        }
    }
}
