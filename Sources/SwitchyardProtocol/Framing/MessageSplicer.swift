// Forwards a byte stream untouched except for chosen messages, which are held whole and may be replaced.

/// Where `MessageScanner` only watches, the splicer can change the stream: messages
/// whose id is in `hold` (a Query or Parse the router may rewrite) are collected
/// whole and handed to the caller, who returns the bytes to send in their place
/// (often the original). Every other byte is emitted as a slice of the chunk it
/// arrived in, so untouched traffic is still forwarded without copying.
public struct MessageSplicer: Sendable {
    public let maxMessageSize: Int
    private let held: [Bool]

    // A held message being collected: its header and body so far.
    private var holding = false
    private var heldBytes: [UInt8] = []
    private var heldRemaining = 0
    // Header bytes seen but not yet emitted or held (a header can straddle reads).
    private var pendingHeader: [UInt8] = []
    private var passRemaining = 0

    public init(maxMessageSize: Int, hold ids: Set<UInt8>) {
        self.maxMessageSize = maxMessageSize
        var table = [Bool](repeating: false, count: 256)
        for id in ids { table[Int(id)] = true }
        held = table
    }

    /// True between messages, with nothing held back.
    public var isAtMessageBoundary: Bool { !holding && pendingHeader.isEmpty && passRemaining == 0 }

    /// Processes one chunk. `onMessage` sees every message at its header; `onHeld`
    /// receives each held message whole (id, body) and returns the bytes to emit in
    /// its place, or nil to emit it as it arrived (the body is read in place when the chunk holds
    /// it whole, and is valid only during the call); `emit` receives the output in order.
    /// `holding`, asked at each header, can turn holding off for a while: messages of the
    /// held kinds then pass like the others.
    public mutating func process(
        _ chunk: UnsafeRawBufferPointer,
        onMessage: (ScannedMessage) -> Void,
        onHeld: (UInt8, UnsafeRawBufferPointer) -> [UInt8]?,
        holding isHolding: (UInt8) -> Bool = { _ in true },
        emit: (UnsafeRawBufferPointer) -> Void
    ) throws(ProtocolError) {
        var i = 0
        let n = chunk.count
        var passStart = 0
        func flushPass(upTo end: Int) {
            if end > passStart { emit(UnsafeRawBufferPointer(rebasing: chunk[passStart..<end])) }
        }
        while i < n {
            if holding {
                let take = min(heldRemaining, n - i)
                heldBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<i + take]))
                heldRemaining -= take
                i += take
                passStart = i
                if heldRemaining == 0 { finishHeld(onHeld: onHeld, emit: emit) }
                continue
            }
            if passRemaining > 0 {
                let take = min(passRemaining, n - i)
                passRemaining -= take
                i += take
                continue
            }
            // At a header: its 5 bytes read in place when the chunk holds them all (the usual
            // case, with no list to fill), else gathered across chunks.
            let headerStartInChunk = i
            let take: Int
            let id: UInt8
            let length: Int
            if pendingHeader.isEmpty && n - i >= 5 {
                take = 5
                id = chunk[i]
                length = Int(Int32(bitPattern: UInt32(chunk[i + 1]) << 24 | UInt32(chunk[i + 2]) << 16
                    | UInt32(chunk[i + 3]) << 8 | UInt32(chunk[i + 4])))
                i += 5
            } else {
                take = min(5 - pendingHeader.count, n - i)
                pendingHeader.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<i + take]))
                i += take
                if pendingHeader.count < 5 {
                    // The rest of the header comes with the next chunk; hold these bytes back for now.
                    flushPass(upTo: headerStartInChunk)
                    passStart = i
                    continue
                }
                id = pendingHeader[0]
                length = Int(Int32(bitPattern: UInt32(pendingHeader[1]) << 24 | UInt32(pendingHeader[2]) << 16
                    | UInt32(pendingHeader[3]) << 8 | UInt32(pendingHeader[4])))
            }
            guard length >= 4 else { throw .invalidLength(messageID: id, length: length) }
            guard length <= maxMessageSize else {
                throw .messageTooLarge(messageID: id, length: length, limit: maxMessageSize)
            }
            onMessage(ScannedMessage(id: id, bodyLength: length - 4, body: nil))
            let headerWasSplit = headerStartInChunk == 0 && take < 5
            if held[Int(id)] && isHolding(id) && !headerWasSplit && length - 4 <= n - i {
                // Whole in this chunk: given back unchanged, it stays part of the run of bytes passed
                // through, so a chunk nobody changes still leaves as one slice of itself.
                let body = UnsafeRawBufferPointer(rebasing: chunk[i..<(i + length - 4)])
                pendingHeader = []
                i += length - 4
                if let replacement = onHeld(id, body) {
                    flushPass(upTo: headerStartInChunk)
                    replacement.withUnsafeBytes { emit($0) }
                    passStart = i
                }
            } else if held[Int(id)] && isHolding(id) {
                flushPass(upTo: headerStartInChunk)
                holding = true
                heldBytes = pendingHeader.isEmpty
                    ? Array(UnsafeRawBufferPointer(rebasing: chunk[headerStartInChunk..<(headerStartInChunk + 5)])) : pendingHeader
                heldRemaining = length - 4
                pendingHeader = []
                passStart = i
                if heldRemaining == 0 { finishHeld(onHeld: onHeld, emit: emit) }
            } else {
                if headerWasSplit {
                    // Emit the part of the header that arrived with the previous chunk.
                    let earlier = Array(pendingHeader[0..<(5 - take)])
                    earlier.withUnsafeBytes { emit($0) }
                }
                pendingHeader = []
                passRemaining = length - 4
            }
        }
        // Inside a held message or a split header, everything before it was flushed when it began.
        if !holding && pendingHeader.isEmpty { flushPass(upTo: n) }
    }

    private mutating func finishHeld(onHeld: (UInt8, UnsafeRawBufferPointer) -> [UInt8]?, emit: (UnsafeRawBufferPointer) -> Void) {
        holding = false
        let whole = heldBytes
        heldBytes = []
        if let replacement = whole.withUnsafeBytes({ onHeld(whole[0], UnsafeRawBufferPointer(rebasing: $0[5...])) }) {
            replacement.withUnsafeBytes { emit($0) }
        } else {
            whole.withUnsafeBytes { emit($0) }
        }
    }
}
