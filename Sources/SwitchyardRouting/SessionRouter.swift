// One session's routing: its cohort inputs, the flag state it reads under, and the decision per query.
import SwitchyardConfig
import SwitchyardSQL

/// What to send for one query.
public enum RouteDecision: Sendable, Equatable {
    /// Send the original bytes.
    case forward
    /// Send this text instead; `flags` are the flags whose new path serves it.
    case rewritten(String, flags: [String])
    /// A routed read that could not be rewritten safely, served from the old path.
    case keptOnOldPath(fingerprint: String, reason: String)
    /// Send this text: writes to old relations mirrored into the new ones (see ``WriteMirror``).
    case mirrored(String, migrations: [String])
    /// A write to an old relation in a form that is not mirrored: sent as it is.
    case writeNotMirrored(fingerprint: String, migration: String, reason: String)
}

/// Which flag, cohort and path served a read of a migrated relation, for latency per cohort and path.
/// A class: a label goes with each routed read from the router to the request it answers and to
/// the loop's latency series, so a copy is one reference rather than three strings; and the router
/// hands out the same label for the same fields (see ``SessionRouter``), so the series finds it by
/// identity before comparing strings.
public final class LatencyLabel: Sendable, Hashable {
    /// Where a timing comes from: a client's request as served, or a shadow read's run of each path
    /// side by side on a side connection.
    public enum Source: String, Sendable, Hashable {
        case served, shadow
    }

    public let flag: String
    /// `canary` or `control` at the canary stage; the stage's name otherwise (everyone is on one path).
    public let cohort: String
    public let path: ReadPath
    public let fingerprint: String
    public let source: Source

    public init(flag: String, cohort: String, path: ReadPath, fingerprint: String, source: Source = .served) {
        self.flag = flag
        self.cohort = cohort
        self.path = path
        self.fingerprint = fingerprint
        self.source = source
    }

    /// This label on another path.
    public func on(_ path: ReadPath) -> LatencyLabel {
        LatencyLabel(flag: flag, cohort: cohort, path: path, fingerprint: fingerprint, source: source)
    }

    /// This label with another fingerprint.
    public func with(fingerprint: String) -> LatencyLabel {
        LatencyLabel(flag: flag, cohort: cohort, path: path, fingerprint: fingerprint, source: source)
    }

    /// Every served request of a routed read is counted under its label: the two enums are
    /// hashed as their cases, not as their raw-value strings.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(flag)
        hasher.combine(cohort)
        hasher.combine(fingerprint)
        hasher.combine(path == .new)
        hasher.combine(source == .shadow)
    }

    /// The same label, or field by field; inlined where it is used, since a session compares the
    /// label of every routed read with the few it recorded last.
    @inlinable @inline(__always) public static func == (a: LatencyLabel, b: LatencyLabel) -> Bool {
        a === b || a.has(flag: b.flag, cohort: b.cohort, path: b.path, fingerprint: b.fingerprint, source: b.source)
    }

    /// Whether this label has these fields (the enums compared first, then the strings).
    @inlinable @inline(__always)
    public func has(flag: String, cohort: String, path: ReadPath, fingerprint: String, source: Source) -> Bool {
        self.path == path && self.source == source && self.flag == flag && self.cohort == cohort && self.fingerprint == fingerprint
    }
}

