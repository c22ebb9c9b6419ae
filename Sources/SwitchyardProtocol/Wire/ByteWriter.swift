// Builds PostgreSQL wire messages; the length is filled in once the body is written.

/// Appends wire primitives to a byte array. `beginMessage`/`endMessage` reserve
/// the Int32 length and patch it afterwards, so encoders never count bytes by hand.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]
    /// Where the length of the message being written goes (-1 when none is open), and those of
    /// messages begun around it: kept out of a list, which would be an allocation per message
    /// for the usual one open at a time.
    private var lengthOffset = -1
    private var enclosingLengthOffsets: [Int] = []

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Starts a typed message: the id byte and a placeholder length.
    public mutating func beginMessage(_ id: UInt8) {
        bytes.append(id)
        beginUntypedMessage()
    }

    /// Starts a startup-phase packet, which has a length but no id byte.
    public mutating func beginUntypedMessage() {
        if lengthOffset >= 0 { enclosingLengthOffsets.append(lengthOffset) }
        lengthOffset = bytes.count
        writeInt32(0)
    }

    public mutating func endMessage() {
        precondition(lengthOffset >= 0, "endMessage without beginMessage")
        let start = lengthOffset
        lengthOffset = enclosingLengthOffsets.popLast() ?? -1
        let length = UInt32(bytes.count - start)
        bytes[start] = UInt8(truncatingIfNeeded: length >> 24)
        bytes[start + 1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[start + 3] = UInt8(truncatingIfNeeded: length)
    }

    public mutating func writeUInt8(_ v: UInt8) { bytes.append(v) }

    public mutating func writeInt16(_ v: Int16) {
        let u = UInt16(bitPattern: v)
        bytes.append(UInt8(u >> 8))
        bytes.append(UInt8(u & 0xff))
    }

    /// A 16-bit count, written unsigned as PostgreSQL reads it.
    public mutating func writeCount16(_ n: Int) {
        writeInt16(Int16(bitPattern: UInt16(truncatingIfNeeded: n)))
    }

    public mutating func writeInt32(_ v: Int32) {
        let u = UInt32(bitPattern: v)
        bytes.append(UInt8(u >> 24))
        bytes.append(UInt8((u >> 16) & 0xff))
        bytes.append(UInt8((u >> 8) & 0xff))
        bytes.append(UInt8(u & 0xff))
    }

    public mutating func writeBytes(_ v: some Sequence<UInt8>) { bytes.append(contentsOf: v) }

    public mutating func writeNullableBytes(_ v: [UInt8]?) {
        guard let v else { writeInt32(-1); return }
        writeInt32(Int32(v.count))
        bytes.append(contentsOf: v)
    }

    public mutating func writeCString(_ s: String) {
        bytes.append(contentsOf: s.utf8)
        bytes.append(0)
    }
}
