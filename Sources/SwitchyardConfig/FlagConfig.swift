// The flags and control sections' model: rollout stages, cohort sources, routing modes and the control schema.

/// Where a migration's rollout stands. Stages only move forward in normal operation, so they are ordered.
public enum FlagStage: String, Sendable, CaseIterable, Comparable {
    /// Only the old relation is used.
    case off
    /// Writes are mirrored to the new relation; reads still come from the old one.
    case dualWrite = "dual_write"
    /// Reads are also run against the new relation and compared; clients still get the old results.
    case shadow
    /// A share of cohorts (the flag's percent) reads from the new relation.
    case canary
    /// Everyone reads from the new relation; writes are still mirrored back to the old one.
    case live
    /// The migration is finished: the old relation is no longer kept in step.
    case complete

    public static func < (lhs: FlagStage, rhs: FlagStage) -> Bool { lhs.rank < rhs.rank }

    /// The stage's place in a rollout (routing compares stages for every statement).
    private var rank: Int {
        switch self {
        case .off: 0
        case .dualWrite: 1
        case .shadow: 2
        case .canary: 3
        case .live: 4
        case .complete: 5
        }
    }

    /// Parses a stage name as written in YAML (`off`, `dual_write`, ...), ignoring case and surrounding spaces.
    public static func parse(_ text: String, key: String = "stage") throws(ConfigError) -> FlagStage {
        let word = text.trimmingWhitespace().lowercased()
        if let stage = FlagStage(rawValue: word) ?? FlagStage(rawValue: word.replacingAll("-", with: "_")) {
            return stage
        }
        let names = allCases.map(\.rawValue)
        throw ConfigError(
            key: key,
            message: "expected one of \(names.joined(separator: ", ")), got \(quoted(text))"
                + Suggestions.hint(for: word, among: names))
    }
}

/// Where a session's cohort identity comes from; the first source that yields a value wins.
public enum CohortSource: Sendable, Equatable, CustomStringConvertible {
    /// `comment:KEY`: a `KEY=value` (or `KEY='value'`) pair in a leading SQL comment, sqlcommenter style.
    case comment(key: String)
    /// `setting:NAME`: a custom setting the client sets, such as SET switchyard.cohort = 'abc'.
    case setting(name: String)
    /// `application_name`, `user`, `database`, or `startup:NAME`: a startup-message parameter.
    case startupParameter(String)
    /// `client_addr`: the client's IP address.
    case clientAddress

    /// comment:cohort, then setting:switchyard.cohort, then application_name.
    public static let defaultKey: [CohortSource] = [
        .comment(key: "cohort"), .setting(name: "switchyard.cohort"), .startupParameter("application_name"),
    ]

    /// The startup parameters that may be written without the `startup:` prefix.
    static let bareStartupParameters = ["application_name", "user", "database"]

    static let expectation = "expected comment:KEY, setting:NAME (with a dot, such as switchyard.cohort), "
        + "application_name, user, database, startup:NAME or client_addr"

    /// The form `parse` accepts.
    public var description: String {
        switch self {
        case .comment(let key): "comment:\(key)"
        case .setting(let name): "setting:\(name)"
        case .startupParameter(let name): Self.bareStartupParameters.contains(name) ? name : "startup:\(name)"
        case .clientAddress: "client_addr"
        }
    }

