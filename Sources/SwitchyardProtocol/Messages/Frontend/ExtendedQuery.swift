// Extended-query frontend messages: Parse, Bind, Describe, Execute, Close.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

/// Parse ('P'): prepare a statement, optionally named, with parameter type oids.
public struct Parse: Sendable, Equatable {
    public var statementName: String
    public var query: String
    public var parameterTypes: [Int32]
    public init(statementName: String, query: String, parameterTypes: [Int32] = []) {
        self.statementName = statementName
        self.query = query
        self.parameterTypes = parameterTypes
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> Parse {
        let name = try r.readCString()
        let query = try r.readCString()
        let count = try r.readCount16()
        var types: [Int32] = []
        types.reserveCapacity(count)
        for _ in 0..<count { types.append(try r.readInt32()) }
        return Parse(statementName: name, query: query, parameterTypes: types)
    }

    func encode(into w: inout ByteWriter) {
        w.writeCString(statementName)
        w.writeCString(query)
        w.writeCount16(parameterTypes.count)
        for t in parameterTypes { w.writeInt32(t) }
    }
}

/// Bind ('B'): bind parameter values to a prepared statement, making a portal.
public struct Bind: Sendable, Equatable {
    public var portalName: String
    public var statementName: String
    /// 0 = text, 1 = binary; empty means all text, one means all the same.
    public var parameterFormats: [Int16]
    public var parameters: [[UInt8]?]
    public var resultFormats: [Int16]

    public init(portalName: String, statementName: String, parameterFormats: [Int16] = [], parameters: [[UInt8]?] = [], resultFormats: [Int16] = []) {
        self.portalName = portalName
        self.statementName = statementName
        self.parameterFormats = parameterFormats
        self.parameters = parameters
        self.resultFormats = resultFormats
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> Bind {
        let portal = try r.readCString()
        let statement = try r.readCString()
        let formats = try readInt16Array(&r)
        let count = try r.readCount16()
        var values: [[UInt8]?] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try r.readNullableBytes()) }
        let results = try readInt16Array(&r)
        return Bind(portalName: portal, statementName: statement, parameterFormats: formats, parameters: values, resultFormats: results)
    }

    func encode(into w: inout ByteWriter) {
        w.writeCString(portalName)
        w.writeCString(statementName)
        w.writeCount16(parameterFormats.count)
        for f in parameterFormats { w.writeInt16(f) }
        w.writeCount16(parameters.count)
        for p in parameters { w.writeNullableBytes(p) }
        w.writeCount16(resultFormats.count)
        for f in resultFormats { w.writeInt16(f) }
    }
}

func readInt16Array(_ r: inout ByteReader) throws(ProtocolError) -> [Int16] {
    let count = try r.readCount16()
    var out: [Int16] = []
    out.reserveCapacity(count)
    for _ in 0..<count { out.append(try r.readInt16()) }
    return out
}

/// Whether Describe and Close target a prepared statement ('S') or a portal ('P').
public enum StatementOrPortal: UInt8, Sendable {
    case statement = 0x53   // 'S'
    case portal = 0x50      // 'P'

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> StatementOrPortal {
        let raw = try r.readUInt8()
        guard let v = StatementOrPortal(rawValue: raw) else {
            throw .invalidValue(messageID: r.messageID, what: "target kind \(raw)")
        }
        return v
    }
}

/// Describe ('D'): ask for the description of a statement or portal.
public struct Describe: Sendable, Equatable {
    public var target: StatementOrPortal
    public var name: String
    public init(target: StatementOrPortal, name: String) {
        self.target = target
        self.name = name
    }
}

/// Close ('C'): release a prepared statement or portal.
public struct Close: Sendable, Equatable {
    public var target: StatementOrPortal
    public var name: String
    public init(target: StatementOrPortal, name: String) {
        self.target = target
        self.name = name
    }
}

/// Execute ('E'): run a portal, returning at most `maxRows` rows (0 = all).
public struct Execute: Sendable, Equatable {
    public var portalName: String
    public var maxRows: Int32
    public init(portalName: String, maxRows: Int32 = 0) {
        self.portalName = portalName
        self.maxRows = maxRows
    }
}
