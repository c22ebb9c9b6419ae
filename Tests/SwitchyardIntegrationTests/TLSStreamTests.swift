// The non-blocking TLS layer on its own, over a socket pair: handshakes, bytes OpenSSL holds decrypted, end of stream, and host-name checks.
import Foundation
import Glibc
import SwitchyardIO
import SwitchyardTestSupport
import Testing

@Suite(.timeLimit(.minutes(2)))
final class TLSStreamTests {
    let certificates: TestCertificates

    init() throws {
        certificates = try TestCertificates()
    }

    deinit { certificates.remove() }

    /// A connected pair of non-blocking sockets, closed by the caller.
    func socketPair() throws -> (Socket, Socket) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
            throw HarnessError("socketpair: \(String(cString: strerror(errno)))")
        }
        return (Socket(fd: fds[0]), Socket(fd: fds[1]))
    }

    /// Runs both handshakes until both are done (bounded: each step moves one flight of messages).
    func handshake(_ server: TLSStream, _ client: TLSStream) throws {
        var serverDone = false
        var clientDone = false
        for _ in 0..<50 where !(serverDone && clientDone) {
            if !clientDone { clientDone = try client.handshake() == .done }
            if !serverDone { serverDone = try server.handshake() == .done }
        }
        #expect(serverDone && clientDone)
    }

    func pair(host: String = "127.0.0.1") throws -> (server: TLSStream, client: TLSStream, sockets: (Socket, Socket)) {
        let sockets = try socketPair()
        let server = try TLSContext.server(certificate: certificates.serverCertificate, privateKey: certificates.serverKey, clientCA: nil)
            .accepting(sockets.0)
        let client = try TLSContext.client(rootCertificates: certificates.caCertificate, verifyChain: true, verifyHostName: true)
            .connecting(sockets.1, host: host)
        return (server, client, sockets)
    }

    @Test func decryptedBytesWaitInOpenSSLUntilReadAndEndOfStreamIsSeen() throws {
        let (server, client, sockets) = try pair()
        defer { sockets.0.close(); sockets.1.close() }
        try handshake(server, client)
        #expect(server.protocolVersion == "TLSv1.3")
        #expect(!server.hasPeerCertificate)

        let sent = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let written = try sent.withUnsafeBytes { try client.write($0) }
        #expect(written == sent.count)

        // A small buffer takes part of a record; the rest is decrypted and held by OpenSSL, where
        // epoll cannot see it: hasBufferedBytes is what tells the session to read again at once.
        var received: [UInt8] = []
        var small = [UInt8](repeating: 0, count: 1000)
        let first = try small.withUnsafeMutableBytes { try server.read(into: $0) }
        #expect(first == .bytes(1000))
        received += small
        #expect(server.hasBufferedBytes)
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        for _ in 0..<100 where received.count < sent.count {
            if case let .bytes(n) = try buffer.withUnsafeMutableBytes({ try server.read(into: $0) }) {
                received += buffer[0..<n]
            }
        }
        #expect(received == sent)
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == .wouldBlock)

        client.shutdown()
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == .endOfFile)
    }

    @Test func verifyFullRefusesACertificateForAnotherHost() throws {
        let (server, client, sockets) = try pair(host: "db.example.org")
        defer { sockets.0.close(); sockets.1.close() }
        do {
            try handshake(server, client)
            Issue.record("the handshake succeeded for a host the certificate does not name")
        } catch let error as TLSError {
            #expect(error.reason.contains("certificate verify failed"), "\(error)")
            #expect(error.reason.contains("hostname mismatch"), "\(error)")
        }
    }
}
