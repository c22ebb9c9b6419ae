// Bytes waiting for a socket that would not take them all.
import SwitchyardIO

/// The part of a forwarded chunk the destination socket has not accepted yet.
/// While it is non-empty the session stops reading from the source, so it never
/// holds more than one read's worth per direction: that is the backpressure.
struct OutputBuffer {
    private var bytes: [UInt8] = []
    private var offset = 0

    var isEmpty: Bool { offset == bytes.count }
    var count: Int { bytes.count - offset }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        if isEmpty {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 20)
            offset = 0
        }
        bytes.append(contentsOf: chunk)
    }

    mutating func append(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { append($0) }
    }

    /// Writes as much as the link takes. Returns true when everything went out.
    mutating func flush(to socket: Link) throws(SocketError) -> Bool {
        while !isEmpty {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(SocketError) -> Int in try socket.write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            }
            let n = try result.get()
            if n == 0 { return false }
            offset += n
        }
        bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 20)
        offset = 0
        return true
    }
}

/// Writes `chunk` to `socket` directly when nothing is queued, queueing what it does not take.
func forward(_ chunk: UnsafeRawBufferPointer, to socket: Link, queue: inout OutputBuffer) throws(SocketError) {
    if queue.isEmpty {
        let n = try socket.write(chunk)
        if n < chunk.count { queue.append(UnsafeRawBufferPointer(rebasing: chunk[n...])) }
    } else {
        queue.append(chunk)
    }
}

/// What a splicer emits for one chunk, gathered so it leaves in one write: one write per piece
/// would wake the peer for each (a Bind, then its Execute, then the Sync). A chunk that comes out
/// untouched, as one piece, is sent as it is, without a copy.
struct SplicedOutput {
    private let chunk: UnsafeRawBufferPointer
    private var whole = false
    private var bytes: [UInt8] = []

    init(of chunk: UnsafeRawBufferPointer) { self.chunk = chunk }

    mutating func emit(_ piece: UnsafeRawBufferPointer) {
        if bytes.isEmpty && !whole && piece.baseAddress == chunk.baseAddress && piece.count == chunk.count {
            whole = true
            return
        }
        if whole {
            bytes.append(contentsOf: chunk)
            whole = false
        }
        bytes.append(contentsOf: piece)
    }

    /// Writes the gathered output, queueing what the socket does not take.
    func send(to socket: Link, queue: inout OutputBuffer) throws(SocketError) {
        if whole {
            try forward(chunk, to: socket, queue: &queue)
        } else if !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { raw in
                Result { () throws(SocketError) in try forward(raw, to: socket, queue: &queue) }
            }
            try sent.get()
        }
    }

    /// Queues the gathered output without writing.
    func append(to queue: inout OutputBuffer) {
        if whole { queue.append(chunk) } else if !bytes.isEmpty { queue.append(bytes) }
    }
}
