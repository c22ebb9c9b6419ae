// The untyped packets a client may send first: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP

/// The process id and secret key that name a backend, as carried by
/// BackendKeyData and CancelRequest. The key is 4 bytes in protocol 3.0 and
/// up to 256 bytes from protocol 3.2 (PostgreSQL 18), so it is kept as bytes.
public struct BackendKey: Sendable, Hashable {
    public var processID: Int32
    public var secretKey: [UInt8]

    public static let maximumSecretLength = 256

    public init(processID: Int32, secretKey: [UInt8]) {
        self.processID = processID
        self.secretKey = secretKey
    }

    /// A protocol 3.0 key: the secret is one Int32.
    public init(processID: Int32, secretKey: Int32) {
        let u = UInt32(bitPattern: secretKey)
        self.init(processID: processID, secretKey: [UInt8(u >> 24), UInt8((u >> 16) & 0xff), UInt8((u >> 8) & 0xff), UInt8(u & 0xff)])
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolError) -> BackendKey {
        let pid = try r.readInt32()
        let secret = r.readRest()
        guard secret.count >= 4, secret.count <= maximumSecretLength else {
            throw .invalidValue(messageID: r.messageID, what: "secret key length \(secret.count)")
        }
        return BackendKey(processID: pid, secretKey: secret)
    }
}

/// StartupMessage: the protocol version and the session parameters (user, database, options...).
public struct StartupMessage: Sendable, Equatable {
    public var protocolVersion: Int32
    /// Parameters in the order sent; order matters to nobody but keeps encoding byte-exact.
    public var parameters: [(String, String)]

    public init(protocolVersion: Int32 = StartupRequestCode.protocol3, parameters: [(String, String)]) {
        self.protocolVersion = protocolVersion
        self.parameters = parameters
    }

    public var majorVersion: Int { Int(protocolVersion >> 16) }
    public var minorVersion: Int { Int(protocolVersion & 0xffff) }

    public func parameter(_ name: String) -> String? {
        parameters.first { $0.0 == name }?.1
    }
    public var user: String? { parameter("user") }
    /// The database, which PostgreSQL defaults to the user name.
    public var database: String? { parameter("database") ?? user }

    public static func == (a: Self, b: Self) -> Bool {
        a.protocolVersion == b.protocolVersion
            && a.parameters.map(\.0) == b.parameters.map(\.0)
            && a.parameters.map(\.1) == b.parameters.map(\.1)
    }
}

/// A packet of the startup phase, identified by its version/request code.
public enum StartupPacket: Sendable, Equatable {
    case startup(StartupMessage)
    case sslRequest
    case gssEncRequest
    case cancel(BackendKey)

    /// Startup packets are small; PostgreSQL itself refuses ones over 10000 bytes.
    public static let maximumLength = 10_000

    /// Decodes a whole packet: `bytes` includes the Int32 length prefix.
    public static func decode(_ bytes: [UInt8]) throws(ProtocolError) -> StartupPacket {
        var reader = ByteReader(bytes)
        let length = Int(try reader.readInt32())
        guard length == bytes.count, length >= 8, length <= maximumLength else {
            throw .invalidStartupLength(length)
        }
        let code = try reader.readInt32()
        switch code {
        case StartupRequestCode.sslRequest:
            try reader.expectEnd()
            return .sslRequest
        case StartupRequestCode.gssEncRequest:
            try reader.expectEnd()
            return .gssEncRequest
        case StartupRequestCode.cancelRequest:
            return .cancel(try BackendKey.decode(&reader))
        default:
            let major = Int(code >> 16), minor = Int(code & 0xffff)
            guard major == 3 else { throw .unsupportedProtocolVersion(major: major, minor: minor) }
            var parameters: [(String, String)] = []
            while true {
                let name = try reader.readCString()
                if name.isEmpty { break }
                parameters.append((name, try reader.readCString()))
            }
            try reader.expectEnd()
            return .startup(StartupMessage(protocolVersion: code, parameters: parameters))
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.beginUntypedMessage()
        switch self {
        case .sslRequest: w.writeInt32(StartupRequestCode.sslRequest)
        case .gssEncRequest: w.writeInt32(StartupRequestCode.gssEncRequest)
        case let .cancel(key):
            w.writeInt32(StartupRequestCode.cancelRequest)
            w.writeInt32(key.processID)
            w.writeBytes(key.secretKey)
        case let .startup(message):
            w.writeInt32(message.protocolVersion)
            for (name, value) in message.parameters {
                w.writeCString(name)
                w.writeCString(value)
            }
            w.writeUInt8(0)
        }
        w.endMessage()
        return w.bytes
    }
}
