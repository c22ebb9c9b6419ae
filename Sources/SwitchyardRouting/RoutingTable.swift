// The flags in force and what they mean for one statement: which path serves its reads.
import SwitchyardConfig
import SwitchyardSQL

/// Which schema path serves a read.
public enum ReadPath: String, Sendable, Equatable {
    case old, new
}

/// One flag as the router needs it: its stage, its canary share, how to find a
/// statement's cohort, and the route to the new relation.
public struct FlagState: Sendable, Equatable {
    public var name: String
    public var migration: String
    public var stage: FlagStage
    public var percentBasisPoints: Int
    public var cohortKey: [CohortSource]
    public var salt: String
    public var route: ReadRoute
    /// Rewrite statements (the default), or switch the session's search_path between
    /// two versioned schemas (pgroll style).
    public var routing: RoutingMode
    /// How writes to the old relation are mirrored into the new one (from `dual_write` until
    /// `complete`), and writes to the new relation back into the old one (at `live`).
    public var mirror: MirrorTarget?
    public var reverseMirror: MirrorTarget?

    public init(
        name: String, migration: String, stage: FlagStage, percentBasisPoints: Int, cohortKey: [CohortSource], salt: String,
        route: ReadRoute, routing: RoutingMode = .rewrite, mirror: MirrorTarget? = nil, reverseMirror: MirrorTarget? = nil
    ) {
        self.name = name
        self.migration = migration
        self.stage = stage
        self.percentBasisPoints = percentBasisPoints
        self.cohortKey = cohortKey
        self.salt = salt
        self.route = route
        self.routing = routing
        self.mirror = mirror
        self.reverseMirror = reverseMirror
    }

    /// The mirrors in force at this stage: forward from `dual_write` until `complete`, and
    /// reverse at `live`, so that going back from `live` loses no write made on the new relation.
    public var activeMirrors: [MirrorTarget] {
        var out: [MirrorTarget] = []
        if mirrorsWrites, let mirror { out.append(mirror) }
        if stage == .live, let reverseMirror { out.append(reverseMirror) }
        return out
    }

    /// Reads are routed by rewriting statements (not by search_path).
    public var rewrites: Bool {
        if case .rewrite = routing { return true }
        return false
    }

    /// Writes to the old relation are mirrored from `dual_write` until the migration is complete.
    public var mirrorsWrites: Bool { mirror != nil && stage >= .dualWrite && stage < .complete }

    /// Builds the flag's state from the configuration: the route reads the new relation
    /// through each column's inverse mapping, in the order the columns are listed.
    /// The catalog, when read, makes each value come back as exactly the old column's type
    /// (numeric scale, timestamp precision...), and says whether reads may name the new
    /// relation directly (``ReadForm``); without it reads go through the projection.
    public init(flag: FlagConfig, migration: MigrationConfig, catalog: RouteCatalog? = nil) {
        let route = ReadRoute(
            oldSchema: migration.old.schema, oldName: migration.old.name, newRelation: migration.new.description,
            columns: migration.columns.map { (column: $0.oldColumn, inverse: $0.inverse) }, types: catalog?.oldColumnTypes ?? [],
            keyColumns: migration.key, directColumns: catalog?.form.directColumns)
        self.init(name: flag.name, migration: migration.name, stage: flag.stage, percentBasisPoints: flag.percentBasisPoints,
                  cohortKey: flag.cohortKey, salt: flag.salt, route: route, routing: flag.routing,
                  mirror: MirrorTarget(migration: migration), reverseMirror: MirrorTarget(reverseOf: migration))
    }
}

/// What deciding a statement's path takes from one flag: a few fields of a large value, kept
/// apart in the table so the router reads them for every statement without copying the flag.
/// A class: the router reads a rule out of the table for every statement, and a copy is then one
/// reference rather than five.
public final class CohortRule: Sendable, Equatable {
    public let name: String
    public let stage: FlagStage
    public let percentBasisPoints: Int
    public let cohortKey: [CohortSource]
    public let salt: String
    /// ``CohortBucketing/saltState(_:)`` of the salt.
    let saltState: UInt64
    /// Reads are routed by rewriting statements (not by search_path).
    public let rewrites: Bool
    /// The old relation, as ``ReadRoute`` holds it.
    let oldSchema: String
    let oldName: String

    public init(_ flag: FlagState) {
        name = flag.name
        stage = flag.stage
        percentBasisPoints = flag.percentBasisPoints
        cohortKey = flag.cohortKey
        salt = flag.salt
        saltState = CohortBucketing.saltState(flag.salt)
        rewrites = flag.rewrites
        oldSchema = flag.route.oldSchema
        oldName = flag.route.oldName
    }

