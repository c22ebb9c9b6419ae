// SQL identifiers as PostgreSQL reads them: folding unquoted names, quoting when needed, schema-qualified names.

/// A schema-qualified relation such as `public.users`, with each part as PostgreSQL stores it:
/// unquoted parts folded to lower case, quoted parts exactly as written.
public struct RelationName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String
    public var name: String

    /// The schema of an unqualified name. Switchyard does not follow the session's search_path here:
    /// the configuration must mean the same relation for every session.
    public static let defaultSchema = "public"

    /// PostgreSQL's limit for names (NAMEDATALEN - 1); longer names are silently truncated by the server.
    public static let maximumIdentifierBytes = 63

    public init(schema: String = RelationName.defaultSchema, name: String) {
        self.schema = schema
        self.name = name
    }

    /// `schema.name`, each part quoted only when it has to be, so it can be pasted into SQL and parsed back.
    public var description: String {
        "\(Self.quotedIdentifier(schema)).\(Self.quotedIdentifier(name))"
    }

    /// Parses `users`, `public.users`, `"My Schema"."Users"` (the schema defaults to public).
    public static func parse(_ text: String, key: String) throws(ConfigError) -> RelationName {
        let parts = try identifierParts(text, key: key, what: "relation")
        switch parts.count {
        case 1: return RelationName(name: parts[0])
        case 2: return RelationName(schema: parts[0], name: parts[1])
        default:
            throw ConfigError(
                key: key,
                message: "expected a relation name such as users or public.users, got \(quoted(text)); "
                    + "a name has at most two parts, schema.relation (the database is the upstream's)")
        }
    }

    /// Parses one identifier (a column or schema name): `created_at`, `Created` (read as created), `"Created"`.
    public static func parseIdentifier(_ text: String, key: String, what: String = "column") throws(ConfigError) -> String {
        let parts = try identifierParts(text, key: key, what: what)
        guard parts.count == 1 else {
            throw ConfigError(
                key: key,
                message: "expected a single \(what) name, got \(quoted(text)); "
                    + "quote a name that contains a dot, as in '\"a.b\"'")
        }
        return parts[0]
    }

    /// The identifier as SQL text: bare when PostgreSQL would read it back unchanged (lower-case letters,
    /// digits and underscores, not starting with a digit, not a keyword), else in double quotes with `"` doubled.
    public static func quotedIdentifier(_ identifier: String) -> String {
        if isBare(identifier) { return identifier }
        return "\"" + identifier.replacingAll("\"", with: "\"\"") + "\""
    }

    /// Whether `identifier` may be written without quotes and still mean itself.
    static func isBare(_ identifier: String) -> Bool {
        guard let first = identifier.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else {
            return false
        }
        return identifier.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
            && !keywords.contains(identifier)
    }

    // MARK: - Parsing

    /// Splits a possibly qualified name into its parts, folding unquoted parts and unescaping quoted ones.
    static func identifierParts(_ text: String, key: String, what: String) throws(ConfigError) -> [String] {
        func fail(_ why: String) -> ConfigError {
            ConfigError(key: key, message: "invalid \(what) name \(quoted(text)): \(why)")
        }
        let scalars = Array(text.unicodeScalars)
        var index = 0
        var parts: [String] = []
        func skipSpaces() {
            while index < scalars.count, scalars[index].properties.isWhitespace { index += 1 }
        }
        while true {
            skipSpaces()
            guard index < scalars.count else {
                throw fail(parts.isEmpty ? "the name is empty" : "nothing follows the last \".\"")
            }
            var part = String.UnicodeScalarView()
            if scalars[index] == "\"" {
                index += 1
                var closed = false
                while index < scalars.count {
                    let scalar = scalars[index]
                    index += 1
                    if scalar == "\"" {
                        if index < scalars.count, scalars[index] == "\"" {
                            part.append("\"")
                            index += 1
                        } else {
                            closed = true
                            break
                        }
                    } else {
                        part.append(scalar)
                    }
                }
                guard closed else { throw fail("the quoted part has no closing \"") }
                guard !part.isEmpty else { throw fail("a quoted name may not be empty (\"\")") }
            } else {
                let first = scalars[index]
                guard isIdentifierStart(first) else {
                    throw fail("an unquoted name starts with a letter or underscore, not \(quoted(String(first))); "
                        + "write other names in double quotes")
                }
                while index < scalars.count, isIdentifierPart(scalars[index]) {
                    // PostgreSQL folds ASCII letters only.
                    let scalar = scalars[index]
                    part.append(("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar)
                    index += 1
                }
            }
            let name = String(part)
            guard !name.unicodeScalars.contains("\0") else { throw fail("a name may not contain a NUL character") }
            guard name.utf8.count <= maximumIdentifierBytes else {
                throw fail("\(quoted(name)) is longer than \(maximumIdentifierBytes) bytes, "
                    + "PostgreSQL's limit for names (it would be truncated)")
            }
            parts.append(name)
            skipSpaces()
            guard index < scalars.count else { return parts }
            guard scalars[index] == "." else {
                throw fail("unexpected \(quoted(String(scalars[index]))) after \(quoted(name)); "
                    + "write names with spaces or punctuation in double quotes")
            }
            index += 1
        }
    }

    private static func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
        // Like PostgreSQL's scanner: ASCII letters, underscore, and any non-ASCII character.
        scalar == "_" || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
            || (!scalar.isASCII && !scalar.properties.isWhitespace)
    }

    private static func isIdentifierPart(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierStart(scalar) || ("0"..."9").contains(scalar) || scalar == "$"
    }

    /// PostgreSQL's keywords other than the unreserved ones: the reserved, the type and function names,
    /// and the column names (which cannot always stand bare). Quoting more than necessary is harmless;
    /// quoting less is a syntax error. A routing test checks the list against the parser's own.
    static let keywords: Set<String> = [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast",
        "check", "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role",
        "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
        "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in",
        "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select",
        "session_user", "some", "symmetric", "system_user", "table", "then", "to", "trailing", "true", "union",
        "unique", "user", "using", "variadic", "when", "where", "window", "with",
        // Type and function names.
        "authorization", "binary", "collation", "concurrently", "cross", "current_schema", "freeze", "full",
        "ilike", "inner", "is", "isnull", "join", "left", "like", "natural", "notnull", "outer", "overlaps",
        "right", "similar", "tablesample", "verbose",
        // Column-name keywords.
        "between", "bigint", "bit", "boolean", "char", "character", "coalesce", "dec", "decimal", "exists",
        "extract", "float", "greatest", "grouping", "inout", "int", "integer", "interval", "least", "national",
        "nchar", "none", "normalize", "nullif", "numeric", "out", "overlay", "position", "precision", "real",
        "row", "setof", "smallint", "substring", "time", "timestamp", "treat", "trim", "values", "varchar",
        "xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi",
        "xmlroot", "xmlserialize", "xmltable",
    ]
}

extension String {
    /// Every occurrence of `target` replaced, without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
