// A blocking TCP client for sending hand-made (and deliberately broken) protocol bytes.
import Foundation
import Glibc
import SwitchyardProtocol

/// Speaks raw bytes to a port on 127.0.0.1 with a timeout on every operation.
final class RawClient {
    let fd: Int32

    init(port: Int, timeoutSeconds: Int = 20) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PQConnection.Failure(message: "socket failed") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw PQConnection.Failure(message: "connect to \(port) failed: \(errno)")
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Half-closes: the peer sees end-of-file but can still answer.
    func finishSending() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the peer closes, `until` is satisfied, or the timeout passes.
    func receive(until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (out, true) }
            if n < 0 { return (out, errno == ECONNRESET) }
            out.append(contentsOf: buffer[0..<n])
            if done(out) { return (out, false) }
        }
    }

    /// Startup as `user` to `database` with trust auth; returns once ReadyForQuery arrives.
    func startup(user: String = "postgres", database: String = "postgres") -> [BackendMessage] {
        send(StartupPacket.startup(StartupMessage(parameters: [("user", user), ("database", database)])).encode())
        return Self.messages(receive(until: Self.endsWithReadyForQuery).bytes)
    }

    func query(_ sql: String) -> [BackendMessage] {
        send(FrontendMessage.query(sql).encoded())
        return Self.messages(receive(until: Self.endsWithReadyForQuery).bytes)
    }

    static func endsWithReadyForQuery(_ bytes: [UInt8]) -> Bool {
        messages(bytes).last.map { if case .readyForQuery = $0 { true } else { false } } ?? false
    }

    /// Splits received bytes into backend messages (a trailing partial message is ignored).
    static func messages(_ bytes: [UInt8]) -> [BackendMessage] {
        var out: [BackendMessage] = []
        var i = 0
        while i + 5 <= bytes.count {
            let length = Int(UInt32(bytes[i + 1]) << 24 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 8 | UInt32(bytes[i + 4]))
            guard length >= 4, i + 1 + length <= bytes.count else { break }
            if let m = try? BackendMessage.decode(id: bytes[i], body: Array(bytes[(i + 5)..<(i + 1 + length)])) { out.append(m) }
            i += 1 + length
        }
        return out
    }

    static func errors(_ messages: [BackendMessage]) -> [ErrorFields] {
        messages.compactMap { if case let .errorResponse(f) = $0 { f } else { nil } }
    }
}

/// A plain HTTP/1.1 GET over RawClient, for the admin port.
func httpGet(port: Int, path: String, headers: [String] = []) throws -> (status: Int, body: String) {
    let client = try RawClient(port: port)
    let extra = headers.map { $0 + "\r\n" }.joined()
    client.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)Connection: close\r\n\r\n".utf8))
    let text = String(decoding: client.receive().bytes, as: UTF8.self)
    guard let headerEnd = text.range(of: "\r\n\r\n") else { return (0, text) }
    let statusLine = text[..<headerEnd.lowerBound].split(separator: "\r\n").first ?? ""
    let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, String(text[headerEnd.upperBound...]))
}
