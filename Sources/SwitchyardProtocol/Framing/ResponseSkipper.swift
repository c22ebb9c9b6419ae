// Drops the server's answers to queries the proxy injected itself, up to their ReadyForQuery.

/// When the proxy sends a statement of its own (such as `SET search_path` for a
/// cohort), the client must not see the answer. Those answers come first in the
/// server's stream, so the skipper consumes a prefix of it: whole messages, up to
/// and including one ReadyForQuery per injected query. Errors among them are kept
/// for the log.
public struct ResponseSkipper: Sendable {
    private var pendingReady = 0
    private var header: [UInt8] = []
    private var remaining = 0
    private var currentID: UInt8 = 0
    private var body: [UInt8] = []

    public init() {}

    /// One more injected query whose answers must be dropped.
    public mutating func expectAnswer() { pendingReady += 1 }

    /// Whether bytes from the server still belong to injected queries.
    public var isActive: Bool { pendingReady > 0 }

    /// Consumes bytes belonging to injected queries from the front of `chunk`. Returns
    /// how many bytes were consumed; the rest of the chunk is the client's. `onError` sees each
    /// error among the answers, `onReady` each injected query's end (its ReadyForQuery), in order.
    public mutating func consume(
        _ chunk: UnsafeRawBufferPointer, onError: (ErrorFields) -> Void, onReady: () -> Void = {}
    ) throws(ProtocolError) -> Int {
        var i = 0
        while i < chunk.count && pendingReady > 0 {
            if remaining > 0 {
                let take = min(remaining, chunk.count - i)
                if currentID == BackendMessageID.errorResponse.rawValue || currentID == BackendMessageID.readyForQuery.rawValue {
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<i + take]))
                }
                remaining -= take
                i += take
                if remaining == 0 { finish(onError, onReady) }
                continue
            }
            header.append(chunk[i])
            i += 1
            guard header.count == 5 else { continue }
            currentID = header[0]
            let length = Int(Int32(bitPattern: UInt32(header[1]) << 24 | UInt32(header[2]) << 16 | UInt32(header[3]) << 8 | UInt32(header[4])))
            header = []
            guard length >= 4 else { throw .invalidLength(messageID: currentID, length: length) }
            remaining = length - 4
            body = []
            if remaining == 0 { finish(onError, onReady) }
        }
        return i
    }

    private mutating func finish(_ onError: (ErrorFields) -> Void, _ onReady: () -> Void) {
        if currentID == BackendMessageID.errorResponse.rawValue,
           case let .errorResponse(fields)? = try? BackendMessage.decode(id: currentID, body: body) {
            onError(fields)
        }
        if currentID == BackendMessageID.readyForQuery.rawValue {
            pendingReady -= 1
            onReady()
        }
        body = []
    }
}
