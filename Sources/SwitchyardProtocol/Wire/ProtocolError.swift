// Errors raised while decoding the PostgreSQL wire protocol.

/// What went wrong decoding a message. Each case names the message id so a
/// log line or a client error can say which message was malformed.
public enum ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(messageID: UInt8, needed: Int, available: Int)
    case trailingBytes(messageID: UInt8, count: Int)
    case missingTerminator(messageID: UInt8)
    case invalidLength(messageID: UInt8, length: Int)
    case unknownMessage(messageID: UInt8)
    case invalidValue(messageID: UInt8, what: String)
    case messageTooLarge(messageID: UInt8, length: Int, limit: Int)
    case invalidStartupLength(Int)
    case unsupportedProtocolVersion(major: Int, minor: Int)

    public var description: String {
        switch self {
        case let .truncated(id, needed, available):
            return "message \(Self.name(id)) is truncated: needed \(needed) more bytes, \(available) left"
        case let .trailingBytes(id, count):
            return "message \(Self.name(id)) has \(count) unexpected trailing bytes"
        case let .missingTerminator(id):
            return "message \(Self.name(id)) has a string without its NUL terminator"
        case let .invalidLength(id, length):
            return "message \(Self.name(id)) declares an invalid length \(length)"
        case let .unknownMessage(id):
            return "unknown message type \(Self.name(id))"
        case let .invalidValue(id, what):
            return "message \(Self.name(id)) has an invalid \(what)"
        case let .messageTooLarge(id, length, limit):
            return "message \(Self.name(id)) of \(length) bytes exceeds max_message_size (\(limit) bytes)"
        case let .invalidStartupLength(length):
            return "invalid startup packet length \(length)"
        case let .unsupportedProtocolVersion(major, minor):
            return "unsupported frontend protocol \(major).\(minor): Switchyard supports 3.0 and later 3.x"
        }
    }

    static func name(_ id: UInt8) -> String {
        if id >= 0x20 && id < 0x7f { return "'\(Character(UnicodeScalar(id)))'" }
        return "0x" + String(id, radix: 16)
    }
}
