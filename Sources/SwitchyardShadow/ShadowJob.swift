// One sampled read to run on both paths, and the report of what running it found.

/// A bound parameter as the client sent it: text format, with the type the client's Parse gave it.
public struct ShadowParameter: Sendable, Hashable {
    /// The value in text format; nil is SQL NULL.
    public var value: String?
    /// The parameter's type OID from the Parse message; 0 lets the server infer it, as for the client.
    public var typeOID: UInt32

    public init(_ value: String?, typeOID: UInt32 = 0) {
        self.value = value
        self.typeOID = typeOID
    }
}

/// A read to answer on both paths: the old SQL as the client sent it and the new SQL the rewriter made
/// of it, with the client's parameters.
public struct ShadowJob: Sendable, Equatable {
    public var flag: String
    /// The statement's cohort key, when it has one.
    public var cohort: String?
    public var fingerprint: String
    /// The query with its constants replaced by `$n`, for the record.
    public var normalizedQuery: String
    public var oldSQL: String
    public var newSQL: String
    public var parameters: [ShadowParameter]
    /// The query's ORDER BY asks for an order: compare the rows in sequence.
    public var ordered: Bool
    /// Also run the old path a second time, to tell nondeterministic queries from divergences.
    public var calibrate: Bool
    /// Show parameters as `$n = <redacted>` in reports and records.
    public var redactParameters: Bool
    /// Settings of the client's session that change what a read answers (search_path, TimeZone,
    /// DateStyle...), applied with `SET LOCAL` on the side connection; empty for the server's defaults.
    public var settings: [String: String]

    public init(
        flag: String, cohort: String? = nil, fingerprint: String, normalizedQuery: String, oldSQL: String, newSQL: String,
        parameters: [ShadowParameter] = [], ordered: Bool, calibrate: Bool, redactParameters: Bool = false,
        settings: [String: String] = [:]
    ) {
        self.flag = flag
        self.cohort = cohort
        self.fingerprint = fingerprint
        self.normalizedQuery = normalizedQuery
        self.oldSQL = oldSQL
        self.newSQL = newSQL
        self.parameters = parameters
        self.ordered = ordered
        self.calibrate = calibrate
        self.redactParameters = redactParameters
        self.settings = settings
    }

    /// The parameters as a record shows them: `$1 = 'it''s'`, `$2 = NULL`, or `$1 = <redacted>`; each value
    /// cut at `maxLength` characters.
    public func displayedParameters(maxLength: Int = 200) -> [String] {
        parameters.enumerated().map { i, p in
            let name = "$\(i + 1)"
            if redactParameters { return "\(name) = <redacted>" }
            guard let value = p.value else { return "\(name) = NULL" }
            return "\(name) = '" + truncated(value, to: maxLength).replacingQuotes() + "'"
        }
    }
}

/// How running a job ended.
public enum ShadowOutcome: Sendable, Equatable {
    /// Both paths answered (or the new path failed, a divergence of kind error) and were compared.
    case compared(ShadowVerdict)
    /// Nothing to compare, and no divergence: the old path failed, a result was too large, the side
    /// connection was lost. The reason says which.
    case skipped(String)
}

/// What one job found, with no raw parameter values when the job redacts them.
public struct ShadowReport: Sendable, Equatable {
    public var flag: String
    public var cohort: String?
    public var fingerprint: String
    public var normalizedQuery: String
    /// ``ShadowJob/displayedParameters(maxLength:)``: already redacted when the job asks for it.
    public var parameters: [String]
    public var outcome: ShadowOutcome
    public var oldRowCount: Int?
    public var newRowCount: Int?
    /// How long each path took to answer on the side connection (monotonic clock). Both paths are sent
    /// at once, so each is timed from the arrival of the answer before it to the arrival of its own:
    /// the server's time on it, without the network round trip.
    public var oldDuration: Duration?
    public var newDuration: Duration?

    public init(
        job: ShadowJob, outcome: ShadowOutcome, oldRowCount: Int? = nil, newRowCount: Int? = nil,
        oldDuration: Duration? = nil, newDuration: Duration? = nil
    ) {
        flag = job.flag
        cohort = job.cohort
        fingerprint = job.fingerprint
        normalizedQuery = job.normalizedQuery
        parameters = job.displayedParameters()
        self.outcome = outcome
        self.oldRowCount = oldRowCount
        self.newRowCount = newRowCount
        self.oldDuration = oldDuration
        self.newDuration = newDuration
    }
}

/// `text` cut to at most `length` characters, with an ellipsis when cut.
func truncated(_ text: String, to length: Int) -> String {
    // UTF-8 length first: counting the characters of a long value would walk all of it.
    if text.utf8.count <= length { return text }
    let head = text.prefix(max(0, length))
    return head.endIndex == text.endIndex ? text : String(head) + "…"
}

extension String {
    /// Doubles single quotes, as in an SQL string literal.
    func replacingQuotes() -> String {
        guard contains("'") else { return self }
        return split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''")
    }
}
