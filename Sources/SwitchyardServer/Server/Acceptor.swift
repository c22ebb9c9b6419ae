// Accepts client connections and hands each to an event loop.
import Logging
import SwitchyardIO
import SwitchyardProtocol

/// Registered on one loop for the listening socket. New sessions are spread over
/// all loops round-robin; a connection over `max_client_connections`, or during
/// shutdown, gets PostgreSQL's own "too many clients" error and is closed.
final class Acceptor: EventHandler, @unchecked Sendable {
    let listener: Socket
    let context: ServerContext
    let group: EventLoopGroup

    init(listener: Socket, context: ServerContext, group: EventLoopGroup) {
        self.listener = listener
        self.context = context
        self.group = group
    }

    func handle(fd: Int32, readiness: Readiness, loop: EventLoop) {
        // Bounded per wakeup so a connection storm cannot starve this loop's sessions.
        for _ in 0..<64 {
            let accepted: Socket?
            do {
                accepted = try listener.accept()
            } catch {
                context.logger.error("accept failed", metadata: ["error": "\(error)"])
                return
            }
            guard let socket = accepted else { return }
            let limit = context.settings.config.maxClientConnections
            if context.shuttingDown.load(ordering: .relaxed) {
                refuse(socket, SQLState.cannotConnectNow, "switchyard is shutting down")
                continue
            }
            if context.stats.clientsActive.load(ordering: .relaxed) >= limit {
                refuse(socket, SQLState.tooManyConnections, "sorry, too many clients already (max_client_connections = \(limit))")
                continue
            }
            context.stats.clientsAccepted.add(1, ordering: .relaxed)
            let target = group.nextLoop()
            let context = self.context
            target.execute {
                ProxySession(context: context, client: socket, loop: target).start()
            }
        }
    }

    private func refuse(_ socket: Socket, _ sqlState: String, _ message: String) {
        context.stats.clientsRejected.add(1, ordering: .relaxed)
        let error = BackendMessage.errorResponse(ErrorFields(severity: "FATAL", sqlState: sqlState, message: message)).encoded()
        _ = try? socket.write(error.withUnsafeBytes { $0 })
        socket.close()
    }
}