/// Pure per-session router. The I/O layer tells it about transaction boundaries and
/// the flag table in force; it answers, for each query text, what to send. A new flag
/// table only takes effect at a transaction boundary, so a flip never moves a session
/// to the other path in the middle of a transaction.
public struct SessionRouter: Sendable {
    public private(set) var table = RoutingTable()
    private var pending: RoutingTable?
    public private(set) var context: CohortContext
    /// SET LOCAL values, dropped when the transaction ends.
    private var localSettings: [String: String] = [:]
    /// The cohorts the canary flags put the last routed statement in (for SHOW COHORTS).
    public private(set) var lastCohorts: [CohortAssignment] = []
    /// For the last routed statement that reads a migrated relation at canary or later: its flag,
    /// cohort and the path that served it.
    public private(set) var lastLatencyLabel: LatencyLabel?
    /// The labels handed out last, so that the same label is the same storage statement after
    /// statement (see ``LatencyLabel``): a canary session alternates between two or so.
    private var recentLabels: [LatencyLabel] = []
    static let recentLabelsKept = 4
    /// The prefix of the marker value mirrored writes answer with (see `MirrorResponseFixer`).
    public var mirrorMarker = "switchyard_mirrored"
    /// The search_path this router last set for the session, if any.
    public private(set) var injectedSearchPath: String?
    /// Moves whenever a statement's path may have changed for this session: a new flag table
    /// taken up, or a cohort setting changed. Prepared statements are re-checked when it moves.
    public private(set) var generation: UInt64 = 0
    /// The session settings before the first SET of the transaction in progress: PostgreSQL
    /// undoes a SET when its transaction rolls back, and so must the cohort inputs.
    private var settingsBeforeTransaction: [String: String]?
    /// The transaction in progress is ending with an explicit ROLLBACK.
    private var rollbackRequested = false
    /// The savepoints made in the transaction in progress since its first SET, each with the
    /// settings then in force: ROLLBACK TO a savepoint undoes the SETs made after it.
    private var savepoints: [Savepoint] = []
    /// Statements prepared with SQL PREPARE that write some relation, by name, as analysed: each
    /// EXECUTE runs the write, checked against the mirrors in force then (a write prepared before
    /// its table's mirroring began is not mirrored after, and is answered as such).
    private var sqlPrepared: [String: StatementAnalysis] = [:]
    static let sqlPreparedLimit = 1000
    /// The SQL-prepared writes forgotten or replaced since the session last took them: a
    /// DEALLOCATE, DISCARD, Close or PREPARE of the name may not have run (an error earlier in
    /// its request skips it, and a PREPARE of a name in use fails), so the session gives them back
    /// (``restoreSQLPrepared(_:)``) when the request that forgot them fails.
    private var forgottenWrites: [SQLPreparedWrite] = []
    /// The `set_config` calls of the last routed Parse: the session applies them at each Bind of
    /// the statement, with the Bind's values (a Parse runs nothing).
    public private(set) var lastPreparedConfigCalls: [ConfigCall] = []
    /// The routes of the last read sent to a new path (see ``route``).
    private var lastRoutes: RoutesInUse?
    /// The storage of ``route``'s list of flags on the new path, kept from statement to statement.
    private var newPathScratch: [Int] = []
    /// The first schema of the session's search_path, worked out once per ``generation``: only a
    /// setting changes it, and every setting change moves the generation.
    private var schemaMemo: (generation: UInt64, schema: String?)?
    /// The masked key ``routeMatched`` saw last, the generation then, and whether its texts are
    /// routed there.
    private var matchedKey: MatchedKey?

    private struct MatchedKey: Sendable {
        var match: MaskedMatch
        var generation: UInt64
        var routable: Bool
        /// The cohort rule that labels the key's reads, and its labels on the old and the new path once made.
        var labelling: Int?
        var labels: [LatencyLabel?]
        /// ``matchedShadowFlag``.
        var shadowFlag: (flag: String, fingerprint: String)?
    }

    private struct Savepoint: Sendable {
        var name: String
        var settings: [String: String]
        var localSettings: [String: String]
    }

    private struct RoutesInUse: Sendable {
        var version: UInt64
        var flags: [Int]
        var schema: String?
        var routes: [ReadRoute]
        var names: [String]
    }

    /// `roleSettings`: what the session's role and database set for it (``RoleSettings``).
    /// `userSchema`: the schema `$user` in its search_path finds, if it matters (``CohortContext/userSchema``).
    public init(startupParameters: [String: String], clientAddress: String, roleSettings: [String: String] = [:], userSchema: String? = nil) {
        context = CohortContext(startupParameters: startupParameters, clientAddress: clientAddress, roleSettings: roleSettings,
                                userSchema: userSchema)
    }

    /// Offers the latest flag table; it is adopted now if the session is between
    /// transactions, otherwise at the next boundary.
    public mutating func offer(_ latest: RoutingTable, idle: Bool) {
        guard latest.version != table.version else { pending = nil; return }
        if idle {
            table = latest
            pending = nil
            generation &+= 1
        } else {
            pending = latest
        }
    }

    /// Whether a SET in the transaction in progress would be undone by a ROLLBACK: then
    /// the I/O layer shows this router statements that may roll back or chain (see ``route``).
    public var watchesForRollback: Bool { settingsBeforeTransaction != nil }

    /// The session reached a transaction boundary (ReadyForQuery 'I'). `failed`: the
    /// transaction was rolled back by an error; SETs made in it are undone, as after ROLLBACK.
    public mutating func transactionEnded(failed: Bool = false) {
        settingsAtTransactionEnd(rolledBack: failed || rollbackRequested)
        if let p = pending {
            table = p
            pending = nil
            generation &+= 1
        }
    }

    /// What the end of a transaction does to the cohort inputs: a rollback undoes its SETs, and
    /// SET LOCAL values end with it either way.
    private mutating func settingsAtTransactionEnd(rolledBack: Bool) {
        if let before = settingsBeforeTransaction, rolledBack {
            context.settings = before
            generation &+= 1
        }
        settingsBeforeTransaction = nil
        rollbackRequested = false
        savepoints.removeAll()
        if !localSettings.isEmpty {
            // SET LOCAL values end with their transaction: the cohort inputs may have moved back.
            localSettings.removeAll()
            generation &+= 1
        }
    }

