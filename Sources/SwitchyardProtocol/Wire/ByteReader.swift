// Reads PostgreSQL wire primitives (big-endian integers, C strings) from a message body.

/// A cursor over the bytes of one message body. Every read checks bounds and
/// fails with `ProtocolError.truncated` instead of trapping.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    /// The message id, kept so errors can say which message was malformed.
    public let messageID: UInt8

    public init(_ bytes: [UInt8], messageID: UInt8 = 0) {
        self.bytes = bytes
        self.offset = 0
        self.messageID = messageID
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    mutating func need(_ n: Int) throws(ProtocolError) {
        if n < 0 || remaining < n {
            throw .truncated(messageID: messageID, needed: n, available: remaining)
        }
    }

    public mutating func readUInt8() throws(ProtocolError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readInt16() throws(ProtocolError) -> Int16 {
        try need(2)
        let v = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        offset += 2
        return Int16(bitPattern: v)
    }

    /// A 16-bit count, which PostgreSQL reads as unsigned (up to 65535 parameters).
    public mutating func readCount16() throws(ProtocolError) -> Int {
        Int(UInt16(bitPattern: try readInt16()))
    }

    public mutating func readInt32() throws(ProtocolError) -> Int32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return Int32(bitPattern: v)
    }

    public mutating func readBytes(_ n: Int) throws(ProtocolError) -> [UInt8] {
        try need(n)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    /// A length-prefixed value: Int32 length, -1 meaning NULL.
    public mutating func readNullableBytes() throws(ProtocolError) -> [UInt8]? {
        let length = try readInt32()
        if length == -1 { return nil }
        if length < -1 { throw .invalidLength(messageID: messageID, length: Int(length)) }
        return try readBytes(Int(length))
    }

    /// A NUL-terminated string.
    public mutating func readCString() throws(ProtocolError) -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw .missingTerminator(messageID: messageID)
        }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    public mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Fails unless the whole body was consumed: a message must be exactly its declared length.
    public func expectEnd() throws(ProtocolError) {
        if !isAtEnd { throw .trailingBytes(messageID: messageID, count: remaining) }
    }
}
