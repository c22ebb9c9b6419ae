// The typed errors of the SQL layer: why a statement could not be (fully) understood.

/// Why SQL text could not be analysed.
///
/// Analysis never throws at the top level (``SQLAnalyzer/analyze(_:)`` returns a statement of kind
/// ``StatementKind/unknown`` carrying the error, so the proxy can forward it unchanged and let
/// PostgreSQL report it); the lower-level entry points throw these directly.
public enum SQLAnalysisError: Error, Sendable, Equatable, Hashable {
    /// PostgreSQL's parser (or scanner) rejected the text. `cursorPosition` is what PostgreSQL
    /// reports: a 1-based *character* position in the analysed text, 0 when unknown.
    case syntax(message: String, cursorPosition: Int)
    /// The text contains a NUL byte, which C strings (and the wire protocol) cannot carry.
    case containsNulByte
    /// The text is larger than ``SQLAnalyzer/maximumInputBytes``; analysing it is refused rather than
    /// risking unbounded memory and stack use.
    case inputTooLarge(bytes: Int)
    /// The statement is valid but its parse tree nests deeper than Foundation's JSON reader accepts
    /// (512 levels, e.g. hundreds of chained `UNION`s or binary operators).
    case parseTreeTooDeep
    /// libpg_query produced output this module does not understand (a bug, not a user error).
    case malformedParserOutput(String)
    /// No thread with a large enough stack could be started to run the parser safely.
    case parserThreadUnavailable
}
