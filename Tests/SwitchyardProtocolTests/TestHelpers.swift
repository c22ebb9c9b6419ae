// Shared helpers for the protocol tests: a seeded RNG, message framing helpers and sample messages.

@testable import SwitchyardProtocol


/// A typed message split into the parts `decode(id:body:)` takes.
struct Framed: Equatable {
    var id: UInt8
    var declaredLength: Int
    var body: [UInt8]
}

/// Splits one encoded typed message into id, declared length and body.
func frame(_ bytes: [UInt8]) -> Framed? {
    guard bytes.count >= 5 else { return nil }
    let length = Int(Int32(bitPattern: UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])))
    return Framed(id: bytes[0], declaredLength: length, body: Array(bytes[5...]))
}

/// Big-endian Int32 bytes, for writing expected wire bytes by hand.
func be32(_ v: Int32) -> [UInt8] {
    let u = UInt32(bitPattern: v)
    return [UInt8(u >> 24), UInt8((u >> 16) & 0xff), UInt8((u >> 8) & 0xff), UInt8(u & 0xff)]
}

/// Big-endian Int16 bytes.
func be16(_ v: Int16) -> [UInt8] {
    let u = UInt16(bitPattern: v)
    return [UInt8(u >> 8), UInt8(u & 0xff)]
}

