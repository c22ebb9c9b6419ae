// Turns SIGTERM, SIGINT and SIGHUP into events read from a signalfd on a thread we own.
import CShims
import Foundation
import Glibc

/// Blocks the given signals process-wide (call before starting other threads) and
/// reports them through a signalfd, so handling happens in normal code, not a signal handler.
public final class SignalWatcher: Sendable {
    private let fd: Int32

    public init(signals: [Int32]) throws(SocketError) {
        let fd = signals.withUnsafeBufferPointer { sy_signalfd($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw SocketError("signalfd") }
        self.fd = fd
    }

    /// Waits up to `timeoutMs` for a signal; nil when none arrived.
    public func wait(timeoutMs: Int32) -> Int32? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, timeoutMs)
        guard rc > 0 else { return nil }
        let sig = sy_signalfd_read(fd)
        return sig == 0 ? nil : sig
    }
}
