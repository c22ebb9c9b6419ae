// Drops the server's answers to queries the proxy injected itself, up to their ReadyForQuery,
// and the leading messages of an answer to statements it put before a client's.

/// When the proxy sends a statement of its own (such as `SET search_path` for a
/// cohort), the client must not see the answer. Those answers come first in the
/// server's stream, so the skipper consumes a prefix of it: whole messages, up to
/// and including one ReadyForQuery per injected query. Errors among them are kept
/// for the log.
///
/// After them, the next answer's first messages may be looked at too (``Leading``): the
/// CommandCompletes of statements the proxy put in front of the client's in its Query, or an
/// error saying a statement the proxy prepared must be prepared again.
public struct ResponseSkipper: Sendable {
    private var pendingReady = 0
    private var header: [UInt8] = []
    private var remaining = 0
    private var currentID: UInt8 = 0
    private var body: [UInt8] = []

    /// What to look for at the start of the next answer after the injected ones.
    public enum Leading: Sendable, Equatable {
        /// This many CommandCompletes, dropped as they come.
        case completions(Int)
        /// An ErrorResponse whose fields `isStale` accepts: dropped with the rest of its answer.
        case staleError
    }

    /// How the start of the answer turned out.
    public enum LeadingOutcome: Sendable, Equatable {
        /// Every CommandComplete expected came, and was dropped.
        case completionsDropped
        /// Another message came first (from there on the answer is the client's), or the first
        /// message was not the error looked for.
        case passed
        /// The answer began with the error looked for: it was dropped up to its ReadyForQuery.
        case stale(ErrorFields)
    }

    private var leading: Leading?
    /// The message being read is one ``leading`` looks at.
    private var inLeading = false
    /// ... and one PostgreSQL may send at any time (a notice, a notification, a parameter), which
    /// goes to the client without ending the expectation.
    private var passing = false
    /// A stale error may be dropped: false once the client has another request in flight, whose
    /// answer would come before a second try.
    private var staleDropAllowed = true
    /// Drop the rest of the answer through its ReadyForQuery (after a stale error).
    private var dropThroughReady = false
    private var outcome: LeadingOutcome?
    /// A leading message read whole and found to be the client's: to be forwarded first.
    private var returned: [UInt8]?
    private let isStale: @Sendable (ErrorFields) -> Bool

    /// `isStale`: which errors ``Leading/staleError`` drops.
    public init(isStale: @escaping @Sendable (ErrorFields) -> Bool = { _ in false }) {
        self.isStale = isStale
    }

    /// One more injected query whose answers must be dropped.
    public mutating func expectAnswer() { pendingReady += 1 }

    /// What the next answer after the injected ones begins with; ``takeOutcome()`` says how it went.
    /// One expectation at a time: the caller sets it only with no other answer in flight before.
    public mutating func expectLeading(_ expected: Leading) {
        if case .completions(0) = expected {
            outcome = .completionsDropped
            return
        }
        leading = expected
        outcome = nil
        staleDropAllowed = true
    }

    /// A stale error is from now on the client's (see ``staleDropAllowed``).
    public mutating func keepStaleErrors() {
        staleDropAllowed = false
        if leading == .staleError && !inLeading {
            leading = nil
            outcome = .passed
        }
    }

    /// The outcome of the last ``expectLeading(_:)``, once known; given once.
    public mutating func takeOutcome() -> LeadingOutcome? {
        guard leading == nil && !inLeading && !dropThroughReady, let found = outcome else { return nil }
        outcome = nil
        return found
    }

    /// Bytes consumed from the server that belong to the client after all (a leading error
    /// that was not stale): to be forwarded before the rest of the chunk.
    public mutating func takeReturned() -> [UInt8]? {
        defer { returned = nil }
        return returned
    }

    /// Whether bytes from the server still belong to injected queries.
    public var isActive: Bool { pendingReady > 0 || leading != nil || inLeading || dropThroughReady }

    /// Consumes bytes belonging to injected queries from the front of `chunk`. Returns
    /// how many bytes were consumed; the rest of the chunk is the client's. `onError` sees each
    /// error among the answers, `onReady` each injected query's end (its ReadyForQuery), in order.
    public mutating func consume(
        _ chunk: UnsafeRawBufferPointer, onError: (ErrorFields) -> Void, onReady: () -> Void = {}
    ) throws(ProtocolError) -> Int {
        var i = 0
        while i < chunk.count && isActive {
            if pendingReady == 0 && !inLeading && !dropThroughReady && header.isEmpty && remaining == 0, let expected = leading {
                // The first byte of the answer's next message says whether it is one to look at.
                let id = chunk[i]
                switch expected {
                case .completions where id == BackendMessageID.commandComplete.rawValue,
                     .staleError where id == BackendMessageID.errorResponse.rawValue:
                    inLeading = true
                case _ where Self.asynchronous.contains(id):
                    inLeading = true
                    passing = true
                default:
                    leading = nil
                    outcome = .passed
                    return i
                }
            }
            if remaining > 0 {
                let take = min(remaining, chunk.count - i)
                let part = UnsafeRawBufferPointer(rebasing: chunk[i..<i + take])
                if inLeading || currentID == BackendMessageID.errorResponse.rawValue || currentID == BackendMessageID.readyForQuery.rawValue {
                    body.append(contentsOf: part)
                }
                remaining -= take
                i += take
                if remaining == 0 {
                    finish(onError, onReady)
                    if returned != nil { return i }
                }
                continue
            }
            header.append(chunk[i])
            i += 1
            guard header.count == 5 else { continue }
            currentID = header[0]
            let length = Int(Int32(bitPattern: UInt32(header[1]) << 24 | UInt32(header[2]) << 16 | UInt32(header[3]) << 8 | UInt32(header[4])))
            let wholeHeader = header
            header = []
            guard length >= 4 else { throw .invalidLength(messageID: currentID, length: length) }
            remaining = length - 4
            body = inLeading ? wholeHeader : []
            if remaining == 0 {
                finish(onError, onReady)
                if returned != nil { return i }
            }
        }
        return i
    }

    /// NoticeResponse, NotificationResponse and ParameterStatus: sent whenever PostgreSQL has them.
    private static let asynchronous: Set<UInt8> = [
        BackendMessageID.noticeResponse.rawValue, BackendMessageID.notificationResponse.rawValue, BackendMessageID.parameterStatus.rawValue,
    ]

    private mutating func finish(_ onError: (ErrorFields) -> Void, _ onReady: () -> Void) {
        defer { body = [] }
        if inLeading {
            inLeading = false
            if passing {
                passing = false
                returned = body
                return
            }
            switch leading {
            case let .completions(n)?:
                if n > 1 {
                    leading = .completions(n - 1)
                } else {
                    leading = nil
                    outcome = .completionsDropped
                }
            default:
                leading = nil
                // The header is kept in front of the body here.
                if staleDropAllowed, case let .errorResponse(fields)? = try? BackendMessage.decode(id: currentID, body: Array(body.dropFirst(5))),
                   isStale(fields) {
                    outcome = .stale(fields)
                    dropThroughReady = true
                } else {
                    outcome = .passed
                    returned = body
                }
            }
            return
        }
        if dropThroughReady {
            if currentID == BackendMessageID.readyForQuery.rawValue { dropThroughReady = false }
            return
        }
        if currentID == BackendMessageID.errorResponse.rawValue,
           case let .errorResponse(fields)? = try? BackendMessage.decode(id: currentID, body: body) {
            onError(fields)
        }
        if currentID == BackendMessageID.readyForQuery.rawValue {
            pendingReady -= 1
            onReady()
        }
    }
}