    /// A transaction statement after a SET in the same transaction. ROLLBACK is noted for the
    /// boundary. `COMMIT AND CHAIN` and `ROLLBACK AND CHAIN` end the transaction and begin
    /// the next one at once, so the session never reports a boundary: their effect on the
    /// settings is applied here.
    private mutating func transactionStatement(_ statement: StatementAnalysis) {
        guard let spelled = try? SQLAnalyzer.words(in: statement.text).filter({ $0 != ";" }), let last = spelled.last else { return }
        let words = spelled.map { $0.uppercased() }
        let first = words[0]
        // SAVEPOINT name, RELEASE [SAVEPOINT] name, ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name.
        let savepoint = words.count >= 2 ? ReadRewriter.foldedIdentifier(last) : nil
        if first == "SAVEPOINT", let savepoint {
            savepoints.append(Savepoint(name: savepoint, settings: context.settings, localSettings: localSettings))
            return
        }
        if first == "RELEASE", let savepoint {
            // Releasing a savepoint releases those made after it; the SETs stay.
            if let i = savepoints.lastIndex(where: { $0.name == savepoint }) { savepoints.removeSubrange(i...) }
            return
        }
        if first == "ROLLBACK", words.dropFirst().prefix(2).contains("TO"), let savepoint {
            // The savepoint stays; those made after it go. One this router has not seen was made
            // before the transaction's first SET (it records them from then on): back to the start.
            if let i = savepoints.lastIndex(where: { $0.name == savepoint }) {
                savepoints.removeSubrange((i + 1)...)
                context.settings = savepoints[i].settings
                localSettings = savepoints[i].localSettings
            } else if let before = settingsBeforeTransaction {
                savepoints.removeAll()
                context.settings = before
                localSettings.removeAll()
            }
            generation &+= 1
            return
        }
        // `AND NO CHAIN` is a plain end.
        let chained = words.count >= 3 && Array(words.suffix(2)) == ["AND", "CHAIN"]
        if Self.isRollback(words: words) {
            if chained { settingsAtTransactionEnd(rolledBack: true) } else { rollbackRequested = true }
        } else if chained, first == "COMMIT" || first == "END" {
            settingsAtTransactionEnd(rolledBack: false)
        }
    }

    /// At a transaction boundary: the `SET search_path` statement to send first, when a
    /// search_path flag wants this session on another schema than it is now. Nothing is
    /// sent while the session has never been moved and should stay on the old schema.
    public mutating func searchPathStatement(info: QueryInfo) -> String? {
        guard table.hasSearchPathFlags else { return nil }
        guard let wanted = table.searchPath(for: cohortContext(commentTags: info.commentTags)) else { return nil }
        let isOld = table.flags.contains { if case let .searchPath(old, _) = $0.routing { return old == wanted } else { return false } }
        if injectedSearchPath == wanted || (injectedSearchPath == nil && isOld) { return nil }
        injectedSearchPath = wanted
        return "SET search_path TO \(RelationName.quotedIdentifier(wanted))"
    }

    /// Whether a flag moves sessions by search_path.
    public var hasSearchPathFlags: Bool { table.hasSearchPathFlags }

    /// Whether query text needs looking at at all.
    public var routesReads: Bool { table.routesReads }

    /// Whether writes to some old relation are mirrored.
    public var mirrorsWrites: Bool { table.mirrorsWrites }

    /// What `route` would decide for a statement prepared earlier, without recording anything
    /// (no setting, no cohort for SHOW COHORTS): for re-preparing statements between transactions.
    public func decision(sql: String, info: QueryInfo, cache: QueryInfoCache, wire: WriteMirror.Wire = .extended) -> RouteDecision {
        var scratch = self
        return scratch.route(sql: sql, info: info, cache: cache, wire: wire)
    }

    /// Decides for one query, taking its analysis and rewrites from `cache`.
    public mutating func route(sql: String, cache: QueryInfoCache, wire: WriteMirror.Wire = .simple) -> RouteDecision {
        route(sql: sql, info: cache.info(for: sql), cache: cache, wire: wire)
    }

    /// Decides for one query whose info the caller already has. `wire`: the protocol the text
    /// goes out in (a Query's or a Parse's), which a mirrored write's marker names.
    public mutating func route(sql: String, info: QueryInfo, cache: QueryInfoCache, wire: WriteMirror.Wire = .simple) -> RouteDecision {
        let marker = mirrorMarker
        return route(sql: sql, statements: info.statements, commentTags: info.commentTags, wire: wire, rewrite: { routes in
            cache.rewrite(sql, info: info, routes: routes)
        }, mirror: { targets in
            cache.mirror(sql, info: info, targets: targets, wire: wire, marker: marker)
        })
    }