/// A NUL-terminated string.
func cstr(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

/// A typed message built by hand: id, Int32 length (body + 4), body.
func rawMessage(_ id: Character, _ body: [UInt8]) -> [UInt8] {
    [id.asciiValue!] + be32(Int32(body.count + 4)) + body
}

/// Feeds `bytes` to the scanner and collects what it reports.
func scan(_ scanner: inout MessageScanner, _ bytes: [UInt8]) throws -> [ScannedMessage] {
    var out: [ScannedMessage] = []
    try bytes.withUnsafeBytes { buffer in
        try scanner.scan(buffer) { out.append($0) }
    }
    return out
}

/// Feeds `bytes` to the startup packet reader.
func feed(_ reader: inout StartupPacketReader, _ bytes: [UInt8]) throws -> StartupPacketReader.Result {
    try bytes.withUnsafeBytes { buffer in try reader.feed(buffer) }
}

/// A client message as the scanner reports it: the session never needs client bodies.
func client(_ message: FrontendMessage) -> ScannedMessage {
    let bytes = message.encoded()
    return ScannedMessage(id: bytes[0], bodyLength: bytes.count - 5, body: nil)
}

/// A server message as the scanner reports it with the session's inspect set.
func server(_ message: BackendMessage) -> ScannedMessage {
    let bytes = message.encoded()
    let inspected = SessionStateMachine.inspectedServerMessages.contains(bytes[0])
    return ScannedMessage(id: bytes[0], bodyLength: bytes.count - 5, body: inspected ? Array(bytes[5...]) : nil)
}

enum Samples {
    /// At least one instance of every frontend message case, with edge values (empty names, NULLs, negative numbers).
    static let frontend: [FrontendMessage] = [
        .bind(Bind(portalName: "", statementName: "")),
        .bind(Bind(portalName: "p1", statementName: "s1", parameterFormats: [0, 1],
                   parameters: [Array("42".utf8), nil, [], [0x00, 0xff]], resultFormats: [1])),
        .close(Close(target: .statement, name: "s1")),
        .close(Close(target: .portal, name: "")),
        .copyData([]),
        .copyData([0x31, 0x09, 0x00, 0xff, 0x0a]),
        .copyDone,
        .copyFail(message: "aborted by user"),
        .describe(Describe(target: .statement, name: "stmt")),
        .describe(Describe(target: .portal, name: "")),
        .execute(Execute(portalName: "")),
        .execute(Execute(portalName: "cursor", maxRows: 100)),
        .flush,
        .functionCall(FunctionCall(functionOID: 952, argumentFormats: [1], arguments: [be32(7), nil, []], resultFormat: 1)),
        .functionCall(FunctionCall(functionOID: -1, argumentFormats: [], arguments: [], resultFormat: 0)),
        .parse(Parse(statementName: "", query: "select 1")),
        .parse(Parse(statementName: "ins", query: "insert into t values ($1, $2)", parameterTypes: [23, 25, 0, -1])),
        .password(cstr("secret")),
        .password([]),
        .password([0x00, 0x00, 0x00, 0x04, 0xde, 0xad]),
        .query(""),
        .query("select 'héllo ✓' as x; select 2"),
        .sync,
        .terminate,
    ]

    /// Every Authentication variant.
    static let authentications: [Authentication] = [
        .ok,
        .kerberosV5,
        .cleartextPassword,
        .md5Password(salt: [0x01, 0x02, 0x03, 0xff]),
        .gss,
        .gssContinue(data: []),
        .gssContinue(data: [0x60, 0x00, 0xff]),
        .sspi,
        .sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
        .sasl(mechanisms: []),
        .saslContinue(data: Array("r=abc,s=c2FsdA==,i=4096".utf8)),
        .saslFinal(data: Array("v=c2lnbmF0dXJl".utf8)),
        .saslFinal(data: []),
    ]

    /// An ErrorResponse body with field codes Switchyard has no name for; they must survive.
    static let errorWithUnknownFields = ErrorFields(fields: [
        (0x53, "ERROR"), (0x56, "ERROR"), (0x43, "42P01"),
        (0x4D, "relation \"nope\" does not exist"), (0x50, "15"),
        (0x58, "unknown field X"), (0x7E, ""), (0x01, "control-char code"), (0xFF, "high code"),
        (0x46, "parse_relation.c"), (0x4C, "1449"), (0x52, "parserOpenTable"),
    ])

    /// At least one instance of every backend message case.
    static let backend: [BackendMessage] = authentications.map { .authentication($0) } + [
        .backendKeyData(BackendKey(processID: 12345, secretKey: -559_038_737)),
        // Protocol 3.2 (PostgreSQL 18) keys: 32 bytes as the server sends them, and the 256-byte maximum.
        .backendKeyData(BackendKey(processID: 4242, secretKey: Samples.secretKey32)),
        .backendKeyData(BackendKey(processID: -1, secretKey: Samples.secretKey256)),
        .bindComplete,
        .closeComplete,
        .commandComplete(tag: "SELECT 1"),
        .commandComplete(tag: "INSERT 0 5"),
        .copyBothResponse(CopyResponse(overallFormat: 0, columnFormats: [])),
        .copyData([]),
        .copyData(Array("1\tfoo\n".utf8)),
        .copyDone,
        .copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0, 0, 0])),
        .copyOutResponse(CopyResponse(overallFormat: 1, columnFormats: [1, 1])),
        .copyOutResponse(CopyResponse(overallFormat: -1, columnFormats: [-1])),
        .dataRow(DataRow(values: [])),
        .dataRow(DataRow(values: [Array("1".utf8), nil, [], [0x00, 0xff, 0x7f]])),
        .emptyQueryResponse,
        .errorResponse(ErrorFields(severity: "FATAL", sqlState: "28P01", message: "password authentication failed",
                                   detail: "detail", hint: "hint")),
        .errorResponse(errorWithUnknownFields),
        .errorResponse(ErrorFields(fields: [])),
        .functionCallResponse(nil),
        .functionCallResponse([]),
        .functionCallResponse(be32(42)),
        .negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: [])),
        .negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: 2, unrecognizedOptions: ["_pq_.foo", "_pq_.bar"])),
        .noData,
        .noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: "table \"t\" does not exist, skipping")),
        .noticeResponse(errorWithUnknownFields),
        .notificationResponse(NotificationResponse(processID: 99, channel: "jobs", payload: "{\"id\": 1}")),
        .notificationResponse(NotificationResponse(processID: -1, channel: "", payload: "")),
        .parameterDescription([]),
        .parameterDescription([23, 25, -1, 0]),
        .parameterStatus(name: "server_version", value: "17.2"),
        .parameterStatus(name: "application_name", value: ""),
        .parseComplete,
        .portalSuspended,
        .readyForQuery(.idle),
        .readyForQuery(.inTransaction),
        .readyForQuery(.failed),
        .rowDescription(RowDescription(columns: [])),
        .rowDescription(RowDescription(columns: [
            ColumnDescription(name: "id", tableOID: 16384, columnNumber: 1, typeOID: 23, typeSize: 4, typeModifier: -1, format: 0),
            ColumnDescription(name: "", typeOID: 25),
            ColumnDescription(name: "n", tableOID: -2, columnNumber: -3, typeOID: -4, typeSize: -5, typeModifier: 65540, format: 1),
        ])),
    ]

    /// Every startup-phase packet kind.
    static let startupPackets: [StartupPacket] = [
        .startup(StartupMessage(parameters: [("user", "alice"), ("database", "shop"), ("application_name", "psql"),
                                             ("options", "-c search_path=app")])),
        .startup(StartupMessage(parameters: [])),
        .startup(StartupMessage(protocolVersion: 3 << 16 | 2, parameters: [("user", "bob"), ("_pq_.x", "")])),
        .sslRequest,
        .gssEncRequest,
        .cancel(BackendKey(processID: 4242, secretKey: -7)),
        .cancel(BackendKey(processID: .max, secretKey: .min)),
        .cancel(BackendKey(processID: 4242, secretKey: Samples.secretKey32)),
        .cancel(BackendKey(processID: 0, secretKey: Samples.secretKey256)),
    ]

    /// A protocol 3.2 secret key as PostgreSQL 18 sends it: 32 bytes.
    static let secretKey32: [UInt8] = (0..<32).map { UInt8($0 * 7 + 1) }
    /// The longest secret key protocol 3.2 allows.
    static let secretKey256: [UInt8] = (0..<256).map { UInt8(255 - $0) }

    /// Whether a backend message's body ends with a secret key, whose length is whatever the body leaves
    /// (so a longer body is a longer key, and a shorter one a shorter key once it has at least 4 bytes).
    static func backendBodyEndsWithSecretKey(_ m: BackendMessage) -> Bool {
        if case .backendKeyData = m { true } else { false }
    }

    /// Whether a message body is raw bytes running to the end (so a truncated or longer body is still valid).
    static func frontendBodyIsRaw(_ m: FrontendMessage) -> Bool {
        switch m {
        case .copyData, .password: true
        default: false
        }
    }

    static func backendBodyIsRaw(_ m: BackendMessage) -> Bool {
        switch m {
        case .copyData, .authentication(.gssContinue), .authentication(.saslContinue), .authentication(.saslFinal): true
        default: false
        }
    }
}
