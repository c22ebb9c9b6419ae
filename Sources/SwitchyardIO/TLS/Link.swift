// One end of a proxied session: a socket, with TLS over it once negotiated.
import Glibc

/// A socket and, after a TLS handshake, the stream that encrypts it. Sessions read and write
/// through this value; without TLS each call is the socket's own call behind one nil check,
/// so plaintext traffic takes no extra copy, allocation or syscall.
public struct Link: @unchecked Sendable {
    public let socket: Socket
    public private(set) var tls: TLSStream?

    public init(_ socket: Socket) {
        self.socket = socket
    }

    public var fd: Int32 { socket.fd }
    public var isTLS: Bool { tls != nil }

    /// From now on, bytes go through `stream` (its handshake may still be under way).
    public mutating func startTLS(_ stream: TLSStream) {
        tls = stream
    }

    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> ReadResult {
        guard let tls else { return try socket.read(into: buffer) }
        return try tls.read(into: buffer)
    }

    @inline(__always)
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        guard let tls else { return try socket.write(buffer) }
        return try tls.write(buffer)
    }

    /// Writes everything, polling while the link is full; for short replies on side paths, bounded by `timeoutMs`.
    public func writeAll(_ bytes: [UInt8], timeoutMs: Int32 = 1000) throws(SocketError) {
        guard let tls else { return try socket.writeAll(bytes, timeoutMs: timeoutMs) }
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(SocketError) -> Int in try tls.write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            }
            let n = try result.get()
            offset += n
            if n == 0 {
                var p = pollfd(fd: socket.fd, events: Int16(tls.writeWantsRead ? POLLIN : POLLOUT), revents: 0)
                if poll(&p, 1, timeoutMs) <= 0 { throw SocketError("write", errno: ETIMEDOUT) }
            }
        }
    }

    /// Bytes already received that a read returns without the socket becoming readable again.
    public var hasBufferedBytes: Bool { tls?.hasBufferedBytes ?? false }

    /// Readiness the TLS layer needs besides what the session asks for: a read or write that stopped
    /// on the other direction.
    public var extraInterest: Interest {
        guard let tls else { return [] }
        var interest: Interest = []
        if tls.readWantsWrite { interest.insert(.writable) }
        if tls.writeWantsRead { interest.insert(.readable) }
        return interest
    }

    public func setNoDelay() { socket.setNoDelay() }

    public func setKeepalive(idleSeconds: Int, intervalSeconds: Int, count: Int) {
        socket.setKeepalive(idleSeconds: idleSeconds, intervalSeconds: intervalSeconds, count: count)
    }

    public func connectResult() -> SocketError? { socket.connectResult() }

    public var peerDescription: String { socket.peerDescription }

    /// Sends TLS close_notify when it can without waiting, then closes the socket.
    public func close() {
        tls?.shutdown()
        socket.close()
    }
}
