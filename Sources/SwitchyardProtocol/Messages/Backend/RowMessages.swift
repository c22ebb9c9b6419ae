// Result-set messages: RowDescription ('T'), DataRow ('D'), ParameterDescription ('t').

/// One column of a RowDescription.
public struct ColumnDescription: Sendable, Equatable {
    public var name: String
    public var tableOID: Int32
    public var columnNumber: Int16
    public var typeOID: Int32
    public var typeSize: Int16
    public var typeModifier: Int32
    public var format: Int16

    public init(name: String, tableOID: Int32 = 0, columnNumber: Int16 = 0, typeOID: Int32, typeSize: Int16 = -1, typeModifier: Int32 = -1, format: Int16 = 0) {
        self.name = name
        self.tableOID = tableOID
        self.columnNumber = columnNumber
        self.typeOID = typeOID
        self.typeSize = typeSize
        self.typeModifier = typeModifier
        self.format = format
    }
}

/// RowDescription ('T').
public struct RowDescription: Sendable, Equatable {
    public var columns: [ColumnDescription]
    public init(columns: [ColumnDescription]) { self.columns = columns }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> RowDescription {
        let count = try r.readCount16()
        var columns: [ColumnDescription] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            columns.append(ColumnDescription(
                name: try r.readCString(), tableOID: try r.readInt32(), columnNumber: try r.readInt16(),
                typeOID: try r.readInt32(), typeSize: try r.readInt16(), typeModifier: try r.readInt32(),
                format: try r.readInt16()))
        }
        return RowDescription(columns: columns)
    }

    func encode(into w: inout ByteWriter) {
        w.writeCount16(columns.count)
        for c in columns {
            w.writeCString(c.name)
            w.writeInt32(c.tableOID)
            w.writeInt16(c.columnNumber)
            w.writeInt32(c.typeOID)
            w.writeInt16(c.typeSize)
            w.writeInt32(c.typeModifier)
            w.writeInt16(c.format)
        }
    }
}

/// DataRow ('D'): column values, nil for SQL NULL.
public struct DataRow: Sendable, Equatable {
    public var values: [[UInt8]?]
    public init(values: [[UInt8]?]) { self.values = values }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> DataRow {
        let count = try r.readCount16()
        var values: [[UInt8]?] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try r.readNullableBytes()) }
        return DataRow(values: values)
    }

    func encode(into w: inout ByteWriter) {
        w.writeCount16(values.count)
        for v in values { w.writeNullableBytes(v) }
    }
}

/// CopyInResponse ('G'), CopyOutResponse ('H') and CopyBothResponse ('W') share this body.
public struct CopyResponse: Sendable, Equatable {
    /// 0 = text, 1 = binary.
    public var overallFormat: Int8
    public var columnFormats: [Int16]
    public init(overallFormat: Int8, columnFormats: [Int16]) {
        self.overallFormat = overallFormat
        self.columnFormats = columnFormats
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> CopyResponse {
        CopyResponse(overallFormat: Int8(bitPattern: try r.readUInt8()), columnFormats: try readInt16Array(&r))
    }

    func encode(into w: inout ByteWriter) {
        w.writeUInt8(UInt8(bitPattern: overallFormat))
        w.writeCount16(columnFormats.count)
        for f in columnFormats { w.writeInt16(f) }
    }
}

/// NotificationResponse ('A'): a NOTIFY delivered to a listening session.
public struct NotificationResponse: Sendable, Equatable {
    public var processID: Int32
    public var channel: String
    public var payload: String
    public init(processID: Int32, channel: String, payload: String) {
        self.processID = processID
        self.channel = channel
        self.payload = payload
    }
}

/// NegotiateProtocolVersion ('v'): the newest minor version the server supports and the options it did not recognise.
public struct NegotiateProtocolVersion: Sendable, Equatable {
    public var newestMinorVersion: Int32
    public var unrecognizedOptions: [String]
    public init(newestMinorVersion: Int32, unrecognizedOptions: [String]) {
        self.newestMinorVersion = newestMinorVersion
        self.unrecognizedOptions = unrecognizedOptions
    }
}
