// Loopback TCP helpers: picking a free port and waiting for a server to accept connections.
import Foundation
import Glibc
import Synchronization

/// Ports handed out by this process, so two tests running in parallel never get the same one
/// even when the kernel offers a just-released port again.
private let handedOutPorts = Mutex<Set<Int>>([])

/// A TCP port on 127.0.0.1 that was free a moment ago: bind to port 0, read the port the kernel
/// chose, close. Another process can still take it before the caller binds, so servers that
/// can retry on EADDRINUSE should.
public func freeTCPPort() -> Int {
    for _ in 0..<50 {
        guard let port = kernelChosenPort() else { continue }
        let isNew = handedOutPorts.withLock { $0.insert(port).inserted }
        if isNew {
            return port
        }
    }
    preconditionFailure("freeTCPPort: cannot bind a TCP socket on 127.0.0.1: \(String(cString: strerror(errno)))")
}

private func kernelChosenPort() -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = loopbackAddress(port: 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { return nil }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { return nil }
    return Int(UInt16(bigEndian: address.sin_port))
}

private func loopbackAddress(port: Int, host: String = "127.0.0.1") -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
    _ = inet_pton(AF_INET, host, &address.sin_addr)
    return address
}

/// Waits until something accepts TCP connections on `host:port` (an IPv4 address, or "localhost"),
/// trying every 20 ms; throws after `timeout`. Each attempt is a non-blocking connect bounded by
/// the time left, so a full backlog cannot stretch the wait.
public func waitForTCPPort(_ port: Int, host: String = "127.0.0.1", timeout: Duration) throws {
    let address = host == "localhost" ? "127.0.0.1" : host
    var probe = in_addr()
    guard inet_pton(AF_INET, address, &probe) == 1 else {
        throw HarnessError("waitForTCPPort: \(host) is not an IPv4 address")
    }
    let deadline = ContinuousClock.now + timeout
    var lastError = "no attempt made"
    while true {
        let remaining = deadline - ContinuousClock.now
        if remaining <= .zero {
            throw HarnessError("nothing accepted TCP connections on \(host):\(port) within \(timeout) (last error: \(lastError))")
        }
        let attemptMilliseconds = Int32(min(1_000, max(1, (remaining / .milliseconds(1)).rounded(.up))))
        switch tryConnect(port: port, host: address, timeoutMilliseconds: attemptMilliseconds) {
        case nil:
            return
        case let error?:
            lastError = error
        }
        usleep(20_000)
    }
}

/// One connection attempt; nil on success, else what went wrong.
private func tryConnect(port: Int, host: String, timeoutMilliseconds: Int32) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { return String(cString: strerror(errno)) }
    defer { close(fd) }
    var address = loopbackAddress(port: port, host: host)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if connected == 0 {
        return nil
    }
    guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    guard poll(&entry, 1, timeoutMilliseconds) == 1 else { return "connect timed out" }
    var socketError: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
    return socketError == 0 ? nil : String(cString: strerror(socketError))
}
