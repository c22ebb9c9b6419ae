// The admin HTTP port: /metrics for Prometheus (behind the admin password when one is set), /health for load balancers.
import Foundation
import SwitchyardConfig
import Glibc
import Logging
import Synchronization
import SwitchyardIO

/// A deliberately small HTTP/1.1 responder on a thread of its own: one request
/// per connection, bounded reads and timeouts, so a slow scraper cannot hold it.
final class AdminHTTPServer: Sendable {
    private let listener: Socket
    private let renderer: MetricsRenderer
    /// The admin console's users and password, as configured now: with a password, /metrics asks for
    /// them (HTTP Basic); without one the port may only listen on a loopback address (the config says so).
    private let credentials: @Sendable () -> AdminConsoleConfig
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)
    let port: Int

    init(host: String, port: Int, renderer: MetricsRenderer, credentials: @escaping @Sendable () -> AdminConsoleConfig = { AdminConsoleConfig() },
         logger: Logger) throws(SocketError) {
        listener = try Socket.listen(host: host, port: port, backlog: 64)
        self.port = listener.localPort
        self.renderer = renderer
        self.credentials = credentials
        self.logger = logger
    }

    func start() {
        let t = Thread { [self] in
            run()
            done.store(true, ordering: .releasing)
        }
        t.name = "switchyard-admin-http"
        t.start()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        let deadline = ContinuousClock.now + .seconds(2)
        while !done.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(5_000) }
        listener.close()
    }

    private func run() {
        while !stopped.load(ordering: .acquiring) {
            var p = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            guard let conn = try? listener.accept() else { continue }
            serve(conn)
            conn.close()
        }
    }

    /// Whether the request's headers carry HTTP Basic credentials of an admin user, or none are needed
    /// (no admin password: the port listens on a loopback address only).
    static func authorized(_ headers: ArraySlice<Substring>, _ admin: AdminConsoleConfig) -> Bool {
        guard let password = admin.password else { return true }
        for header in headers {
            guard let colon = header.firstIndex(of: ":"), header[..<colon].lowercased() == "authorization" else { continue }
            let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard value.lowercased().hasPrefix("basic "), let decoded = Data(base64Encoded: String(value.dropFirst(6))),
                  let text = String(data: decoded, encoding: .utf8), let split = text.firstIndex(of: ":") else { return false }
            let user = String(text[..<split]), given = Array(text[text.index(after: split)...].utf8), expected = Array(password.utf8)
            // Compare every byte, so the time taken does not tell how much of the password was right.
            var difference = given.count ^ expected.count
            for i in 0..<max(given.count, expected.count) {
                difference |= Int((i < given.count ? given[i] : 0) ^ (i < expected.count ? expected[i] : 0))
            }
            return difference == 0 && admin.users.contains(user)
        }
        return false
    }

    private func serve(_ conn: Socket) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .seconds(2)
        while request.count < 16384, ContinuousClock.now < deadline {
            if let end = request.firstRange(of: Array("\r\n\r\n".utf8)) { request = Array(request[..<end.lowerBound]); break }
            var p = pollfd(fd: conn.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let result = buffer.withUnsafeMutableBytes { raw in Result { () throws(SocketError) -> ReadResult in try conn.read(into: raw) } }
            guard case let .success(r) = result else { return }
            switch r {
            case let .bytes(n): request.append(contentsOf: buffer[0..<n])
            case .wouldBlock: continue
            case .endOfFile: return
            }
        }
        let lines = String(decoding: request, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let line = lines.first.map(String.init) ?? ""
        let parts = line.split(separator: " ")
        let (status, type, body): (String, String, String)
        var extraHeaders = ""
        if parts.count >= 2, parts[0] == "GET" {
            let path = parts[1].split(separator: "?").first.map(String.init) ?? ""
            switch path {
            case "/metrics" where !Self.authorized(lines.dropFirst(), credentials()):
                (status, type, body) = ("401 Unauthorized", "text/plain; charset=utf-8",
                                        "authentication required: /metrics takes a user of admin_console.users and admin_console.password (HTTP Basic)\n")
                extraHeaders = "WWW-Authenticate: Basic realm=\"switchyard\", charset=\"UTF-8\"\r\n"
                logger.warning("admin HTTP request refused: missing or wrong credentials", metadata: ["client": "\(conn.peerDescription)"])
            case "/metrics": (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", renderer.render())
            case "/health", "/": (status, type, body) = ("200 OK", "text/plain; charset=utf-8", "ok\n")
            default: (status, type, body) = ("404 Not Found", "text/plain; charset=utf-8", "not found; try /metrics\n")
            }
        } else {
            (status, type, body) = ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET is supported\n")
        }
        let payload = Array(body.utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(payload.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
        try? conn.writeAll(Array(head.utf8) + payload, timeoutMs: 2000)
    }
}
