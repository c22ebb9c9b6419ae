// Finds message boundaries in a byte stream without buffering whole messages.

/// One message boundary found by the scanner. `body` is present only for message
/// types the caller asked to inspect and only when the body is small.
public struct ScannedMessage: Sendable, Equatable {
    public var id: UInt8
    /// Length of the body, without the id byte and the length field.
    public var bodyLength: Int
    public var body: [UInt8]?

    public init(id: UInt8, bodyLength: Int, body: [UInt8]?) {
        self.id = id
        self.bodyLength = bodyLength
        self.body = body
    }
}

/// Walks typed messages (`id`, Int32 length, body) across arbitrary read chunks.
///
/// The proxy forwards each chunk as it was read; the scanner only tells it where
/// messages start and hands over the bodies of the few types it must inspect.
/// A 100 MB DataRow or a long COPY therefore passes through in read-sized pieces,
/// and nothing but those inspected bodies is ever copied.
public struct MessageScanner: Sendable {
    /// Bodies of inspected messages larger than this are reported without their bytes.
    public static let inspectLimit = 64 * 1024

    public let maxMessageSize: Int
    /// Which message ids to hand over with their body (indexed by id byte).
    private let inspected: [Bool]

    private var headerBytes: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var headerCount = 0
    private var currentID: UInt8 = 0
    private var currentLength = 0
    private var remaining = 0
    private var collecting = false
    private var collected: [UInt8] = []
    private var inBody = false

    public init(maxMessageSize: Int, inspect ids: Set<UInt8>) {
        self.maxMessageSize = maxMessageSize
        var table = [Bool](repeating: false, count: 256)
        for id in ids { table[Int(id)] = true }
        self.inspected = table
    }

    /// True between messages: no partial header or body is pending.
    public var isAtMessageBoundary: Bool { !inBody && headerCount == 0 }

    /// Scans one chunk. `onMessage` is called once per message: for inspected types
    /// when the body is complete, for others as soon as the header is complete
    /// (so a size limit applies before the body arrives).
    public mutating func scan(
        _ buffer: UnsafeRawBufferPointer,
        onMessage: (ScannedMessage) -> Void
    ) throws(ProtocolError) {
        _ = try scan(buffer, untilBoundary: false, onMessage: onMessage)
    }

    /// Scans only as far as the end of the message in progress, so that another reader can take
    /// the stream from there. Returns the bytes consumed: 0 at a boundary, all of `buffer` if the
    /// message goes on past it.
    public mutating func finishMessage(
        _ buffer: UnsafeRawBufferPointer,
        onMessage: (ScannedMessage) -> Void
    ) throws(ProtocolError) -> Int {
        try scan(buffer, untilBoundary: true, onMessage: onMessage)
    }

    private mutating func scan(
        _ buffer: UnsafeRawBufferPointer, untilBoundary: Bool,
        onMessage: (ScannedMessage) -> Void
    ) throws(ProtocolError) -> Int {
        var i = 0
        let n = buffer.count
        while i < n {
            if untilBoundary && isAtMessageBoundary { return i }
            if inBody {
                let take = min(remaining, n - i)
                if collecting {
                    collected.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i..<i + take]))
                }
                remaining -= take
                i += take
                if remaining == 0 { finishBody(onMessage) }
                continue
            }
            // Accumulate the 5-byte header, which may itself be split across reads.
            let byte = buffer[i]
            i += 1
            switch headerCount {
            case 0: headerBytes.0 = byte
            case 1: headerBytes.1 = byte
            case 2: headerBytes.2 = byte
            case 3: headerBytes.3 = byte
            default: headerBytes.4 = byte
            }
            headerCount += 1
            if headerCount < 5 { continue }
            headerCount = 0
            currentID = headerBytes.0
            let rawLength = Int32(bitPattern: UInt32(headerBytes.1) << 24 | UInt32(headerBytes.2) << 16
                | UInt32(headerBytes.3) << 8 | UInt32(headerBytes.4))
            guard rawLength >= 4 else { throw .invalidLength(messageID: currentID, length: Int(rawLength)) }
            let length = Int(rawLength)
            guard length <= maxMessageSize else {
                throw .messageTooLarge(messageID: currentID, length: length, limit: maxMessageSize)
            }
            currentLength = length - 4
            remaining = currentLength
            collecting = inspected[Int(currentID)] && currentLength <= Self.inspectLimit
            if !collecting {
                onMessage(ScannedMessage(id: currentID, bodyLength: currentLength, body: nil))
            }
            if remaining == 0 {
                if collecting { finishBody(onMessage) }
            } else {
                inBody = true
                if collecting { collected.reserveCapacity(currentLength) }
            }
        }
        return n
    }

    private mutating func finishBody(_ onMessage: (ScannedMessage) -> Void) {
        inBody = false
        if collecting {
            let body = collected
            collected = []
            collecting = false
            onMessage(ScannedMessage(id: currentID, bodyLength: currentLength, body: body))
        }
    }
}
