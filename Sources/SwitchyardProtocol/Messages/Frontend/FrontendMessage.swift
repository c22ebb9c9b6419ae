// Every message a client sends after startup, decoded from and encoded to its exact bytes.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

/// A frontend message. The proxy decodes only what it must inspect; everything
/// else is forwarded as the bytes it arrived in.
public enum FrontendMessage: Sendable, Equatable {
    case bind(Bind)
    case close(Close)
    case copyData([UInt8])
    case copyDone
    case copyFail(message: String)
    case describe(Describe)
    case execute(Execute)
    case flush
    case functionCall(FunctionCall)
    case parse(Parse)
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share 'p';
    /// which one it is depends on the authentication request, so the body stays raw.
    case password([UInt8])
    case query(String)
    case sync
    case terminate

    public var id: FrontendMessageID {
        switch self {
        case .bind: .bind
        case .close: .close
        case .copyData: .copyData
        case .copyDone: .copyDone
        case .copyFail: .copyFail
        case .describe: .describe
        case .execute: .execute
        case .flush: .flush
        case .functionCall: .functionCall
        case .parse: .parse
        case .password: .password
        case .query: .query
        case .sync: .sync
        case .terminate: .terminate
        }
    }

    /// Decodes one message body; the body must be consumed exactly.
    public static func decode(id rawID: UInt8, body: [UInt8]) throws(ProtocolError) -> FrontendMessage {
        guard let id = FrontendMessageID(rawValue: rawID) else { throw .unknownMessage(messageID: rawID) }
        var r = ByteReader(body, messageID: rawID)
        let message: FrontendMessage
        switch id {
        case .bind: message = .bind(try Bind.decode(&r))
        case .close: message = .close(Close(target: try StatementOrPortal.decode(&r), name: try r.readCString()))
        case .copyData: message = .copyData(r.readRest())
        case .copyDone: message = .copyDone
        case .copyFail: message = .copyFail(message: try r.readCString())
        case .describe: message = .describe(Describe(target: try StatementOrPortal.decode(&r), name: try r.readCString()))
        case .execute: message = .execute(Execute(portalName: try r.readCString(), maxRows: try r.readInt32()))
        case .flush: message = .flush
        case .functionCall: message = .functionCall(try FunctionCall.decode(&r))
        case .parse: message = .parse(try Parse.decode(&r))
        case .password: message = .password(r.readRest())
        case .query: message = .query(try r.readCString())
        case .sync: message = .sync
        case .terminate: message = .terminate
        }
        try r.expectEnd()
        return message
    }

    /// Encodes the whole message: id, length and body.
    public func encode(into w: inout ByteWriter) {
        w.beginMessage(id.rawValue)
        switch self {
        case let .bind(m): m.encode(into: &w)
        case let .close(m):
            w.writeUInt8(m.target.rawValue)
            w.writeCString(m.name)
        case let .copyData(data): w.writeBytes(data)
        case .copyDone, .flush, .sync, .terminate: break
        case let .copyFail(message): w.writeCString(message)
        case let .describe(m):
            w.writeUInt8(m.target.rawValue)
            w.writeCString(m.name)
        case let .execute(m):
            w.writeCString(m.portalName)
            w.writeInt32(m.maxRows)
        case let .functionCall(m): m.encode(into: &w)
        case let .parse(m): m.encode(into: &w)
        case let .password(data): w.writeBytes(data)
        case let .query(sql): w.writeCString(sql)
        }
        w.endMessage()
    }

    /// The whole message (id, length, body) for a body as received.
    public static func wholeMessage(id: UInt8, body: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 5)
        w.beginMessage(id)
        w.writeBytes(body)
        w.endMessage()
        return w.bytes
    }

    /// The bytes a message's type and length take before its body.
    public static let headerLength = 5

    /// Writes the type `id` and the length into the first ``headerLength`` bytes of `message`,
    /// a body laid out behind them (by a caller that made it in place, with no copy).
    public static func writeHeader(id: UInt8, into message: inout [UInt8]) {
        precondition(message.count >= headerLength && message.count - 1 <= Int(Int32.max), "a message's header and length")
        let length = UInt32(message.count - 1)
        message[0] = id
        message[1] = UInt8(truncatingIfNeeded: length >> 24)
        message[2] = UInt8(truncatingIfNeeded: length >> 16)
        message[3] = UInt8(truncatingIfNeeded: length >> 8)
        message[4] = UInt8(truncatingIfNeeded: length)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: encodedSizeHint)
        encode(into: &w)
        return w.bytes
    }

    /// Room for the whole message in one allocation for the texts Switchyard rewrites (a
    /// rewritten Query or Parse runs for every routed statement); the writer grows past it.
    private var encodedSizeHint: Int {
        switch self {
        case let .query(sql): 6 + sql.utf8.count
        case let .parse(m): 16 + m.statementName.utf8.count + m.query.utf8.count + 4 * m.parameterTypes.count
        default: 64
        }
    }
}
