// The entry point: splits SQL text into statements and analyses each with PostgreSQL's own parser.
import Foundation

/// Statement analysis on libpg_query (PostgreSQL 15's parser). Pure and thread-safe: every call
/// is independent, and libpg_query keeps its memory per thread.
public enum SQLAnalyzer {
    /// Texts larger than this are not analysed (one `.unknown` statement with
    /// ``SQLAnalysisError/inputTooLarge(bytes:)``): bounded work per message for the proxy.
    public static let maximumInputBytes = 4 << 20

    /// Analyses every statement of `sql`, in order.
    ///
    /// The text is parsed once as a whole, exactly as PostgreSQL parses a simple-query message, so
    /// statements are split where PostgreSQL splits them. Empty statements (`;;`, only comments or
    /// whitespace) produce nothing. If any statement fails to parse, PostgreSQL rejects the whole
    /// message, so the result is a single `.unknown` statement covering the trimmed text with
    /// ``StatementAnalysis/isParseError`` set. Never traps, whatever the input.
    public static func analyze(_ sql: String) -> [StatementAnalysis] {
        let bytes = Array(sql.utf8)
        let whole = trimmed(0..<bytes.count, in: bytes)
        if whole.isEmpty { return [] }
        if bytes.count > maximumInputBytes {
            return [failure(bytes, whole, .inputTooLarge(bytes: bytes.count))]
        }
        if bytes.contains(0) {
            return [failure(bytes, whole, .containsNulByte)]
        }
        let result = ParserThread.run(inputBytes: bytes.count) { analyzeParsed(sql, bytes) }
        return result ?? [failure(bytes, whole, .parserThreadUnavailable)]
    }

    /// The scanner's tokens for `sql`, comments included.
    public static func tokens(in sql: String) throws(SQLAnalysisError) -> [SQLToken] {
        try guarded(sql) { () throws(SQLAnalysisError) in try LibPgQuery.scan(sql) }
    }

    /// The spelling of each token, comments left out, as written: for reading the few words
    /// of a utility statement (`DEALLOCATE name`, `ROLLBACK`) the parse tree does not keep.
    public static func words(in sql: String) throws(SQLAnalysisError) -> [String] {
        let tokens = try tokens(in: sql)
        let bytes = Array(sql.utf8)
        return tokens.filter { !$0.isComment }.map { t in
            String(decoding: bytes[min(t.byteRange.lowerBound, bytes.count)..<min(t.byteRange.upperBound, bytes.count)], as: UTF8.self)
        }
    }

    /// `pg_query_fingerprint` as hex: equal for statements that differ only in constants, comments and layout.
    public static func fingerprint(_ sql: String) throws(SQLAnalysisError) -> String {
        try guarded(sql) { () throws(SQLAnalysisError) in try LibPgQuery.fingerprint(sql) }
    }

    /// `pg_query_normalize`: constants replaced by `$n` placeholders.
    public static func normalize(_ sql: String) throws(SQLAnalysisError) -> String {
        try guarded(sql) { () throws(SQLAnalysisError) in try LibPgQuery.normalize(sql) }
    }

