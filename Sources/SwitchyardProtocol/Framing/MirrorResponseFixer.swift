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
public struct MirrorResponseFixer: Sendable {
    public let marker: [UInt8]
    public let simpleColumn: String
    public let extendedColumn: String
    public let returningColumn: String
    private var pendingTag: String?
    /// Queries and Syncs sent, and ReadyForQuery answers seen: every request is answered in order,
    /// so watching can stop once the request that carries the last mirrored write is answered.
    private var sent: UInt64 = 0
    private var answered: UInt64 = 0
    private var watchUntil: UInt64 = 0

    /// The messages the fixer needs whole while watching; it sees every other one's header.
    public static let watchedMessages: Set<UInt8> = [
        BackendMessageID.rowDescription.rawValue, BackendMessageID.dataRow.rawValue,
        BackendMessageID.commandComplete.rawValue,
    ]

    public init(marker: String, simpleColumn: String, extendedColumn: String, returningColumn: String) {
        self.marker = Array((marker + ":").utf8)
        self.simpleColumn = simpleColumn
        self.extendedColumn = extendedColumn
        self.returningColumn = returningColumn
    }

    /// Statements with RETURNING answer with two more leading columns (the marker, the old row),
    /// and a last row whose marker value is the tag. How many the client does not see:
    static let returningExtraColumns = 2

    public var isWatching: Bool { answered < watchUntil }

    /// A Query or Sync went to the server.
    public mutating func requestSent() { sent += 1 }

    /// The Query just counted by ``requestSent()`` carries a mirrored write.
    public mutating func mirroredQuerySent() { watchUntil = max(watchUntil, sent) }

    /// An Execute or Describe of a mirrored statement went out: answered before the next Sync's ReadyForQuery.
    public mutating func mirroredExtendedSent() { watchUntil = max(watchUntil, sent + 1) }

    public enum Action: Sendable, Equatable {
        case pass
        case drop
        case replace([UInt8])
    }

    /// Every server message's header, in order: ReadyForQuery answers a request (the one that
    /// ends authentication answers none).
    public mutating func sawHeader(_ id: UInt8) {
        if id == BackendMessageID.readyForQuery.rawValue {
            if answered < sent { answered += 1 }
            pendingTag = nil
        }
    }

    /// What to send the client instead of server message `id` with `body` (one of ``watchedMessages``).
    public mutating func process(id: UInt8, body: [UInt8]) -> Action {
        switch id {
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
            guard let tag = pendingTag else { return .pass }
            pendingTag = nil
            return .replace(BackendMessage.commandComplete(tag: tag).encoded())
        default:
            return .pass
        }
    }
}
