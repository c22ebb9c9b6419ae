// A non-blocking socket: a small Sendable value around a file descriptor.
import CShims
import Glibc

/// Result of a non-blocking read.
public enum ReadResult: Sendable, Equatable {
    case bytes(Int)
    case wouldBlock
    case endOfFile
}

/// A socket file descriptor. It is a value: closing is explicit and done once by its owner.
public struct Socket: Sendable, Hashable {
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    /// Creates a listening TCP socket bound to `host:port` (port 0 picks a free port).
    public static func listen(host: String, port: Int, backlog: Int32 = 1024) throws(SocketError) -> Socket {
        let address = try SocketAddress.resolve(host: host, port: port)
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        guard rc == 0 else {
            let e = SocketError("bind \(address)")
            Glibc.close(fd)
            throw e
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = SocketError("listen \(address)")
            Glibc.close(fd)
            throw e
        }
        return Socket(fd: fd)
    }

    /// Starts a non-blocking connect. Returns true when already connected,
    /// false when in progress (wait for writability, then call `connectResult`).
    public static func connect(to address: SocketAddress) throws(SocketError) -> (Socket, connected: Bool) {
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return (Socket(fd: fd), true) }
        let err = errno
        if err == EINPROGRESS || err == EAGAIN { return (Socket(fd: fd), false) }
        Glibc.close(fd)
        throw SocketError("connect \(address)", errno: err)
    }

    /// After a non-blocking connect became writable: nil on success, else the error.
    public func connectResult() -> SocketError? {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return SocketError("getsockopt") }
        return err == 0 ? nil : SocketError("connect", errno: err)
    }

    /// Accepts one pending connection, non-blocking and close-on-exec; nil when none is pending.
    public func accept() throws(SocketError) -> Socket? {
        while true {
            let fd = sy_accept(self.fd)
            if fd >= 0 { return Socket(fd: fd) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case ECONNABORTED, EPROTO: continue
            default: throw SocketError("accept")
            }
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> ReadResult {
        while true {
            let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SocketError("read")
            }
        }
    }

    /// Writes what the socket accepts now; returns the count written (0 when it would block).
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        if buffer.isEmpty { return 0 }
        while true {
            let n = Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: throw SocketError("write")
            }
        }
    }

    /// Writes everything, polling while the socket is full. For short replies on
    /// side paths (a cancel, an error before closing), bounded by `timeoutMs`.
    public func writeAll(_ bytes: [UInt8], timeoutMs: Int32 = 1000) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(SocketError) -> Int in try write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            }
            let n = try result.get()
            offset += n
            if n == 0 {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, timeoutMs) <= 0 { throw SocketError("write", errno: ETIMEDOUT) }
            }
        }
    }

    public func setNoDelay() { _ = sy_set_nodelay(fd) }

    public func setKeepalive(idleSeconds: Int, intervalSeconds: Int, count: Int) {
        _ = sy_set_keepalive(fd, Int32(idleSeconds), Int32(intervalSeconds), Int32(count))
    }

    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    public func close() { _ = Glibc.close(fd) }

    /// The local port, for listeners bound to port 0.
    public var localPort: Int {
        var addr = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return 0 }
        return withUnsafeBytes(of: &addr) { raw -> Int in
            let family = raw.load(as: sa_family_t.self)
            if Int32(family) == AF_INET || Int32(family) == AF_INET6 {
                // sin_port and sin6_port share the offset right after the family.
                let hi = Int(raw[2]), lo = Int(raw[3])
                return hi << 8 | lo
            }
            return 0
        }
    }

    /// The peer's address as text, for logs and SHOW CLIENTS.
    public var peerDescription: String {
        var addr = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard rc == 0 else { return "unknown" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard ok == 0 else { return "unix" }
        return "\(cString(host)):\(cString(serv))"
    }
}

func cString(_ chars: [CChar]) -> String {
    let bytes = chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