    /// libpg_query's JSON parse tree, for diagnostics.
    public static func parseTreeJSON(_ sql: String) throws(SQLAnalysisError) -> String {
        let data = try guarded(sql) { () throws(SQLAnalysisError) in try LibPgQuery.parseJSON(sql) }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - Implementation

    /// Applies the input limits and runs `body` on a thread with enough stack.
    private static func guarded<T>(
        _ sql: String, _ body: () throws(SQLAnalysisError) -> T
    ) throws(SQLAnalysisError) -> T {
        let count = sql.utf8.count
        if count > maximumInputBytes { throw .inputTooLarge(bytes: count) }
        if containsNul(sql) { throw .containsNulByte }
        guard let result = ParserThread.run(inputBytes: count, { () -> Result<T, SQLAnalysisError> in
            do throws(SQLAnalysisError) { return .success(try body()) } catch { return .failure(error) }
        }) else { throw .parserThreadUnavailable }
        return try result.get()
    }

    /// Whether the text has a NUL byte, which would cut it short for the C parser. Native
    /// strings are contiguous UTF-8, so this is one memchr.
    private static func containsNul(_ sql: String) -> Bool {
        if let found = sql.utf8.withContiguousStorageIfAvailable({ $0.isEmpty ? false : memchr($0.baseAddress!, 0, $0.count) != nil }) {
            return found
        }
        return sql.utf8.contains(0)
    }

    /// Runs on a thread with enough stack for libpg_query (see ``ParserThread``).
    private static func analyzeParsed(_ sql: String, _ bytes: [UInt8]) -> [StatementAnalysis] {
        let whole = trimmed(0..<bytes.count, in: bytes)
        let treeData: Data
        do {
            treeData = try LibPgQuery.parseJSON(sql)
        } catch {
            return [failure(bytes, whole, error)]
        }
        guard let tree = try? JSONSerialization.jsonObject(with: treeData) as? JSONObject else {
            // Foundation refuses JSON nested deeper than 512 levels. Re-parse statement by
            // statement so only the deep ones go without relations.
            return split(sql, bytes).map { analyzeAlone(bytes, $0) }
        }
        guard let statements = tree["stmts"] as? [Any] else { return [] }
        // Parsed, so it scans: one scan for all statements, sliced per statement below.
        let tokens = (try? LibPgQuery.scan(sql)) ?? []
        var analyses: [StatementAnalysis] = []
        for case let raw as JSONObject in statements {
            let location = (raw["stmt_location"] as? Int) ?? 0
            var length = (raw["stmt_len"] as? Int) ?? 0
            // PostgreSQL records 0 for "up to the end of the text" (the last statement).
            if length == 0 { length = bytes.count - location }
            guard location >= 0, length >= 0, location + length <= bytes.count else { continue }
            let range = trimmed(location..<(location + length), in: bytes)
            guard !range.isEmpty, let (type, fields) = ParseTreeWalker.node(raw["stmt"]) else { continue }
            analyses.append(analyzeStatement(
                type, fields, range: range, bytes: bytes, tokens: slice(tokens, to: range), treeOffset: range.lowerBound
            ))
        }
        return analyses
    }

    /// Analyses the one statement at `range` of a text whose combined tree was too deep to read.
    private static func analyzeAlone(_ bytes: [UInt8], _ range: Range<Int>) -> StatementAnalysis {
        let text = String(decoding: bytes[range], as: UTF8.self)
        if let data = try? LibPgQuery.parseJSON(text),
           let tree = try? JSONSerialization.jsonObject(with: data) as? JSONObject,
           let statements = tree["stmts"] as? [Any], statements.count == 1,
           let raw = statements.first as? JSONObject, let (type, fields) = ParseTreeWalker.node(raw["stmt"]) {
            let tokens = (try? LibPgQuery.scan(text)) ?? []
            return analyzeStatement(type, fields, range: range, bytes: bytes, tokens: tokens, treeOffset: 0)
        }
        // Valid, but too deep: text, fingerprint and normalised form only.
        return StatementAnalysis(
            text: text, range: range, kind: .unknown, statementType: nil, relations: [], ctes: [],
            fingerprint: (try? LibPgQuery.fingerprint(text)) ?? "",
            normalizedText: (try? LibPgQuery.normalize(text)) ?? text,
            hasOrderBy: false, lockingRead: false, error: .parseTreeTooDeep
        )
    }

    /// Analyses the statement at `range` of `bytes` from its tree; `tokens` are relative to the
    /// statement, and the tree's locations are relative to `treeOffset`.
    private static func analyzeStatement(
        _ type: String, _ fields: JSONObject, range: Range<Int>, bytes: [UInt8], tokens statementTokens: [SQLToken],
        treeOffset: Int
    ) -> StatementAnalysis {
        let statementBytes = Array(bytes[range])
        let text = String(decoding: statementBytes, as: UTF8.self)

        // A hidden data-modifying statement (WITH d AS (DELETE …) SELECT …) can only turn a read
        // into a write, which walks from the same default roles, so one walk serves both.
        var walker = ParseTreeWalker(tokens: statementTokens, text: statementBytes, baseOffset: treeOffset)
        walker.walkStatement(type: type, fields: fields, kind: ParseTreeWalker.kind(of: type, fields, containsDataModification: false))
        let kind = ParseTreeWalker.kind(of: type, fields, containsDataModification: walker.containsDataModification)

        // Dictionary order is arbitrary; textual order is what callers (and tests) expect. The
        // tree can also hold one node twice (`SET (a, b) = (SELECT …)` repeats the subquery for
        // each column), so identical references are reported once.
        var seenRelations = Set<RelationReference>()
        let relations = walker.relations.enumerated().sorted { lhs, rhs in
            (lhs.element.byteRange.lowerBound, lhs.offset) < (rhs.element.byteRange.lowerBound, rhs.offset)
        }.map { $0.element }.filter { seenRelations.insert($0).inserted }
        var seenCTEs = Set<Int>()
        let ctes = walker.cteDefinitions.enumerated().sorted { lhs, rhs in
            (lhs.element.location, lhs.offset) < (rhs.element.location, rhs.offset)
        }.filter { seenCTEs.insert($0.element.location).inserted }.map { $0.element.name }
        let hasOrderBy = type == "SelectStmt" && !((fields["sortClause"] as? [Any]) ?? []).isEmpty
        let write = writeShape(type, fields, treeOffset: treeOffset)

        var analysis = StatementAnalysis(
            text: text, range: range, kind: kind, statementType: type,
            relations: relations, ctes: ctes,
            fingerprint: (try? LibPgQuery.fingerprint(text)) ?? "",
            normalizedText: (try? LibPgQuery.normalize(text)) ?? text,
            hasOrderBy: hasOrderBy, lockingRead: walker.lockingRead, error: nil, write: write
        )
        if type == "SelectStmt" {
            analysis.parameterPlaces = ParameterPlaces.find(select: fields, treeOffset: treeOffset, statement: statementBytes)
        }
        return analysis
    }

    /// The write shape of a top-level INSERT, UPDATE or DELETE node; the tree's locations are
    /// relative to `treeOffset`, the shape's to the statement.
    private static func writeShape(_ type: String, _ fields: JSONObject, treeOffset: Int) -> WriteShape? {
        let command: WriteShape.Command
        switch type {
        case "InsertStmt": command = .insert
        case "UpdateStmt": command = .update
        case "DeleteStmt": command = .delete
        default: return nil
        }
        guard let relation = fields["relation"] as? JSONObject, let location = relation["location"] as? Int else { return nil }
        var assigned: [String] = []
        func collect(_ list: Any?) {
            for item in (list as? [Any]) ?? [] {
                if let (node, target) = ParseTreeWalker.node(item), node == "ResTarget", let name = target["name"] as? String {
                    assigned.append(name)
                }
            }
        }
        if command == .update { collect(fields["targetList"]) }
        if let conflict = fields["onConflictClause"] as? JSONObject { collect(conflict["targetList"]) }
        let returning = (fields["returningList"] as? [Any]) ?? []
        var items = 0
        var stars: [String?] = []
        var firstLocation: Int?
        for item in returning {
            guard let (node, target) = ParseTreeWalker.node(item), node == "ResTarget" else { continue }
            if let location = target["location"] as? Int { firstLocation = min(firstLocation ?? location, location) }
            if let (valueNode, value) = ParseTreeWalker.node(target["val"]), valueNode == "ColumnRef",
               let parts = value["fields"] as? [Any], let last = parts.last, ParseTreeWalker.node(last)?.0 == "A_Star" {
                let qualifier = parts.count >= 2 ? (ParseTreeWalker.node(parts[parts.count - 2])?.1["sval"] as? String) : nil
                stars.append(qualifier)
            } else {
                items += 1
            }
        }
        let others = !((fields["fromClause"] as? [Any]) ?? []).isEmpty || !((fields["usingClause"] as? [Any]) ?? []).isEmpty
        return WriteShape(
            command: command, targetLocation: location - treeOffset, hasReturning: !returning.isEmpty, assignedColumns: assigned,
            returningItems: items, returningStars: stars, hasOtherSources: others,
            returningListLocation: firstLocation.map { $0 - treeOffset })
    }

    /// Statement ranges from libpg_query's parser-based splitter, which needs no JSON (used when
    /// the tree could not be read, so the text is known to parse).
    private static func split(_ sql: String, _ bytes: [UInt8]) -> [Range<Int>] {
        guard let ranges = try? LibPgQuery.split(sql) else { return [trimmed(0..<bytes.count, in: bytes)] }
        return ranges.compactMap { range in
            guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
            let piece = trimmed(range, in: bytes)
            return piece.isEmpty ? nil : piece
        }
    }

    private static func failure(
        _ bytes: [UInt8], _ range: Range<Int>, _ error: SQLAnalysisError
    ) -> StatementAnalysis {
        let text = String(decoding: bytes[range], as: UTF8.self)
        return StatementAnalysis(
            text: text, range: range, kind: .unknown, statementType: nil, relations: [], ctes: [],
            fingerprint: "", normalizedText: text, hasOrderBy: false, lockingRead: false, error: error
        )
    }

    /// `tokens` within `range`, with offsets made relative to its start.
    private static func slice(_ tokens: [SQLToken], to range: Range<Int>) -> [SQLToken] {
        tokens.filter { range.contains($0.byteRange.lowerBound) }.map { token in
            var token = token
            token.byteRange = (token.byteRange.lowerBound - range.lowerBound)..<(token.byteRange.upperBound - range.lowerBound)
            return token
        }
    }

    /// `range` without leading or trailing whitespace as the parser's scanner (PostgreSQL 15's)
    /// defines it: a vertical tab is a character of its own there (whitespace from PostgreSQL 16),
    /// so a text of one is a statement that does not parse, as any text holding one is.
    static func trimmed(_ range: Range<Int>, in bytes: [UInt8]) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
        }
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }
}
