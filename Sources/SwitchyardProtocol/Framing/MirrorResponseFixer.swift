// Gives the client the answer its own write would have had, when the proxy sent it mirrored.

/// A mirrored write goes out as one statement that ends in a marker row: a single text column
/// whose name says the protocol it went out in and whose value is `<marker>:<command tag>`
/// (`…:UPDATE 3`). The fixer undoes that on the way back, message by message:
/// - the marker's RowDescription is dropped (simple protocol: the original returns no rows) or
///   becomes NoData (extended protocol: the answer to Describe of a statement returning nothing);
/// - the marker DataRow is dropped and the CommandComplete that follows (`SELECT 1`) becomes the
///   original's tag.
/// Everything else passes untouched. The session only routes messages through the fixer while a
/// mirrored answer may be on its way (``isWatching``), so other traffic is not slowed.
///
/// A mirrored UPDATE may also go out in the tag form (see `WriteMirror`), whose answer is the
/// mirror's own `INSERT 0 n`: no marker comes back, so the session says which completion of which
/// request carries it (``renameExpected(ordinal:verb:)``) and the fixer makes that tag `UPDATE n`.
/// Completions are counted per request: each Execute, and each statement of a Query, ends in one
/// CommandComplete, EmptyQueryResponse or PortalSuspended, in order, until an error skips the rest.
///
/// A mirrored write that may be retried alone (an autocommit Query, nothing else in flight, see
/// ``mirroredQuerySent(retryable:)``) is watched for an error too: the error and its
/// ReadyForQuery are dropped and the session sends the client's own statement instead, whose
/// answer the client then gets; ``retryOutcome`` says how that went.
public struct MirrorResponseFixer: Sendable {
    public let marker: [UInt8]
    public let simpleColumn: String
    public let extendedColumn: String
    public let returningColumn: String
    // The state ``isIdle`` and ``holds(_:)`` read is visible to inlined code: a session asks them
    // for every read from the server, and a call the compiler cannot see into copies the whole
    // fixer first.
    @usableFromInline internal private(set) var pendingTag: String?
    /// Queries and Syncs sent, and ReadyForQuery answers seen: every request is answered in order,
    /// so watching can stop once the request that carries the last mirrored write is answered.
    private var sent: UInt64 = 0
    @usableFromInline internal private(set) var answered: UInt64 = 0
    @usableFromInline internal private(set) var watchUntil: UInt64 = 0
    /// The retryable write: the request it is, and where its answer stands.
    private var retryRequest: UInt64?
    @usableFromInline internal private(set) var retryState: RetryState = .none
    @usableFromInline enum RetryState: Sendable { case none, armed, droppingReady, retrying, retryFailed }
    private var failure: ErrorFields?
    /// Set when a retried statement has been answered: whether it succeeded alone.
    public private(set) var retryOutcome: Bool?
    /// The request that carries a mirrored COPY: its staging statements' tags are dropped.
    @usableFromInline internal private(set) var copyRequest: UInt64?
    /// Tag-form writes whose completion's tag is renamed, in the order they were sent.
    @usableFromInline internal private(set) var renames: [TagRename] = []
    @usableFromInline struct TagRename: Sendable {
        var request: UInt64
        var ordinal: Int
        var verb: String
    }
    /// Completions seen so far in the request being answered.
    private var completions = 0
    /// The verb for the CommandComplete whose header was just seen, if it is a tag-form write's.
    @usableFromInline internal private(set) var renaming: String?

    /// The messages the fixer needs whole while watching; it sees every other one's header.
    public static let watchedMessages: Set<UInt8> = [
        BackendMessageID.rowDescription.rawValue, BackendMessageID.dataRow.rawValue,
        BackendMessageID.commandComplete.rawValue,
    ]
    /// Held as well while a retryable write is in flight.
    public static let retryMessages: Set<UInt8> = [BackendMessageID.errorResponse.rawValue, BackendMessageID.readyForQuery.rawValue]

    /// Whether server message `id` must be held whole now.
    @inlinable @inline(__always) public func holds(_ id: UInt8) -> Bool {
        if Self.retryMessages.contains(id) { return retryState != .none }
        return isWatching || renaming != nil
    }

