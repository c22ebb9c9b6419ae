// The one error type the test harness throws, carrying a message written for the person reading a failed test.

/// A harness failure: a missing tool, a process that timed out, a server that would not start.
/// The message says what happened and, where there is one, what to do about it.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
