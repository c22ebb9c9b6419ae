// ErrorResponse ('E') and NoticeResponse ('N'): typed fields such as severity, SQLSTATE and message.
// https://www.postgresql.org/docs/current/protocol-error-fields.html

/// The field codes of ErrorResponse and NoticeResponse.
public enum ErrorField: UInt8, Sendable {
    case severity = 0x53            // 'S' localized
    case severityNonLocalized = 0x56 // 'V'
    case sqlState = 0x43            // 'C'
    case message = 0x4D             // 'M'
    case detail = 0x44              // 'D'
    case hint = 0x48                // 'H'
    case position = 0x50            // 'P'
    case internalPosition = 0x70    // 'p'
    case internalQuery = 0x71       // 'q'
    case whereContext = 0x57        // 'W'
    case schemaName = 0x73          // 's'
    case tableName = 0x74           // 't'
    case columnName = 0x63          // 'c'
    case dataTypeName = 0x64        // 'd'
    case constraintName = 0x6E      // 'n'
    case file = 0x46                // 'F'
    case line = 0x4C                // 'L'
    case routine = 0x52             // 'R'
}

/// The fields of an ErrorResponse or NoticeResponse, in the order sent.
/// Unknown field codes are kept (PostgreSQL says clients must ignore them, a proxy must keep them).
public struct ErrorFields: Sendable, Equatable {
    public var fields: [(code: UInt8, value: String)]

    public init(fields: [(code: UInt8, value: String)]) { self.fields = fields }

    /// An error as Switchyard itself reports it to a client.
    public init(severity: String, sqlState: String, message: String, detail: String? = nil, hint: String? = nil) {
        var f: [(code: UInt8, value: String)] = [
            (ErrorField.severity.rawValue, severity),
            (ErrorField.severityNonLocalized.rawValue, severity),
            (ErrorField.sqlState.rawValue, sqlState),
            (ErrorField.message.rawValue, message),
        ]
        if let detail { f.append((ErrorField.detail.rawValue, detail)) }
        if let hint { f.append((ErrorField.hint.rawValue, hint)) }
        fields = f
    }

    public subscript(field: ErrorField) -> String? {
        fields.first { $0.code == field.rawValue }?.value
    }

    public var sqlState: String? { self[.sqlState] }
    public var message: String? { self[.message] }
    public var severity: String? { self[.severityNonLocalized] ?? self[.severity] }

    public static func == (a: Self, b: Self) -> Bool {
        a.fields.map(\.code) == b.fields.map(\.code) && a.fields.map(\.value) == b.fields.map(\.value)
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> ErrorFields {
        var fields: [(code: UInt8, value: String)] = []
        while true {
            let code = try r.readUInt8()
            if code == 0 { break }
            fields.append((code, try r.readCString()))
        }
        return ErrorFields(fields: fields)
    }

    func encode(into w: inout ByteWriter) {
        for (code, value) in fields {
            w.writeUInt8(code)
            w.writeCString(value)
        }
        w.writeUInt8(0)
    }
}