    /// Decides for one query (a simple Query's text or a Parse's), given its analysis and sqlcommenter tags.
    public mutating func route(sql: String, statements: [StatementAnalysis], commentTags: CommentTags, wire: WriteMirror.Wire = .simple) -> RouteDecision {
        let marker = mirrorMarker
        return route(sql: sql, statements: statements, commentTags: commentTags, wire: wire, rewrite: { routes in
            ReadRewriter.rewrite(sql: sql, statements: statements, routes: routes)
        }, mirror: { targets in
            WriteMirror.plan(sql: sql, statements: statements, targets: targets, wire: wire, marker: marker).plan
        })
    }

    private mutating func route(
        sql: String, statements: [StatementAnalysis], commentTags: CommentTags, wire: WriteMirror.Wire,
        rewrite: ([ReadRoute]) -> RewriteOutcome, mirror: ([MirrorTarget]) -> WritePlan
    ) -> RouteDecision {
        // By index: a statement's analysis is a large value, not copied per statement.
        if !lastPreparedConfigCalls.isEmpty { lastPreparedConfigCalls.removeAll() }
        var executed: StatementAnalysis?
        for i in statements.indices {
            // Reads and writes change no setting (but through set_config, below) and no prepared name.
            let kind = statements[i].kind
            if kind == .utility || kind == .transactionControl, let prepared = sessionStatement(statements[i], alone: statements.count == 1) {
                executed = prepared
            }
            // set_config runs where a read or a write runs (not in EXPLAIN without ANALYZE, nor in
            // a cursor's query until it is fetched); in a Parse, at each Bind.
            if statements[i].mayCallSetConfig, kind == .read || kind == .write,
               statements[i].statementType != "ExplainStmt", statements[i].statementType != "DeclareCursorStmt" {
                let calls = ConfigCall.calls(in: statements[i])
                if wire == .simple {
                    record(calls.filter(\.isConstant).compactMap { $0.change() })
                } else {
                    lastPreparedConfigCalls += calls
                }
            }
        }
        lastCohorts.removeAllKeepingStorage()
        lastLatencyLabel = nil
        // An EXECUTE runs the write its PREPARE holds, against the mirrors in force now.
        if let executed, table.mirrorsWrites {
            if case let .notMirrored(migration, reason) = WriteMirror.plan(sql: executed.text, statements: [executed], targets: mirrorTargets(),
                                                                           wire: wire, marker: mirrorMarker).plan {
                return .writeNotMirrored(fingerprint: executed.fingerprint, migration: migration, reason: reason)
            }
        }
        // Writes to old relations are mirrored into the new ones whatever the cohort: the new
        // relation must hold every row for any reader. (Statements are large values: looked at
        // through their indices, since `contains(where:)` copies each one.)
        // A PREPARE holds a write of its own, which each EXECUTE runs.
        if table.mirrorsWrites, statements.indices.contains(where: { statements[$0].kind == .write || statements[$0].statementType == "PrepareStmt" }) {
            switch mirror(mirrorTargets()) {
            case .untouched: break
            case let .mirrored(text, migrations): return .mirrored(text, migrations: migrations)
            case let .notMirrored(migration, reason):
                return .writeNotMirrored(fingerprint: statements.first?.fingerprint ?? "", migration: migration, reason: reason)
            }
        }
        guard table.routesReads else { return .forward }
        let firstSchema = sessionSchema()
        let newPath = assignCohorts(commentTags: commentTags)
        defer { newPathScratch = newPath }
        // The first flag whose old relation this statement reads labels its latency.
        if let read = statements.indices.first(where: { statements[$0].kind == .read }),
           let i = Self.rewritingRule(reading: statements[read], rules: table.cohortRules, schema: firstSchema, from: .canary) {
            lastLatencyLabel = label(rule: i, onNew: newPath.contains(i), fingerprint: statements[read].fingerprint)
        }
        guard let routes = routes(newPath: newPath, schema: firstSchema) else { return .forward }
        switch rewrite(routes) {
        case .untouched:
            return .forward
        case let .rewritten(text):
            return .rewritten(text, flags: lastRoutes!.names)
        case let .keptOnOldPath(reason):
            lastLatencyLabel = lastLatencyLabel?.on(.old)
            return .keptOnOldPath(fingerprint: statements.first?.fingerprint ?? "", reason: reason)
        }
    }

    /// What ``routeMatched(_:text:runs:cache:front:preparing:)`` decides for a Query.
    public enum MatchedRoute: Sendable, Equatable {
        case forward
        /// Send the rewritten text, laid out as ``QueryInfoCache/rewrittenBody(_:text:runs:routes:front:)`` gives it.
        case rewritten(body: [UInt8], flags: [String])
        /// Asked `preparing`: the key's prepared form on the new path of `routes`, for the session
        /// to run as a ``PreparedRead`` (or, when it cannot, as the rewritten text onto `routes`).
        case prepared(PreparedRead, routes: [ReadRoute], flags: [String])
    }

