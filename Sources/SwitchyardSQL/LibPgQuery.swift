// Thin wrappers over libpg_query's C entry points: every result is copied into Swift values and freed before returning.
import CPgQuery
import Foundation

/// Direct calls into libpg_query. Each call is self-contained and thread-safe (libpg_query keeps
/// its memory contexts per thread), but the parser, its JSON writer and the normaliser recurse
/// once per nesting level, so callers must run them on a thread with enough stack: see
/// ``ParserThread``.
enum LibPgQuery {
    /// The parse tree of the whole text as libpg_query's JSON.
    static func parseJSON(_ sql: String) throws(SQLAnalysisError) -> Data {
        let result = sql.withCString { pg_query_parse($0) }
        defer { pg_query_free_parse_result(result) }
        if let error = result.error { throw syntaxError(error) }
        guard let tree = result.parse_tree else {
            throw .malformedParserOutput("pg_query_parse returned neither a tree nor an error")
        }
        return Data(bytes: tree, count: strlen(tree))
    }

    /// The scanner's tokens, comments included, decoded from libpg_query's protobuf output.
    static func scan(_ sql: String) throws(SQLAnalysisError) -> [SQLToken] {
        let result = sql.withCString { pg_query_scan($0) }
        defer { pg_query_free_scan_result(result) }
        if let error = result.error { throw syntaxError(error) }
        guard result.pbuf.len > 0, let data = result.pbuf.data else { return [] }
        let tokens = try ScanResultDecoder.decode(UnsafeRawBufferPointer(start: data, count: result.pbuf.len))
        return repairingUnicodeEscapes(tokens, in: sql)
    }

    /// libpg_query 15-4.0.0 reports wrong ends for `U&"…"` and `U&'…'` tokens (the scanner
    /// rewrites their text before the length is taken). Such a token really extends to where the
    /// next token (or the text) begins, less the whitespace in between.
    static func repairingUnicodeEscapes(_ tokens: [SQLToken], in sql: String) -> [SQLToken] {
        // Runs for every scanned text: plain comparisons, no set to build.
        func affected(_ kind: SQLToken.Kind) -> Bool { kind == .unicodeIdentifier || kind == .unicodeStringConstant }
        guard tokens.contains(where: { affected($0.kind) }) else { return tokens }
        let bytes = Array(sql.utf8)
        var repaired = tokens
        for index in repaired.indices where affected(repaired[index].kind) {
            let start = min(repaired[index].byteRange.lowerBound, bytes.count)
            var end = index + 1 < repaired.count ? repaired[index + 1].byteRange.lowerBound : bytes.count
            end = min(max(end, start), bytes.count)
            end = SQLAnalyzer.trimmed(start..<end, in: bytes).upperBound
            repaired[index].byteRange = start..<max(end, start)
        }
        return repaired
    }

    static func fingerprint(_ sql: String) throws(SQLAnalysisError) -> String {
        let result = sql.withCString { pg_query_fingerprint($0) }
        defer { pg_query_free_fingerprint_result(result) }
        if let error = result.error { throw syntaxError(error) }
        guard let text = result.fingerprint_str else {
            throw .malformedParserOutput("pg_query_fingerprint returned no fingerprint")
        }
        return String(cString: text)
    }

    static func normalize(_ sql: String) throws(SQLAnalysisError) -> String {
        let result = sql.withCString { pg_query_normalize($0) }
        defer { pg_query_free_normalize_result(result) }
        if let error = result.error { throw syntaxError(error) }
        guard let text = result.normalized_query else {
            throw .malformedParserOutput("pg_query_normalize returned no text")
        }
        return String(cString: text)
    }

    /// Statement byte ranges from `pg_query_split_with_parser` (PostgreSQL's own statement
    /// boundaries; a length of 0 means "to the end").
    static func split(_ sql: String) throws(SQLAnalysisError) -> [Range<Int>] {
        let result = sql.withCString { pg_query_split_with_parser($0) }
        defer { pg_query_free_split_result(result) }
        if let error = result.error { throw syntaxError(error) }
        let total = sql.utf8.count
        var ranges: [Range<Int>] = []
        for index in 0..<Int(max(result.n_stmts, 0)) {
            guard let statement = result.stmts?[index]?.pointee else { continue }
            let location = Int(statement.stmt_location)
            let length = statement.stmt_len == 0 ? total - location : Int(statement.stmt_len)
            guard location >= 0, length >= 0 else { continue }
            ranges.append(location..<(location + length))
        }
        return ranges
    }

    private static func syntaxError(_ error: UnsafeMutablePointer<PgQueryError>) -> SQLAnalysisError {
        let message = error.pointee.message.map { String(cString: $0) } ?? "syntax error"
        return .syntax(message: message, cursorPosition: Int(error.pointee.cursorpos))
    }
}