    /// Parses one cohort source: `comment:KEY`, `setting:NAME`, `application_name`, `user`, `database`,
    /// `startup:NAME` or `client_addr`.
    public static func parse(_ text: String, key: String) throws(ConfigError) -> CohortSource {
        func fail(_ message: String) -> ConfigError { ConfigError(key: key, message: message) }
        let trimmed = text.trimmingWhitespace()
        guard let colon = trimmed.firstIndex(of: ":") else {
            switch trimmed.lowercased() {
            case "client_addr": return .clientAddress
            case let name where bareStartupParameters.contains(name): return .startupParameter(name)
            default:
                let words = bareStartupParameters + ["client_addr", "comment", "setting", "startup"]
                throw fail("\(expectation), got \(quoted(text))" + Suggestions.hint(for: trimmed, among: words))
            }
        }
        let kind = trimmed[..<colon].trimmingWhitespace().lowercased()
        let argument = trimmed[trimmed.index(after: colon)...].trimmingWhitespace()
        /// Checks the part after the colon: ASCII letters, digits and the given punctuation.
        func checkName(_ what: String, punctuation: String) throws(ConfigError) {
            guard !argument.isEmpty else { throw fail("\(kind): needs a \(what) after the colon, got \(quoted(text))") }
            guard argument.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || punctuation.contains($0)) }) else {
                let listed = punctuation.map { "\"\($0)\"" }.joined(separator: ", ")
                throw fail("the \(what) in \(quoted(text)) may contain only letters, digits and \(listed)")
            }
        }
        switch kind {
        case "comment":
            try checkName("comment key", punctuation: "_.-")
            return .comment(key: argument)
        case "setting":
            // PostgreSQL only lets clients SET unknown settings that have a prefix, and folds their names.
            try checkName("setting name", punctuation: "_.")
            let parts = argument.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else {
                throw fail("a custom setting's name has a prefix and a dot, such as switchyard.cohort; got \(quoted(argument))")
            }
            return .setting(name: argument.lowercased())
        case "startup":
            try checkName("startup parameter name", punctuation: "_.-")
            return .startupParameter(argument)
        default:
            throw fail("\(expectation), got \(quoted(text))"
                + Suggestions.hint(for: kind, among: ["comment", "setting", "startup"]).replacingAll("?", with: ":?"))
        }
    }
}

/// How statements are sent to the new relation once a session reads from it.
public enum RoutingMode: Sendable, Equatable, CustomStringConvertible {
    /// Rewrite statements to name the new relation and map its columns (the default).
    case rewrite
    /// pgroll-style versioned schemas: the old and new relations are views in two schemas, and a session is
    /// switched by setting its search_path to `new` instead of `old`.
    case searchPath(old: String, new: String)

    public var description: String {
        switch self {
        case .rewrite: "rewrite"
        case let .searchPath(old, new):
            "search_path(\(RelationName.quotedIdentifier(old)) -> \(RelationName.quotedIdentifier(new)))"
        }
    }
}

/// One entry of `flags:`: the rollout state of one migration.
public struct FlagConfig: Sendable, Equatable {
    /// The largest percent, in hundredths of a percent.
    public static let maximumPercentBasisPoints = 10_000

    /// name: unique among flags.
    public var name: String
    /// migration: the name of the migration this flag rolls out.
    public var migration: String
    /// stage: default off.
    public var stage: FlagStage
    /// percent: the canary share in hundredths of a percent, 0...10000 (12.5% is 1250). Default 0.
    public var percentBasisPoints: Int
    /// cohort_key: where a session's cohort identity comes from, first match wins.
    public var cohortKey: [CohortSource]
    /// salt: mixed into the cohort hash so flags pick independent cohorts. Default: the flag's name.
    public var salt: String
    /// routing: default rewrite.
    public var routing: RoutingMode
    /// shadow: which reads are also answered on the other path from stage shadow on. Default as documented
    /// in ``FlagShadowConfig``.
    public var shadow: FlagShadowConfig
    /// guardrails: thresholds that step the flag back on their own during canary and live.
    public var guardrails: GuardrailConfig

    public init(
        name: String, migration: String, stage: FlagStage = .off, percentBasisPoints: Int = 0,
        cohortKey: [CohortSource] = CohortSource.defaultKey, salt: String? = nil, routing: RoutingMode = .rewrite,
        shadow: FlagShadowConfig = FlagShadowConfig(), guardrails: GuardrailConfig = GuardrailConfig()
    ) {
        self.name = name
        self.migration = migration
        self.stage = stage
        self.percentBasisPoints = percentBasisPoints
        self.cohortKey = cohortKey
        self.salt = salt ?? name
        self.routing = routing
        self.shadow = shadow
        self.guardrails = guardrails
    }
}

/// The `control:` section: where Switchyard keeps flag state, history and divergences.
public struct ControlConfig: Sendable, Equatable {
    public static let defaultSchema = "switchyard"

    /// schema: the control schema. Default switchyard.
    public var schema: String
    /// database: a separate control database; nil means the upstream URI's database.
    public var database: UpstreamURI?

    public init(schema: String = ControlConfig.defaultSchema, database: UpstreamURI? = nil) {
        self.schema = schema
        self.database = database
    }
}