    /// Where the flag puts a statement in `context`: its cohort key and bucket (only at canary,
    /// where they decide) and the path that serves its reads. Before `canary` everyone reads the
    /// old path; at `live` and `complete` everyone reads the new one.
    public func assignment(context: borrowing CohortContext) -> CohortAssignment {
        assignment(key: context.cohortKey(cohortKey))
    }

    /// ``assignment(context:)`` with the statement's cohort key under this rule's order, worked
    /// out only at canary, where it decides.
    func assignment(key cohortKeyValue: @autoclosure () -> String?) -> CohortAssignment {
        switch stage {
        case .off, .dualWrite, .shadow:
            return CohortAssignment(flag: name, key: nil, bucket: nil, path: .old)
        case .canary:
            guard let key = cohortKeyValue() else {
                return CohortAssignment(flag: name, key: nil, bucket: nil, path: .old)
            }
            let bucket = CohortBucketing.bucket(saltState: saltState, key: key)
            let inCanary = CohortBucketing.isInCanary(bucket: bucket, percentBasisPoints: percentBasisPoints)
            return CohortAssignment(flag: name, key: key, bucket: bucket, path: inCanary ? .new : .old)
        case .live, .complete:
            return CohortAssignment(flag: name, key: nil, bucket: nil, path: .new)
        }
    }

    /// Whether reference `r` names the flag's old relation, for a session whose unqualified
    /// names resolve to `schema` (as ``ReadRoute/matches(_:unqualifiedSchema:)``).
    func reads(_ r: RelationReference, unqualifiedSchema schema: String?) -> Bool {
        r.names(schema: oldSchema, name: oldName, unqualifiedSchema: schema)
    }

    public static func == (a: CohortRule, b: CohortRule) -> Bool {
        a === b || (a.name == b.name && a.stage == b.stage && a.percentBasisPoints == b.percentBasisPoints && a.cohortKey == b.cohortKey
            && a.salt == b.salt && a.rewrites == b.rewrites && a.oldSchema == b.oldSchema && a.oldName == b.oldName)
    }
}

/// The cohort a flag put one statement in, and the path serving it.
public struct CohortAssignment: Sendable, Equatable {
    public var flag: String
    public var key: String?
    public var bucket: Int?
    public var path: ReadPath
}

/// Where a statement's cohort key can come from.
public struct CohortContext: Sendable, Equatable {
    /// sqlcommenter tags of the statement (`/*cohort='tenant-42'*/`).
    public var commentTags: CommentTags
    /// Custom settings the session has SET (`switchyard.cohort`), by lower-cased name.
    public var settings: [String: String]
    /// The startup message's parameters (user, database, application_name...).
    public let startupParameters: [String: String]
    /// The settings the session starts with, by lower-cased name, worked out once: the startup
    /// message's (``startupSettings(_:)``) over those its role and database give it. A cohort key
    /// from a setting the session has not SET, or the schema of a routed read, looks here per statement.
    public let startupSettings: [String: String]
    public var clientAddress: String
    /// The schema `$user` in the session's search_path finds, when routing needs to know: the one
    /// named after the role it logs in as, if that holds a relation with an old relation's name.
    /// nil: `$user` is passed over, as PostgreSQL passes over a schema that does not exist.
    public let userSchema: String?

    /// `roleSettings`: what the session's role and database set for it (`ALTER ROLE … SET`,
    /// `ALTER DATABASE … SET`, see ``RoleSettings``), by lower-cased name.
    public init(commentTags: CommentTags = [:], settings: [String: String] = [:], startupParameters: [String: String] = [:],
                clientAddress: String = "", roleSettings: [String: String] = [:], userSchema: String? = nil) {
        self.userSchema = userSchema
        self.commentTags = commentTags
        self.settings = settings
        self.startupParameters = startupParameters
        let given = Self.startupSettings(startupParameters)
        // PostgreSQL applies the role's and database's settings first, the startup message's over them.
        startupSettings = roleSettings.isEmpty ? given : roleSettings.merging(given) { _, startup in startup }
        self.clientAddress = clientAddress
    }

    /// The first source in `order` that has a non-empty value.
    public func cohortKey(_ order: [CohortSource]) -> String? {
        Self.cohortKey(order, commentTags: commentTags, setting: { settings[$0] }, startupSetting: { startupSettings[$0] },
                       startupParameters: startupParameters, clientAddress: clientAddress)
    }

