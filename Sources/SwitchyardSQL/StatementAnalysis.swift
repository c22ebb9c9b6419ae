// The value types describing what one SQL statement is and which relations it touches.

/// What a statement does, coarse enough for routing and migration decisions.
///
/// The classification is made on PostgreSQL's raw parse tree, so it is about the statement as
/// written, not about what functions it calls do (`SELECT nextval('s')` is a `.read`).
public enum StatementKind: String, Sendable, Equatable, Hashable, CaseIterable {
    /// `SELECT` (including `SELECT … FOR UPDATE/SHARE`, flagged by ``StatementAnalysis/lockingRead``),
    /// `VALUES`, `TABLE`, `SHOW`, `EXPLAIN` without `ANALYZE`, `COPY … TO`, and `DECLARE CURSOR`
    /// or `EXPLAIN ANALYZE` over a read.
    case read
    /// `INSERT`/`UPDATE`/`DELETE`/`MERGE`, `SELECT INTO`, a `SELECT` with a data-modifying `WITH`,
    /// `COPY … FROM`, `TRUNCATE`, `REFRESH MATERIALIZED VIEW`, `EXPLAIN ANALYZE` of a write, and
    /// (conservatively, because their bodies are opaque) `CALL` and `DO`.
    case write
    /// Everything that defines, changes or drops schema objects, roles or privileges: `CREATE …`
    /// (including `CREATE TABLE AS` and views), `ALTER …`, `DROP …`, `COMMENT`, `GRANT`/`REVOKE`,
    /// `SECURITY LABEL`, … This is the default for statement types not listed elsewhere.
    case ddl
    /// `BEGIN`/`START TRANSACTION`/`COMMIT`/`END`/`ROLLBACK`/`SAVEPOINT`/`RELEASE`/`ROLLBACK TO`/
    /// `PREPARE TRANSACTION`/`COMMIT PREPARED`/`ROLLBACK PREPARED`/`ABORT`.
    case transactionControl
    /// Session and maintenance commands: `SET`/`RESET` (also `SET TRANSACTION`, `SET CONSTRAINTS`),
    /// `DISCARD`, `LISTEN`/`UNLISTEN`/`NOTIFY`, `PREPARE`/`EXECUTE`/`DEALLOCATE`, `FETCH`/`MOVE`/`CLOSE`,
    /// `VACUUM`/`ANALYZE`, `CLUSTER`, `REINDEX`, `CHECKPOINT`, `LOAD`, `LOCK`, `ALTER SYSTEM`.
    case utility
    /// The statement could not be analysed (see ``StatementAnalysis/error``); forward it unchanged.
    case unknown
}

/// One relation (table, view, sequence, index, …) named by a statement.
public struct RelationReference: Sendable, Equatable, Hashable {
    /// How the statement uses the relation.
    public enum Access: String, Sendable, Equatable, Hashable, CaseIterable {
        /// Rows are only read (`FROM`, `JOIN`, subqueries, CTE bodies, `USING`, `COPY … TO`,
        /// `LOCK … IN ACCESS SHARE/ROW SHARE MODE`).
        case read
        /// Rows are written without reading existing ones (`INSERT` target, `COPY … FROM`,
        /// `TRUNCATE`, `SELECT INTO` target, `REFRESH MATERIALIZED VIEW`, stronger `LOCK` modes).
        case write
        /// Existing rows are read to change them (`UPDATE`/`DELETE`/`MERGE` targets,
        /// `INSERT … ON CONFLICT DO UPDATE` target).
        case readWrite
        /// Named by a DDL statement: created, altered, dropped or referenced by a definition
        /// (`CREATE TABLE AS` target, view name, `ALTER TABLE`, `DROP TABLE`, `REFERENCES`, …).
        /// Relations read by a query embedded in DDL (a view or `CREATE TABLE AS` body) are `.read`.
        case ddl
    }

    /// Where in the statement the relation is named. The innermost of `subquery`, `cteBody` and
    /// `setOperation` wins; `from`/`join` describe top-level query positions only.
    public enum Position: String, Sendable, Equatable, Hashable, CaseIterable {
        /// An item of the top-level `FROM` list, or the leftmost relation of a join tree there;
        /// also `UPDATE … FROM`.
        case from
        /// The right-hand side of a `JOIN` at the top level.
        case join
        /// Inside a subquery: `FROM (SELECT …)`, `LATERAL`, `EXISTS`, `IN`, scalar subqueries.
        case subquery
        /// Inside the body of a `WITH` query.
        case cteBody
        /// Inside an arm of `UNION`/`INTERSECT`/`EXCEPT`.
        case setOperation
        /// The relation the statement acts on: the `INSERT`/`UPDATE`/`DELETE`/`MERGE`/`COPY`/
        /// `TRUNCATE`/`LOCK` target, the `SELECT INTO`/`CREATE TABLE AS` target, and every relation
        /// named directly by a DDL or utility statement.
        case target
        /// `DELETE … USING` or `MERGE … USING`.
        case using
    }

    /// The catalog (database) part of a three-part name, rarely used.
    public var catalog: String?
    /// The schema as PostgreSQL folds it, or nil when unqualified.
    public var schema: String?
    /// The relation name as PostgreSQL folds it: unquoted identifiers lower-cased, quoted kept.
    public var name: String
    /// The alias given in the statement, if any.
    public var alias: String?
    /// UTF-8 byte range, within ``StatementAnalysis/text``, of the name exactly as written
    /// (qualification and quotes included, alias excluded).
    public var byteRange: Range<Int>
    public var access: Access
    public var position: Position