    /// ``route(sql:info:cache:wire:)`` for a Query whose text matched the cache's last masked key
    /// (``QueryInfoCache/matchLast(_:runs:)``), on the text's bytes, where all it takes is the
    /// cohorts and the key's rewritten form: the key's texts are one plain SELECT that reads the
    /// old relation of a flag that rewrites. nil for any other text, and when the key has no
    /// rewritten form for the routes yet; then the general path decides, from the start, the same.
    /// Routing tables a session reads through its text bytes (the prefilter's names and the
    /// statements' relations) depend on the key only, so they are looked at once per key and generation.
    /// `preparing`: a read on the new path comes back as ``MatchedRoute/prepared(_:routes:flags:)``.
    public mutating func routeMatched(_ match: MaskedMatch, text: UnsafeBufferPointer<UInt8>, runs: [Range<Int>],
                                      cache: QueryInfoCache, front: Int, preparing: Bool = false) -> MatchedRoute? {
        if matchedKey == nil || matchedKey!.generation != generation || !matchedKey!.match.isOfKey(of: match) {
            let statements = match.statements
            let plain = Self.isPlainRead(statements) && table.routesReads
            let schema = sessionSchema()
            let rules = table.cohortRules
            let labelling = plain ? Self.rewritingRule(reading: statements[0], rules: rules, schema: schema, from: .canary) : nil
            let shadowFlag = plain && !statements[0].lockingRead
                ? shadowFlagIndex(statements[0], schema: schema).map { (table.flags[$0].name, statements[0].fingerprint) } : nil
            let routable = plain && table.mentions.mayMention(text)
                && Self.rewritingRule(reading: statements[0], rules: rules, schema: schema, from: .off) != nil
            matchedKey = MatchedKey(match: match, generation: generation, routable: routable,
                                    labelling: labelling, labels: [nil, nil], shadowFlag: shadowFlag)
        }
        guard matchedKey!.routable else { return nil }
        if !lastPreparedConfigCalls.isEmpty { lastPreparedConfigCalls.removeAll() }
        let firstSchema = sessionSchema()
        let newPath = assignCohorts(commentTags: cache.commentTags(match, text: text, runs: runs))
        defer { newPathScratch = newPath }
        // The label, made once per path for the key.
        if let i = matchedKey!.labelling {
            let onNew = newPath.contains(i)
            if let made = matchedKey!.labels[onNew ? 1 : 0] {
                lastLatencyLabel = made
            } else {
                lastLatencyLabel = label(rule: i, onNew: onNew, fingerprint: match.statements[0].fingerprint)
                matchedKey!.labels[onNew ? 1 : 0] = lastLatencyLabel
            }
        }
        guard let routes = routes(newPath: newPath, schema: firstSchema) else { return .forward }
        if preparing, let prepared = cache.preparedRead(match, routes: routes) {
            return .prepared(prepared, routes: routes, flags: lastRoutes!.names)
        }
        guard let body = cache.rewrittenBody(match, text: text, runs: runs, routes: routes, front: front) else { return nil }
        return .rewritten(body: body, flags: lastRoutes!.names)
    }

    /// One SELECT that changes no setting: a read ``route`` only routes.
    static func isPlainRead(_ statements: [StatementAnalysis]) -> Bool {
        statements.count == 1 && statements[0].kind == .read && statements[0].statementType == "SelectStmt"
            && !statements[0].mayCallSetConfig && statements[0].error == nil
    }

    /// Each canary flag's cohort for a statement with these tags (kept for SHOW COHORTS, with
    /// no latency label yet), and the flags whose new path serves it, by index. The list's
    /// storage is the router's own (``newPathScratch``): the caller gives it back when done.
    private mutating func assignCohorts(commentTags: CommentTags) -> [Int] {
        lastCohorts.removeAllKeepingStorage()
        lastLatencyLabel = nil
        // Emptied, not made: a list made here would be an allocation per routed statement.
        var newPath = newPathScratch
        newPathScratch = []
        newPath.removeAllKeepingStorage()
        // Flags are large values: what this needs of them is in the table's cohort rules.
        let rules = table.cohortRules
        for i in rules.indices {
            let assignment = rules[i].assignment(key: cohortKey(rules[i].cohortKey, commentTags: commentTags))
            if rules[i].stage == .canary { lastCohorts.append(assignment) }
            if rules[i].rewrites && assignment.path == .new { newPath.append(i) }
        }
        return newPath
    }

