// FunctionCall ('F'): the legacy fast-path function call interface (used by large objects).

public struct FunctionCall: Sendable, Equatable {
    public var functionOID: Int32
    public var argumentFormats: [Int16]
    public var arguments: [[UInt8]?]
    public var resultFormat: Int16

    public init(functionOID: Int32, argumentFormats: [Int16], arguments: [[UInt8]?], resultFormat: Int16) {
        self.functionOID = functionOID
        self.argumentFormats = argumentFormats
        self.arguments = arguments
        self.resultFormat = resultFormat
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> FunctionCall {
        let oid = try r.readInt32()
        let formats = try readInt16Array(&r)
        let count = try r.readCount16()
        var args: [[UInt8]?] = []
        for _ in 0..<count { args.append(try r.readNullableBytes()) }
        let result = try r.readInt16()
        return FunctionCall(functionOID: oid, argumentFormats: formats, arguments: args, resultFormat: result)
    }

    func encode(into w: inout ByteWriter) {
        w.writeInt32(functionOID)
        w.writeCount16(argumentFormats.count)
        for f in argumentFormats { w.writeInt16(f) }
        w.writeCount16(arguments.count)
        for a in arguments { w.writeNullableBytes(a) }
        w.writeInt16(resultFormat)
    }
}
