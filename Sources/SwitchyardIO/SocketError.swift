// Errors from socket calls, capturing errno where the call failed.
import Glibc

public struct SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var detail: String?

    public init(_ operation: String, errno: Int32 = Glibc.errno, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var reason: String {
        if let detail { return detail }
        return String(cString: strerror(errno))
    }

    public var description: String { "\(operation): \(reason)" }
}
