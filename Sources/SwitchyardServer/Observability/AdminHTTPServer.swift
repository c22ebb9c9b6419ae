// The admin HTTP port: /metrics for Prometheus, /health for load balancers.
import Foundation
import Glibc
import Logging
import Synchronization
import SwitchyardIO

/// A deliberately small HTTP/1.1 responder on a thread of its own: one request
/// per connection, bounded reads and timeouts, so a slow scraper cannot hold it.
final class AdminHTTPServer: Sendable {
    private let listener: Socket
    private let renderer: MetricsRenderer
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)
    let port: Int

    init(host: String, port: Int, renderer: MetricsRenderer, logger: Logger) throws(SocketError) {
        listener = try Socket.listen(host: host, port: port, backlog: 64)
        self.port = listener.localPort
        self.renderer = renderer
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
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let (status, type, body): (String, String, String)
        if parts.count >= 2, parts[0] == "GET" {
            let path = parts[1].split(separator: "?").first.map(String.init) ?? ""
            switch path {
            case "/metrics": (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", renderer.render())
            case "/health", "/": (status, type, body) = ("200 OK", "text/plain; charset=utf-8", "ok\n")
            default: (status, type, body) = ("404 Not Found", "text/plain; charset=utf-8", "not found; try /metrics\n")
            }
        } else {
            (status, type, body) = ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET is supported\n")
        }
        let payload = Array(body.utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        try? conn.writeAll(Array(head.utf8) + payload, timeoutMs: 2000)
    }
}
