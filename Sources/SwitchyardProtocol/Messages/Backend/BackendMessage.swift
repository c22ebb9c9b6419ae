// Every message the server sends, decoded from and encoded to its exact bytes.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

/// A backend message. The proxy decodes only what it must inspect (ReadyForQuery,
/// BackendKeyData, ErrorResponse...); the rest is forwarded as the bytes it arrived in.
public enum BackendMessage: Sendable, Equatable {
    case authentication(Authentication)
    case backendKeyData(BackendKey)
    case bindComplete
    case closeComplete
    case commandComplete(tag: String)
    case copyBothResponse(CopyResponse)
    case copyData([UInt8])
    case copyDone
    case copyInResponse(CopyResponse)
    case copyOutResponse(CopyResponse)
    case dataRow(DataRow)
    case emptyQueryResponse
    case errorResponse(ErrorFields)
    /// The result value, nil for NULL.
    case functionCallResponse([UInt8]?)
    case negotiateProtocolVersion(NegotiateProtocolVersion)
    case noData
    case noticeResponse(ErrorFields)
    case notificationResponse(NotificationResponse)
    case parameterDescription([Int32])
    case parameterStatus(name: String, value: String)
    case parseComplete
    case portalSuspended
    case readyForQuery(TransactionStatus)
    case rowDescription(RowDescription)

    public var id: BackendMessageID {
        switch self {
        case .authentication: .authentication
        case .backendKeyData: .backendKeyData
        case .bindComplete: .bindComplete
        case .closeComplete: .closeComplete
        case .commandComplete: .commandComplete
        case .copyBothResponse: .copyBothResponse
        case .copyData: .copyData
        case .copyDone: .copyDone
        case .copyInResponse: .copyInResponse
        case .copyOutResponse: .copyOutResponse
        case .dataRow: .dataRow
        case .emptyQueryResponse: .emptyQueryResponse
        case .errorResponse: .errorResponse
        case .functionCallResponse: .functionCallResponse
        case .negotiateProtocolVersion: .negotiateProtocolVersion
        case .noData: .noData
        case .noticeResponse: .noticeResponse
        case .notificationResponse: .notificationResponse
        case .parameterDescription: .parameterDescription
        case .parameterStatus: .parameterStatus
        case .parseComplete: .parseComplete
        case .portalSuspended: .portalSuspended
        case .readyForQuery: .readyForQuery
        case .rowDescription: .rowDescription
        }
    }

    /// Decodes one message body; the body must be consumed exactly.
    public static func decode(id rawID: UInt8, body: [UInt8]) throws(ProtocolError) -> BackendMessage {
        guard let id = BackendMessageID(rawValue: rawID) else { throw .unknownMessage(messageID: rawID) }
        var r = ByteReader(body, messageID: rawID)
        let message: BackendMessage
        switch id {
        case .authentication: message = .authentication(try Authentication.decode(&r))
        case .backendKeyData: message = .backendKeyData(try BackendKey.decode(&r))
        case .bindComplete: message = .bindComplete
        case .closeComplete: message = .closeComplete
        case .commandComplete: message = .commandComplete(tag: try r.readCString())
        case .copyBothResponse: message = .copyBothResponse(try CopyResponse.decode(&r))
        case .copyData: message = .copyData(r.readRest())
        case .copyDone: message = .copyDone
        case .copyInResponse: message = .copyInResponse(try CopyResponse.decode(&r))
        case .copyOutResponse: message = .copyOutResponse(try CopyResponse.decode(&r))
        case .dataRow: message = .dataRow(try DataRow.decode(&r))
        case .emptyQueryResponse: message = .emptyQueryResponse
        case .errorResponse: message = .errorResponse(try ErrorFields.decode(&r))
        case .functionCallResponse: message = .functionCallResponse(try r.readNullableBytes())
        case .negotiateProtocolVersion:
            let minor = try r.readInt32()
            let count = Int(try r.readInt32())
            guard count >= 0 else { throw .invalidValue(messageID: rawID, what: "option count \(count)") }
            var options: [String] = []
            for _ in 0..<count { options.append(try r.readCString()) }
            message = .negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: minor, unrecognizedOptions: options))
        case .noData: message = .noData
        case .noticeResponse: message = .noticeResponse(try ErrorFields.decode(&r))
        case .notificationResponse:
            message = .notificationResponse(NotificationResponse(processID: try r.readInt32(), channel: try r.readCString(), payload: try r.readCString()))
        case .parameterDescription:
            let count = try r.readCount16()
            var oids: [Int32] = []
            for _ in 0..<count { oids.append(try r.readInt32()) }
            message = .parameterDescription(oids)
        case .parameterStatus: message = .parameterStatus(name: try r.readCString(), value: try r.readCString())
        case .parseComplete: message = .parseComplete
        case .portalSuspended: message = .portalSuspended
        case .readyForQuery:
            let raw = try r.readUInt8()
            guard let status = TransactionStatus(rawValue: raw) else {
                throw .invalidValue(messageID: rawID, what: "transaction status \(raw)")
            }
            message = .readyForQuery(status)
        case .rowDescription: message = .rowDescription(try RowDescription.decode(&r))
        }
        try r.expectEnd()
        return message
    }

    /// Encodes the whole message: id, length and body.
    public func encode(into w: inout ByteWriter) {
        w.beginMessage(id.rawValue)
        switch self {
        case let .authentication(a): a.encode(into: &w)
        case let .backendKeyData(key):
            w.writeInt32(key.processID)
            w.writeBytes(key.secretKey)
        case .bindComplete, .closeComplete, .copyDone, .emptyQueryResponse, .noData, .parseComplete, .portalSuspended: break
        case let .commandComplete(tag): w.writeCString(tag)
        case let .copyBothResponse(c), let .copyInResponse(c), let .copyOutResponse(c): c.encode(into: &w)
        case let .copyData(data): w.writeBytes(data)
        case let .dataRow(row): row.encode(into: &w)
        case let .errorResponse(f), let .noticeResponse(f): f.encode(into: &w)
        case let .functionCallResponse(value): w.writeNullableBytes(value)
        case let .negotiateProtocolVersion(n):
            w.writeInt32(n.newestMinorVersion)
            w.writeInt32(Int32(n.unrecognizedOptions.count))
            for o in n.unrecognizedOptions { w.writeCString(o) }
        case let .notificationResponse(n):
            w.writeInt32(n.processID)
            w.writeCString(n.channel)
            w.writeCString(n.payload)
        case let .parameterDescription(oids):
            w.writeCount16(oids.count)
            for o in oids { w.writeInt32(o) }
        case let .parameterStatus(name, value):
            w.writeCString(name)
            w.writeCString(value)
        case let .readyForQuery(status): w.writeUInt8(status.rawValue)
        case let .rowDescription(d): d.encode(into: &w)
        }
        w.endMessage()
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }
}
