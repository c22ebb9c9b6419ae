// Authentication ('R'): every authentication request and outcome the server sends.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

public enum Authentication: Sendable, Equatable {
    case ok                                  // 0
    case kerberosV5                          // 2
    case cleartextPassword                   // 3
    case md5Password(salt: [UInt8])          // 5, 4-byte salt
    case gss                                 // 7
    case gssContinue(data: [UInt8])          // 8
    case sspi                                // 9
    case sasl(mechanisms: [String])          // 10
    case saslContinue(data: [UInt8])         // 11
    case saslFinal(data: [UInt8])            // 12

    public var code: Int32 {
        switch self {
        case .ok: 0
        case .kerberosV5: 2
        case .cleartextPassword: 3
        case .md5Password: 5
        case .gss: 7
        case .gssContinue: 8
        case .sspi: 9
        case .sasl: 10
        case .saslContinue: 11
        case .saslFinal: 12
        }
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> Authentication {
        let code = try r.readInt32()
        switch code {
        case 0: return .ok
        case 2: return .kerberosV5
        case 3: return .cleartextPassword
        case 5: return .md5Password(salt: try r.readBytes(4))
        case 7: return .gss
        case 8: return .gssContinue(data: r.readRest())
        case 9: return .sspi
        case 10:
            var mechanisms: [String] = []
            while true {
                let m = try r.readCString()
                if m.isEmpty { break }
                mechanisms.append(m)
            }
            return .sasl(mechanisms: mechanisms)
        case 11: return .saslContinue(data: r.readRest())
        case 12: return .saslFinal(data: r.readRest())
        default: throw .invalidValue(messageID: r.messageID, what: "authentication code \(code)")
        }
    }

    func encode(into w: inout ByteWriter) {
        w.writeInt32(code)
        switch self {
        case .ok, .kerberosV5, .cleartextPassword, .gss, .sspi: break
        case let .md5Password(salt): w.writeBytes(salt)
        case let .gssContinue(data), let .saslContinue(data), let .saslFinal(data): w.writeBytes(data)
        case let .sasl(mechanisms):
            for m in mechanisms { w.writeCString(m) }
            w.writeUInt8(0)
        }
    }
}