    /// The first rule at `stage` or later that rewrites reads and whose old relation `read` reads,
    /// for a session whose unqualified names resolve in `schema`. From `canary`: the flag that labels
    /// the read's latency.
    private static func rewritingRule(reading read: StatementAnalysis, rules: [CohortRule], schema: String?, from stage: FlagStage) -> Int? {
        let relations = read.relations
        return rules.indices.first { i in
            rules[i].stage >= stage && rules[i].rewrites
                && relations.indices.contains { rules[i].reads(relations[$0], unqualifiedSchema: schema) }
        }
    }

    /// The latency label of a read that rule `i` labels, on the new path or the old.
    private mutating func label(rule i: Int, onNew: Bool, fingerprint: String) -> LatencyLabel {
        let rule = table.cohortRules[i]
        let cohort = rule.stage == .canary ? (onNew ? "canary" : "control") : rule.stage.rawValue
        return label(flag: rule.name, cohort: cohort, path: onNew ? .new : .old, fingerprint: fingerprint)
    }

    /// The routes of the flags on the new path (nil when none is), for a session whose first schema is `firstSchema`.
    private mutating func routes(newPath: [Int], schema firstSchema: String?) -> [ReadRoute]? {
        guard !newPath.isEmpty else { return nil }
        // The routes (and their flags' names) depend only on the table, the flags on the new path
        // and the schema: made once and kept while those stay the same, as they do statement after statement.
        if lastRoutes?.version != table.version || lastRoutes?.flags != newPath || lastRoutes?.schema != firstSchema {
            let flags = table.flags
            let routes = newPath.map { i -> ReadRoute in
                var route = flags[i].route
                // Unqualified names resolve through the search_path: follow the session's when known
                // (a SET or a startup parameter), else assume PostgreSQL's default, which finds public.
                route.unqualifiedSchema = firstSchema
                return route
            }
            lastRoutes = RoutesInUse(version: table.version, flags: newPath, schema: firstSchema, routes: routes, names: newPath.map { flags[$0].name })
        }
        return lastRoutes!.routes
    }

    /// A label with these fields: one handed out recently if there is one.
    private mutating func label(flag: String, cohort: String, path: ReadPath, fingerprint: String) -> LatencyLabel {
        if let recent = recentLabels.first(where: { $0.has(flag: flag, cohort: cohort, path: path, fingerprint: fingerprint, source: .served) }) {
            return recent
        }
        let made = LatencyLabel(flag: flag, cohort: cohort, path: path, fingerprint: fingerprint)
        if recentLabels.count == Self.recentLabelsKept { recentLabels.removeFirst() }
        recentLabels.append(made)
        return made
    }

    /// For shadow reads: the first flag at `shadow`, `canary` or `live` whose old relation a single
    /// read statement reads, its route (resolved for this session's search_path), the statement's
    /// cohort key, and the session's search_path setting to replay with it.
    /// `mutating` though it changes nothing: a session keeps its router in a class's property, and a
    /// non-mutating call there runs on a copy of the whole router, made for every read.
    public mutating func shadowTarget(statements: [StatementAnalysis], commentTags: CommentTags)
        -> (flag: String, route: ReadRoute, cohortKey: String?, searchPath: String?)? {
        guard statements.count == 1, let read = statements.first, read.kind == .read, !read.lockingRead else { return nil }
        let ctx = cohortContext(commentTags: commentTags)
        let schema = Self.firstSchema(ctx)
        guard let i = shadowFlagIndex(read, schema: schema) else { return nil }
        var route = table.flags[i].route
        route.unqualifiedSchema = schema
        return (table.flags[i].name, route, ctx.cohortKey(table.flags[i].cohortKey), ctx.searchPath)
    }

    /// The first flag at `shadow`, `canary` or `live` that rewrites reads of an old relation `read`
    /// reads, by index, for a session whose unqualified names resolve in `schema`: the flag whose
    /// samplers may shadow `read`.
    private func shadowFlagIndex(_ read: StatementAnalysis, schema: String?) -> Int? {
        // By index: `for flag in` copies each flag, and this runs for every read while a flag samples.
        let flags = table.flags
        return flags.indices.first { i in
            guard flags[i].rewrites && flags[i].stage >= .shadow && flags[i].stage < .complete else { return false }
            var route = flags[i].route
            route.unqualifiedSchema = schema
            return read.relations.contains { route.matches($0) }
        }
    }

    /// For the key ``routeMatched(_:text:runs:cache:front:preparing:)`` routed last: the flag whose samplers
    /// may shadow its reads (``shadowTarget(statements:commentTags:)``'s), asked before the read's
    /// text and analysis are made for a sampled one.
    /// With the key's fingerprint, kept with it (the analysis is a large value, not copied per read).
    public var matchedShadowFlag: (flag: String, fingerprint: String)? { matchedKey?.shadowFlag }

