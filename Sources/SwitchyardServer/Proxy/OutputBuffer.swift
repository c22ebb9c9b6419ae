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
