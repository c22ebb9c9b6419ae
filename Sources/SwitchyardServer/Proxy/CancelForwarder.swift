// Routes a CancelRequest, which arrives on a connection of its own, to the backend it names.
import Foundation
import Glibc
import Logging
import SwitchyardIO
import SwitchyardProtocol

/// A cancel names a backend by the (process id, secret key) the server gave the
/// session. Switchyard passes the server's key through untouched, so forwarding is
/// a matter of finding which upstream that session uses and sending the same
/// packet there. Unknown keys are dropped silently, as PostgreSQL does.
///
/// `done` runs once the server has taken the request (it closes the connection after
/// signalling the backend), so the client's connection is closed only then: a client
/// that waits for that close, as libpq's PQcancel does, knows the cancel has landed,
/// exactly as when it talks to PostgreSQL directly.
enum CancelForwarder {
    static func forward(key: BackendKey, context: ServerContext, logger: Logger, done: @escaping @Sendable () -> Void) {
        guard let session = context.registry.session(for: key),
              let address = session.snapshotDetails.upstreamAddress else {
            logger.info("cancel request for an unknown session ignored", metadata: ["pid": "\(key.processID)"])
            done()
            return
        }
        context.stats.cancelsForwarded.add(1, ordering: .relaxed)
        let packet = StartupPacket.cancel(key).encode()
        // Connecting may take a moment; never on the event loop.
        let thread = Thread {
            defer { done() }
            do {
                let (socket, connected) = try Socket.connect(to: address)
                defer { socket.close() }
                if !connected {
                    var p = pollfd(fd: socket.fd, events: Int16(POLLOUT), revents: 0)
                    guard poll(&p, 1, 5000) > 0, socket.connectResult() == nil else {
                        logger.warning("could not connect to forward a cancel request", metadata: ["upstream": "\(address)"])
                        return
                    }
                }
                try socket.writeAll(packet, timeoutMs: 5000)
                // The server closes the connection once it has signalled the backend.
                var p = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, 5000)
                logger.debug("cancel request forwarded", metadata: ["pid": "\(key.processID)", "session": "\(session.id)"])
            } catch {
                logger.warning("could not forward a cancel request", metadata: ["error": "\(error)"])
            }
        }
        thread.start()
    }
}