    /// The session's cohort inputs with this statement's tags and the transaction's SET LOCAL values.
    private func cohortContext(commentTags: CommentTags) -> CohortContext {
        var ctx = context
        ctx.commentTags = commentTags
        for (k, v) in localSettings { ctx.settings[k] = v }
        return ctx
    }

    /// The statement's cohort key under `order`: its comment tags, the transaction's SET LOCAL
    /// values, the session's settings, its startup parameters, its address.
    private func cohortKey(_ order: [CohortSource], commentTags: CommentTags) -> String? {
        CohortContext.cohortKey(order, commentTags: commentTags, setting: { localSettings[$0] ?? context.settings[$0] },
                                startupSetting: { context.startupSettings[$0] }, startupParameters: context.startupParameters,
                                clientAddress: context.clientAddress)
    }

    /// The mirrors in force, an unqualified name in a statement read in the session's first schema.
    private mutating func mirrorTargets() -> [MirrorTarget] {
        let schema = sessionSchema()
        var targets = table.activeMirrors
        for i in targets.indices { targets[i].unqualifiedSchema = schema }
        return targets
    }

    /// ``firstSchema(_:)`` for this session, from the memo while the generation stands.
    private mutating func sessionSchema() -> String? {
        if let memo = schemaMemo, memo.generation == generation { return memo.schema }
        let schema = Self.firstSchema(cohortContext(commentTags: [:]))
        schemaMemo = (generation, schema)
        return schema
    }

    /// The first schema of the session's search_path (`SET search_path`, `search_path` /
    /// `options=-c search_path=...` at startup, or its role's and database's), `$user` being
    /// ``CohortContext/userSchema`` or passed over; with none, PostgreSQL's default, `"$user", public`.
    /// nil: PostgreSQL's default, which finds public.
    static func firstSchema(_ ctx: CohortContext) -> String? {
        // PostgreSQL's default search_path is "$user", public.
        guard let path = ctx.searchPath else { return ctx.userSchema }
        for part in path.split(separator: ",") {
            var name = part.trimmingCharacters(in: [" ", "\t"])
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 {
                name = String(name.dropFirst().dropLast())
            } else {
                name = name.lowercased()
            }
            if name == "$user", let own = ctx.userSchema { return own }
            if name == "$user" || name.isEmpty { continue }
            return name
        }
        return nil
    }

    /// ROLLBACK or ABORT of the whole transaction (not ROLLBACK TO a savepoint, not ROLLBACK PREPARED).
    /// `words`: the statement's words, upper-cased.
    static func isRollback(words: [String]) -> Bool {
        guard let first = words.first, first == "ROLLBACK" || first == "ABORT" else { return false }
        return !words.dropFirst().prefix(2).contains { $0 == "TO" || $0 == "PREPARED" }
    }

    /// Settings changed by a statement the session has seen run: a `set_config` whose arguments
    /// a Bind gave (see ``lastPreparedConfigCalls``).
    public mutating func settingsChanged(_ changes: [SettingChange]) {
        record(changes)
    }

    /// What a utility or transaction statement does to the session's settings and SQL-prepared
    /// names; for an EXECUTE of a statement prepared with SQL PREPARE that writes, its PREPARE.
    /// `alone`: the statement is the whole request, so the request failing means it failed.
    private mutating func sessionStatement(_ statement: StatementAnalysis, alone: Bool) -> StatementAnalysis? {
        switch statement.statementType {
        case "PrepareStmt"?:
            guard let name = Self.preparedName(statement) else { break }
            if statement.relations.contains(where: { $0.access != .read }), sqlPrepared[name] != nil || sqlPrepared.count < Self.sqlPreparedLimit {
                forget(name, replacedBy: statement, undoneIfFailed: alone)
            } else {
                forget(name)
            }
        case "VariableSetStmt"?:
            record(SettingChange.changes(in: statement))
        case "TransactionStmt"?:
            if settingsBeforeTransaction != nil { transactionStatement(statement) }
        case "DiscardStmt"?:
            if PreparedStatements.deallocation(statement) == .all {
                record([.resetAll])
                forgetAll()
            }
        case "DeallocateStmt"?:
            switch PreparedStatements.deallocation(statement) {
            case .all?: forgetAll()
            case let .named(name)?: forget(name)
            case nil: break
            }
        case "ExecuteStmt"?:
            if let name = Self.preparedName(statement) { return sqlPrepared[name] }
        case "ExplainStmt"?:
            // EXPLAIN ANALYZE EXECUTE name (only an analysing EXPLAIN is not a read) runs it too.
            if let words = try? SQLAnalyzer.words(in: statement.text), let at = words.firstIndex(where: { $0.uppercased() == "EXECUTE" }),
               at + 1 < words.count, let name = ReadRewriter.foldedIdentifier(words[at + 1]) {
                return sqlPrepared[name]
            }
        default:
            break
        }
        return nil
    }

