// Resolved socket addresses: IPv4, IPv6 or a Unix-domain socket path.
import Glibc

/// A resolved address, stored as raw sockaddr bytes so it is a plain Sendable value.
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public let family: Int32
    let storage: [UInt8]
    public let description: String

    /// Resolves `host:port`. A host that is an absolute directory means the
    /// PostgreSQL Unix socket `DIR/.s.PGSQL.PORT`, as libpq does.
    public static func resolve(host: String, port: Int) throws(SocketError) -> SocketAddress {
        if host.hasPrefix("/") {
            return try unix(path: "\(host)/.s.PGSQL.\(port)")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SocketError("resolve \(host)", errno: 0, detail: "could not resolve host \"\(host)\": \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        // Prefer IPv4 when both exist, as "localhost" commonly maps to both.
        var chosen = first
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let c = cursor {
            if c.pointee.ai_family == AF_INET { chosen = c; break }
            cursor = c.pointee.ai_next
        }
        let bytes = Array(UnsafeRawBufferPointer(start: chosen.pointee.ai_addr, count: Int(chosen.pointee.ai_addrlen)))
        let display = chosen.pointee.ai_family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        return SocketAddress(family: chosen.pointee.ai_family, storage: bytes, description: display)
    }

    public static func unix(path: String) throws(SocketError) -> SocketAddress {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        let utf8 = Array(path.utf8)
        guard utf8.count < capacity else {
            throw SocketError("unix socket", errno: ENAMETOOLONG, detail: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: utf8)
            raw[utf8.count] = 0
        }
        let bytes = withUnsafeBytes(of: &addr) { Array($0) }
        return SocketAddress(family: AF_UNIX, storage: bytes, description: path)
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        storage.withUnsafeBytes { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }
}