    public init(marker: String, simpleColumn: String, extendedColumn: String, returningColumn: String) {
        self.marker = Array((marker + ":").utf8)
        self.simpleColumn = simpleColumn
        self.extendedColumn = extendedColumn
        self.returningColumn = returningColumn
    }

    /// Statements with RETURNING answer with two more leading columns (the marker, the old row),
    /// and a last row whose marker value is the tag. How many the client does not see:
    static let returningExtraColumns = 2

    @inlinable @inline(__always) public var isWatching: Bool { answered < watchUntil }

    /// Nothing in flight needs the fixer: no mirrored request unanswered, no tag to rename, no
    /// retry or COPY under way. Until another request is sent, the server's messages pass as
    /// they are and only their headers need showing to ``sawHeader(_:)``.
    @inlinable @inline(__always) public var isIdle: Bool {
        !isWatching && renames.isEmpty && renaming == nil && pendingTag == nil && retryState == .none && copyRequest == nil
    }

    /// A Query or Sync went to the server. A request behind a retryable write disarms it: a
    /// retry would now answer out of order.
    public mutating func requestSent() {
        sent += 1
        if retryState == .armed, let r = retryRequest, sent > r { retryState = .none }
    }

    /// The Query just counted by ``requestSent()`` carries a mirrored write; `retryable` when it
    /// may be sent again alone if it fails (the session arms this only with nothing else in flight).
    public mutating func mirroredQuerySent(retryable: Bool = false) {
        watchUntil = max(watchUntil, sent)
        if retryable && answered + 1 == sent {
            retryRequest = sent
            retryState = .armed
            retryOutcome = nil
        }
    }

    /// The Query just counted by ``requestSent()`` is a mirrored COPY FROM (see `WriteMirror`):
    /// of its answer the client gets the CopyInResponse, errors and notices, and one tag, `COPY n`,
    /// made of the marker; the tags of the staging statements around it are dropped.
    public mutating func mirroredCopySent() {
        watchUntil = max(watchUntil, sent)
        copyRequest = sent
    }

    /// The session sent the client's statement alone after a dropped failure.
    public mutating func retrySent() {
        sent += 1
        retryState = .retrying
    }

    /// Clears ``retryOutcome`` once the session acted on it.
    public mutating func takeRetryOutcome() -> Bool? {
        defer { retryOutcome = nil }
        return retryOutcome
    }

    /// An Execute or Describe of a mirrored statement went out: answered before the next Sync's ReadyForQuery.
    public mutating func mirroredExtendedSent() { watchUntil = max(watchUntil, sent + 1) }

    /// A tag-form write went out as completion `ordinal` of its request: the Query just counted by
    /// ``requestSent()`` (`extended` false, ordinal 0), or the Sync still to come (`extended`, the
    /// count of Executes before it since the last Sync). Its tag, `INSERT 0 n`, becomes `<verb> n`.
    public mutating func renameExpected(extended: Bool, ordinal: Int, verb: String) {
        renames.append(TagRename(request: extended ? sent + 1 : sent, ordinal: ordinal, verb: verb))
    }

    public enum Action: Sendable, Equatable {
        case pass
        case drop
        case replace([UInt8])
        /// Drop this (the failed attempt's ReadyForQuery): send the client's statement alone (see
        /// ``retrySent()``); the error the attempt failed with.
        case retry(ErrorFields)
    }

    /// Every server message's header, in order: ReadyForQuery answers a request (the one that
    /// ends authentication answers none).
    public mutating func sawHeader(_ id: UInt8) {
        switch id {
        case BackendMessageID.readyForQuery.rawValue:
            if answered < sent { answered += 1 }
            pendingTag = nil
            if let r = copyRequest, answered >= r { copyRequest = nil }
            completions = 0
            renaming = nil
            // An error skips the rest of its request: renames it left unused end with it.
            if !renames.isEmpty { renames.removeAll { $0.request <= answered } }
        case BackendMessageID.commandComplete.rawValue, BackendMessageID.emptyQueryResponse.rawValue,
             BackendMessageID.portalSuspended.rawValue:
            renaming = nil
            if let first = renames.first, first.request == answered + 1 {
                if first.ordinal == completions {
                    renames.removeFirst()
                    if id == BackendMessageID.commandComplete.rawValue { renaming = first.verb }
                }
            }
            completions += 1
        default:
            break
        }
    }