    /// Moves with every statement that may deallocate the session's ``PreparedReads``: DISCARD
    /// ALL, DEALLOCATE ALL, and a DEALLOCATE, Close or PREPARE of one of their names.
    public private(set) var deallocations: UInt64 = 0

    /// Whether an EXECUTE may run a write prepared with SQL PREPARE.
    public var hasSQLPreparedWrites: Bool { !sqlPrepared.isEmpty }

    /// A protocol Close of statement `name`, which also deallocates a SQL-prepared one of that name.
    public mutating func statementClosed(_ name: String) {
        forget(name)
    }

    /// A change to what a SQL-prepared name holds: the write it held (nil: none, the name was
    /// free or held a read) and the write that replaced it (nil: none).
    public struct SQLPreparedWrite: Sendable {
        public let name: String
        public let statement: StatementAnalysis?
        let replacement: StatementAnalysis?
    }

    /// Name `name` no longer holds the write it held, if any: it holds `replacement`, or nothing.
    /// With `undoneIfFailed`, a write prepared under a name that held none is kept as a change too:
    /// PostgreSQL may reject a PREPARE that is its request's only statement (the name is in use by
    /// a read, or the text does not prepare), and then the name holds what it held before, not
    /// this write. In a request of several statements the failure may be another's, after the
    /// PREPARE ran (prepared statements outlive a rolled-back transaction): the write is kept,
    /// so that its EXECUTEs are still checked against the mirrors.
    private mutating func forget(_ name: String, replacedBy replacement: StatementAnalysis? = nil, undoneIfFailed: Bool = false) {
        if name.hasPrefix(PreparedReads.namePrefix) { deallocations &+= 1 }
        let old: StatementAnalysis?
        if let replacement { old = sqlPrepared.updateValue(replacement, forKey: name) } else { old = sqlPrepared.removeValue(forKey: name) }
        if old != nil || (replacement != nil && undoneIfFailed), forgottenWrites.count < Self.sqlPreparedLimit {
            forgottenWrites.append(SQLPreparedWrite(name: name, statement: old, replacement: replacement))
        }
    }

    private mutating func forgetAll() {
        deallocations &+= 1
        for (name, statement) in sqlPrepared where forgottenWrites.count < Self.sqlPreparedLimit {
            forgottenWrites.append(SQLPreparedWrite(name: name, statement: statement, replacement: nil))
        }
        sqlPrepared.removeAll()
    }

    /// The SQL-prepared writes forgotten since the last call, for the request that forgot them.
    public mutating func takeForgottenSQLPrepared() -> [SQLPreparedWrite] {
        defer { forgottenWrites.removeAll() }
        return forgottenWrites
    }

    /// The request that made the changes `writes` failed: what it deallocated may still be
    /// prepared on the server, and a PREPARE over the name may have failed, so the name holds what
    /// it held before (the old write, or nothing Switchyard follows), unless a later request
    /// prepared another write under it.
    public mutating func restoreSQLPrepared(_ writes: [SQLPreparedWrite]) {
        for write in writes.reversed() {
            if let current = sqlPrepared[write.name] {
                if let replacement = write.replacement, current.text == replacement.text { sqlPrepared[write.name] = write.statement }
            } else if let statement = write.statement, sqlPrepared.count < Self.sqlPreparedLimit {
                sqlPrepared[write.name] = statement
            }
        }
    }

    /// The name of `PREPARE name …` or `EXECUTE name …`, folded as PostgreSQL folds it.
    static func preparedName(_ statement: StatementAnalysis) -> String? {
        guard let words = try? SQLAnalyzer.words(in: statement.text), words.count >= 2 else { return nil }
        return ReadRewriter.foldedIdentifier(words[1])
    }

    /// Whether the session holds settings a DISCARD ALL would undo: its SETs, or a search_path
    /// this router gave it.
    public var holdsSettings: Bool { !context.settings.isEmpty || !localSettings.isEmpty || injectedSearchPath != nil }

    private mutating func record(_ changes: [SettingChange]) {
        if !changes.isEmpty {
            generation &+= 1
            if settingsBeforeTransaction == nil { settingsBeforeTransaction = context.settings }
        }
        for change in changes {
            switch change {
            case let .set(name, value, isLocal):
                if isLocal { localSettings[name] = value } else { context.settings[name] = value }
                if name == "search_path" { injectedSearchPath = nil }
            case let .reset(name):
                context.settings.removeValue(forKey: name)
                localSettings.removeValue(forKey: name)
                if name == "search_path" { injectedSearchPath = nil }
            case .resetAll:
                context.settings.removeAll()
                localSettings.removeAll()
                injectedSearchPath = nil
            }
        }
    }
}