    /// ``cohortKey(_:)`` from the inputs themselves, a setting looked up by lower-cased name: a
    /// router answers from its own settings without assembling a context per statement.
    static func cohortKey(
        _ order: [CohortSource], commentTags: CommentTags, setting: (String) -> String?,
        startupSetting: (String) -> String?, startupParameters: [String: String], clientAddress: String
    ) -> String? {
        for source in order {
            let value: String?
            switch source {
            case let .comment(key): value = commentTags[key]
            case let .setting(name):
                // A setting not SET (or reset) has the value the startup message gave it, as in PostgreSQL.
                let set = setting(name.lowercased())
                value = set?.isEmpty == false ? set : startupSetting(name.lowercased())
            case let .startupParameter(name): value = startupParameters[name]
            case .clientAddress:
                // The host, not the ephemeral port, identifies a client.
                value = clientAddress.split(separator: ":").dropLast().joined(separator: ":")
            }
            if let value, !value.isEmpty { return value }
        }
        return nil
    }

    /// The session's search_path: SET, or given at startup.
    var searchPath: String? {
        settings["search_path"] ?? startupSettings["search_path"]
    }

    /// The settings the startup message gives, by lower-cased name: its parameters, and in
    /// `options` each `-c name=value`, `-cname=value` or `--name=value` (with `-` read as `_` in
    /// the name there, and `\ ` an escaped space), the last one winning. PostgreSQL applies
    /// `options` first and the other parameters after, so a parameter wins over `options`.
    static func startupSettings(_ startupParameters: [String: String]) -> [String: String] {
        var found: [String: String] = [:]
        if let options = startupParameters["options"], options.contains("=") {
            // Split on unescaped whitespace.
            var words: [String] = []
            var word = ""
            var escaped = false
            for c in options {
                if escaped {
                    word.append(c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == " " || c == "\t" || c == "\n" {
                    if !word.isEmpty { words.append(word) }
                    word = ""
                } else {
                    word.append(c)
                }
            }
            if !word.isEmpty { words.append(word) }
            var i = 0
            while i < words.count {
                var assignment: Substring?
                var dashes = false
                if words[i] == "-c", i + 1 < words.count {
                    assignment = words[i + 1][...]
                    i += 1
                } else if words[i].hasPrefix("--") {
                    assignment = words[i].dropFirst(2)
                    dashes = true
                } else if words[i].hasPrefix("-c") {
                    assignment = words[i].dropFirst(2)
                }
                i += 1
                guard let assignment, let eq = assignment.firstIndex(of: "=") else { continue }
                var key = assignment[..<eq].lowercased()
                if dashes { key = key.replacingOccurrences(of: "-", with: "_") }
                found[key] = String(assignment[assignment.index(after: eq)...])
            }
        }
        for (name, value) in startupParameters where name != "options" { found[name.lowercased()] = value }
        return found
    }
}

/// Every flag in force, with a version that changes on each flip (for caches).
public struct RoutingTable: Sendable, Equatable {
    public var version: UInt64
    public var flags: [FlagState] {
        didSet { summarize() }
    }
    /// Whether any read may be routed to a new path: only then is statement text inspected.
    public private(set) var routesReads = false
    /// Whether writes to some old relation are mirrored: then statement text is inspected too.
    public private(set) var mirrorsWrites = false
    /// Whether a flag moves sessions by search_path.
    public private(set) var hasSearchPathFlags = false
    /// Every flag's ``FlagState/activeMirrors``, in the flags' order.
    public private(set) var activeMirrors: [MirrorTarget] = []
    /// Each flag's ``CohortRule``, in the flags' order.
    public private(set) var cohortRules: [CohortRule] = []
    /// The relations a statement must name for a flag to concern it: the old and new relation of
    /// every flag past `off` (reads and writes of either may be routed or mirrored).
    public private(set) var mentions = RelationMentions(names: [])

    public init(version: UInt64 = 0, flags: [FlagState] = []) {
        self.version = version
        self.flags = flags
        summarize()
    }

    /// Kept with the flags, not worked out per statement: flags are large values and every
    /// routed statement asks.
    private mutating func summarize() {
        routesReads = flags.contains { $0.stage >= .canary }
        mirrorsWrites = flags.contains { $0.mirrorsWrites }
        hasSearchPathFlags = flags.contains { $0.routing != .rewrite }
        cohortRules = flags.map(CohortRule.init)
        activeMirrors = flags.flatMap(\.activeMirrors)
        mentions = RelationMentions(names: flags.filter { $0.stage > .off }.flatMap { flag in
            [flag.route.oldName, flag.mirror?.oldName, flag.reverseMirror?.oldName].compactMap { $0 }
        })
    }

    /// For the first search_path flag: the schema the session should use in `context`
    /// (nil when no flag routes by search_path).
    public func searchPath(for context: CohortContext) -> String? {
        for i in flags.indices {
            if case let .searchPath(old, new) = flags[i].routing {
                return cohortRules[i].assignment(context: context).path == .new ? new : old
            }
        }
        return nil
    }
}