    /// What to send the client instead of server message `id` with `body` (one of ``watchedMessages``,
    /// or ``retryMessages`` while ``holds(_:)`` says so).
    public mutating func process(id: UInt8, body: [UInt8]) -> Action {
        switch id {
        case BackendMessageID.errorResponse.rawValue:
            switch retryState {
            case .armed:
                guard case let .errorResponse(fields)? = try? BackendMessage.decode(id: id, body: body) else { return .pass }
                retryState = .droppingReady
                failure = fields
                pendingTag = nil
                return .drop
            case .retrying:
                retryState = .retryFailed
                return .pass
            case .none, .droppingReady, .retryFailed:
                return .pass
            }
        case BackendMessageID.readyForQuery.rawValue:
            switch retryState {
            case .droppingReady:
                // The failed attempt's end: only now may the retry go out, so its answer is the next.
                let fields = failure ?? ErrorFields(fields: [])
                failure = nil
                return .retry(fields)
            case .armed:
                retryState = .none
            case .retrying:
                retryOutcome = true
                retryState = .none
            case .retryFailed:
                retryOutcome = false
                retryState = .none
            case .none:
                break
            }
            return .pass
        case BackendMessageID.rowDescription.rawValue:
            var r = ByteReader(body, messageID: id)
            guard let count = try? r.readInt16(), count >= 1, let name = try? r.readCString() else { return .pass }
            if count == 1 && name == simpleColumn { return .drop }
            if count == 1 && name == extendedColumn { return .replace(BackendMessage.noData.encoded()) }
            if name == returningColumn, count >= Int16(Self.returningExtraColumns),
               case let .rowDescription(description)? = try? BackendMessage.decode(id: id, body: body) {
                return .replace(BackendMessage.rowDescription(RowDescription(columns: Array(description.columns.dropFirst(Self.returningExtraColumns)))).encoded())
            }
            return .pass
        case BackendMessageID.dataRow.rawValue:
            var r = ByteReader(body, messageID: id)
            guard let count = try? r.readInt16(), count >= 1, let length = try? r.readInt32(),
                  Int(length) > marker.count, Int(length) <= r.remaining, let value = try? r.readBytes(Int(length)),
                  value.starts(with: marker) else { return .pass }
            // PostgreSQL text never holds a NUL, so such a value is not a marker; as a tag it would
            // end the CommandComplete's string early and leave its length counting bytes after it.
            if value.contains(0) { return .pass }
            let rest = value[marker.count...]
            if count == 1 {
                pendingTag = String(decoding: rest, as: UTF8.self)
                return .drop
            }
            guard count > Int16(Self.returningExtraColumns),
                  case let .dataRow(row)? = try? BackendMessage.decode(id: id, body: body) else { return .pass }
            if rest.elementsEqual("row".utf8) {
                return .replace(BackendMessage.dataRow(DataRow(values: Array(row.values.dropFirst(Self.returningExtraColumns)))).encoded())
            }
            // The last row: its marker value is the tag.
            pendingTag = String(decoding: rest, as: UTF8.self)
            return .drop
        case BackendMessageID.commandComplete.rawValue:
            if let verb = renaming {
                renaming = nil
                guard case let .commandComplete(tag)? = try? BackendMessage.decode(id: id, body: body),
                      let count = tag.split(separator: " ").last, tag.hasPrefix("INSERT ") else { return .pass }
                return .replace(BackendMessage.commandComplete(tag: "\(verb) \(count)").encoded())
            }
            guard let tag = pendingTag else {
                // A staging statement of a mirrored COPY (the request being answered is the COPY's).
                if let r = copyRequest, answered + 1 == r { return .drop }
                return .pass
            }
            pendingTag = nil
            return .replace(BackendMessage.commandComplete(tag: tag).encoded())
        default:
            return .pass
        }
    }
}
