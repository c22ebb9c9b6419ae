// Collects the untyped startup-phase packet (length-prefixed, no id byte) from a byte stream.

/// Accumulates bytes until one whole startup packet is present. Anything after
/// it stays in `leftover` for the next phase (a client may pipeline its first query).
public struct StartupPacketReader: Sendable {
    private var buffer: [UInt8] = []

    public init() {}

    public enum Result: Sendable, Equatable {
        case needMore
        case packet(bytes: [UInt8], leftover: [UInt8])
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(ProtocolError) -> Result {
        buffer.append(contentsOf: bytes)
        return try next()
    }

    public mutating func next() throws(ProtocolError) -> Result {
        guard buffer.count >= 4 else { return .needMore }
        let length = Int(Int32(bitPattern: UInt32(buffer[0]) << 24 | UInt32(buffer[1]) << 16 | UInt32(buffer[2]) << 8 | UInt32(buffer[3])))
        guard length >= 8, length <= StartupPacket.maximumLength else { throw .invalidStartupLength(length) }
        guard buffer.count >= length else { return .needMore }
        let packet = Array(buffer[0..<length])
        let leftover = Array(buffer[length...])
        buffer = []
        return .packet(bytes: packet, leftover: leftover)
    }
}