    public init(
        catalog: String? = nil, schema: String?, name: String, alias: String?,
        byteRange: Range<Int>, access: Access, position: Position
    ) {
        self.catalog = catalog
        self.schema = schema
        self.name = name
        self.alias = alias
        self.byteRange = byteRange
        self.access = access
        self.position = position
    }
}

/// The shape of a top-level INSERT, UPDATE or DELETE: what mirroring it into another table needs
/// beyond its relations.
public struct WriteShape: Sendable, Equatable, Hashable {
    public enum Command: String, Sendable, Hashable {
        case insert = "INSERT", update = "UPDATE", delete = "DELETE"
    }
    public var command: Command
    /// Byte offset (within the statement) of the written relation's name.
    public var targetLocation: Int
    public var hasReturning: Bool
    /// Columns assigned by `UPDATE … SET` or `INSERT … ON CONFLICT DO UPDATE SET`.
    public var assignedColumns: [String]
    /// The RETURNING list: how many items are not stars, and the qualifier of each star
    /// (`*` has none, `u.*` has `u`).
    public var returningItems: Int
    public var returningStars: [String?]
    /// The statement reads other relations besides its target (UPDATE … FROM, DELETE … USING),
    /// so a bare `*` in RETURNING covers them too.
    public var hasOtherSources: Bool
    /// Byte offset (within the statement) of the RETURNING list's first item.
    public var returningListLocation: Int?

    public init(
        command: Command, targetLocation: Int, hasReturning: Bool, assignedColumns: [String],
        returningItems: Int = 0, returningStars: [String?] = [], hasOtherSources: Bool = false, returningListLocation: Int? = nil
    ) {
        self.command = command
        self.targetLocation = targetLocation
        self.hasReturning = hasReturning
        self.assignedColumns = assignedColumns
        self.returningItems = returningItems
        self.returningStars = returningStars
        self.hasOtherSources = hasOtherSources
        self.returningListLocation = returningListLocation
    }
}

/// Everything the proxy needs to know about one statement of a (possibly multi-statement) string.
public struct StatementAnalysis: Sendable, Equatable {
    /// The statement's own text, without surrounding whitespace or the terminating `;`
    /// (comments before it are kept: PostgreSQL counts them as part of the statement).
    public var text: String
    /// UTF-8 byte range of ``text`` within the analysed string.
    public var range: Range<Int>
    public var kind: StatementKind
    /// libpg_query's name for the top-level node (`"SelectStmt"`, `"CreateStmt"`, …); nil when
    /// the text did not parse.
    public var statementType: String?
    /// Relations named, in textual order. CTE references are not relations and are left out.
    public var relations: [RelationReference]
    /// Names of the CTEs defined anywhere in the statement, in textual order.
    public var ctes: [String]
    /// `pg_query_fingerprint` as 16 hex digits: equal for statements that differ only in constants,
    /// whitespace, comments and the like. Empty when the text did not parse.
    public var fingerprint: String
    /// `pg_query_normalize`: constants replaced by `$n` placeholders. The text itself when it did
    /// not parse.
    public var normalizedText: String
    /// The top-level query has an `ORDER BY`, so its row order is meaningful.
    public var hasOrderBy: Bool
    /// Some `SELECT` in the statement locks rows (`FOR UPDATE`/`NO KEY UPDATE`/`SHARE`/`KEY SHARE`).
    public var lockingRead: Bool
    /// Why the statement could not be (fully) analysed; nil on success.
    public var error: SQLAnalysisError?
    /// Set for a top-level INSERT, UPDATE or DELETE.
    public var write: WriteShape?
    /// For a SELECT: the byte offsets (within the statement) of its integer constants that a
    /// parameter of type `int4` could stand for, with the same answer (see ``ParameterPlaces``).
    public var parameterPlaces: [Int] = []
    /// The text may call `set_config` (see ``ConfigCall/mayCall(_:)``), worked out once, when
    /// the statement is analysed: the router looks for its calls only then.
    public let mayCallSetConfig: Bool

    /// PostgreSQL's parser rejected the text; the server will report the error.
    public var isParseError: Bool {
        if case .syntax = error { return true }
        return false
    }

    public init(
        text: String, range: Range<Int>, kind: StatementKind, statementType: String?,
        relations: [RelationReference], ctes: [String], fingerprint: String, normalizedText: String,
        hasOrderBy: Bool, lockingRead: Bool, error: SQLAnalysisError?, write: WriteShape? = nil
    ) {
        self.text = text
        self.range = range
        self.kind = kind
        self.statementType = statementType
        self.relations = relations
        self.ctes = ctes
        self.fingerprint = fingerprint
        self.normalizedText = normalizedText
        self.hasOrderBy = hasOrderBy
        self.lockingRead = lockingRead
        self.error = error
        self.write = write
        mayCallSetConfig = ConfigCall.mayCall(text)
    }

    /// The relation's name exactly as written in ``text`` (what ``RelationReference/byteRange`` covers).
    public func spelling(of relation: RelationReference) -> String {
        let bytes = Array(text.utf8)
        let lower = min(max(relation.byteRange.lowerBound, 0), bytes.count)
        let upper = min(max(relation.byteRange.upperBound, lower), bytes.count)
        return String(decoding: bytes[lower..<upper], as: UTF8.self)
    }
}
