// Backend message codec tests: round-trips for every case and Authentication variant, byte-exact wire checks, typed decode failures.

import Testing
@testable import SwitchyardProtocol

@Suite("BackendMessage codec")
struct BackendMessageTests {
    @Test("the samples cover every backend message id")
    func samplesCoverEveryCase() {
        #expect(Set(Samples.backend.map(\.id)) == Set(BackendMessageID.allCases))
    }

    @Test("encode, split into id and body, decode gives the same message", arguments: Samples.backend)
    func roundTrip(_ message: BackendMessage) throws {
        let bytes = message.encoded()
        let framed = try #require(frame(bytes))
        #expect(framed.id == message.id.rawValue)
        #expect(framed.declaredLength == framed.body.count + 4)
        let decoded = try BackendMessage.decode(id: framed.id, body: framed.body)
        #expect(decoded == message)
        var w = ByteWriter()
        w.writeBytes([0x00, 0x01])
        message.encode(into: &w)
        #expect(w.bytes == [0x00, 0x01] + bytes)
    }

    @Test("every Authentication variant round-trips with its own code", arguments: Samples.authentications)
    func authenticationRoundTrip(_ auth: Authentication) throws {
        let framed = try #require(frame(BackendMessage.authentication(auth).encoded()))
        #expect(framed.id == UInt8(ascii: "R"))
        #expect(Array(framed.body.prefix(4)) == be32(auth.code))
        #expect(try BackendMessage.decode(id: framed.id, body: framed.body) == .authentication(auth))
    }

    @Test("Authentication codes are the ones PostgreSQL documents")
    func authenticationCodes() {
        let codes = Samples.authentications.map { ($0, $0.code) }
        for (auth, code) in codes {
            let expected: Int32 = switch auth {
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
            #expect(code == expected, "\(auth)")
        }
    }

    @Test("ErrorResponse keeps unknown field codes, in order, through a round-trip")
    func unknownErrorFieldsKept() throws {
        let fields = Samples.errorWithUnknownFields
        for message in [BackendMessage.errorResponse(fields), .noticeResponse(fields)] {
            let framed = try #require(frame(message.encoded()))
            let decoded = try BackendMessage.decode(id: framed.id, body: framed.body)
            let back: ErrorFields
            switch decoded {
            case .errorResponse(let f), .noticeResponse(let f): back = f
            default:
                Issue.record("decoded as \(decoded)")
                continue
            }
            #expect(back.fields.map(\.code) == [0x53, 0x56, 0x43, 0x4D, 0x50, 0x58, 0x7E, 0x01, 0xFF, 0x46, 0x4C, 0x52])
            #expect(back.fields[5].value == "unknown field X")
            #expect(back.fields[6].value == "")
            #expect(back.fields[8].value == "high code")
            #expect(back.sqlState == "42P01")
            #expect(back.message == "relation \"nope\" does not exist")
            #expect(back[.position] == "15")
            #expect(back[.hint] == nil)
        }
    }

    @Test("an ErrorResponse value that is not UTF-8 alone is repaired, and the repaired message round-trips")
    func errorFieldSplitFromItsCode() throws {
        // Found by FuzzBackend: field code 0xEF then a value starting 0xBF 0xBD is UTF-8 as a whole
        // body but not as a value. The value decodes with U+FFFD in place of each bad byte.
        let body: [UInt8] = [0xEF, 0xBF, 0xBD, 0x72, 0x00, 0x4D] + Array("relation \"nope\" does not exist".utf8) + [0x00, 0x00]
        let decoded = try BackendMessage.decode(id: BackendMessageID.errorResponse.rawValue, body: body)
        guard case let .errorResponse(fields) = decoded else {
            Issue.record("decoded as \(decoded)")
            return
        }
        #expect(fields.fields.map(\.code) == [0xEF, 0x4D])
        #expect(fields.fields[0].value == "\u{FFFD}\u{FFFD}r")
        let again = try #require(frame(decoded.encoded()))
        #expect(try BackendMessage.decode(id: again.id, body: again.body) == decoded)
    }

    @Test("ErrorFields accessors prefer the non-localized severity")
    func errorFieldAccessors() {
        let localized = ErrorFields(fields: [(0x53, "FEHLER"), (0x56, "ERROR"), (0x43, "22012")])
        #expect(localized.severity == "ERROR")
        let old = ErrorFields(fields: [(0x53, "FATAL")])
        #expect(old.severity == "FATAL")
        #expect(old.sqlState == nil)
        let made = ErrorFields(severity: "FATAL", sqlState: "08P01", message: "m", detail: "d", hint: "h")
        #expect(made.fields.map(\.code) == [0x53, 0x56, 0x43, 0x4D, 0x44, 0x48])
        #expect(made[.detail] == "d")
        #expect(made[.hint] == "h")
        #expect(ErrorFields(severity: "ERROR", sqlState: "X", message: "m").fields.count == 4)
        // Equality compares codes and values in order.
        #expect(ErrorFields(fields: [(0x43, "a"), (0x4D, "b")]) != ErrorFields(fields: [(0x4D, "b"), (0x43, "a")]))
        #expect(ErrorFields(fields: [(0x43, "a")]) != ErrorFields(fields: [(0x43, "b")]))
    }

    @Test("byte-exact encodings written by hand from the protocol documentation", arguments: [
        (BackendMessage.readyForQuery(.idle), [0x5A, 0, 0, 0, 5, 0x49]),
        (.readyForQuery(.inTransaction), [0x5A, 0, 0, 0, 5, 0x54]),
        (.readyForQuery(.failed), [0x5A, 0, 0, 0, 5, 0x45]),
        (.authentication(.ok), [0x52, 0, 0, 0, 8, 0, 0, 0, 0]),
        (.authentication(.cleartextPassword), [0x52, 0, 0, 0, 8, 0, 0, 0, 3]),
        (.authentication(.md5Password(salt: [1, 2, 3, 4])), [0x52, 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4]),
        (.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])),
         [0x52, 0, 0, 0, 23, 0, 0, 0, 10] + Array("SCRAM-SHA-256".utf8) + [0, 0]),
        (.authentication(.saslFinal(data: Array("v=x".utf8))), [0x52, 0, 0, 0, 11, 0, 0, 0, 12, 0x76, 0x3D, 0x78]),
        (.backendKeyData(BackendKey(processID: 1234, secretKey: 5678)), [0x4B, 0, 0, 0, 12, 0, 0, 0x04, 0xD2, 0, 0, 0x16, 0x2E]),
        // Protocol 3.2: the key is the rest of the body, here 32 bytes, so the length is 4 + 4 + 32.
        (.backendKeyData(BackendKey(processID: 1234, secretKey: Array(1...32))), [0x4B, 0, 0, 0, 40, 0, 0, 0x04, 0xD2] + Array(1...32)),
        (.commandComplete(tag: "SELECT 1"), [0x43, 0, 0, 0, 13] + Array("SELECT 1".utf8) + [0]),
        (.parameterStatus(name: "client_encoding", value: "UTF8"),
         [0x53, 0, 0, 0, 25] + Array("client_encoding".utf8) + [0] + Array("UTF8".utf8) + [0]),
        (.dataRow(DataRow(values: [[0x31], nil])), [0x44, 0, 0, 0, 15, 0, 2, 0, 0, 0, 1, 0x31, 0xFF, 0xFF, 0xFF, 0xFF]),
        (.rowDescription(RowDescription(columns: [ColumnDescription(name: "?column?", typeOID: 23, typeSize: 4)])),
         [0x54, 0, 0, 0, 33, 0, 1] + Array("?column?".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]),
        (.errorResponse(ErrorFields(severity: "ERROR", sqlState: "42601", message: "x")),
         [0x45, 0, 0, 0, 29, 0x53] + Array("ERROR".utf8) + [0, 0x56] + Array("ERROR".utf8) + [0, 0x43] + Array("42601".utf8) + [0, 0x4D, 0x78, 0, 0]),
        (.parseComplete, [0x31, 0, 0, 0, 4]),
        (.bindComplete, [0x32, 0, 0, 0, 4]),
        (.closeComplete, [0x33, 0, 0, 0, 4]),
        (.noData, [0x6E, 0, 0, 0, 4]),
        (.emptyQueryResponse, [0x49, 0, 0, 0, 4]),
        (.portalSuspended, [0x73, 0, 0, 0, 4]),
        (.copyDone, [0x63, 0, 0, 0, 4]),
        (.parameterDescription([23]), [0x74, 0, 0, 0, 10, 0, 1, 0, 0, 0, 23]),
        (.functionCallResponse(nil), [0x56, 0, 0, 0, 8, 0xFF, 0xFF, 0xFF, 0xFF]),
        (.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0])), [0x47, 0, 0, 0, 9, 0, 0, 1, 0, 0]),
        (.notificationResponse(NotificationResponse(processID: 7, channel: "c", payload: "")),
         [0x41, 0, 0, 0, 11, 0, 0, 0, 7, 0x63, 0, 0]),
        (.negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.a"])),
         [0x76, 0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 1] + Array("_pq_.a".utf8) + [0]),
    ] as [(BackendMessage, [UInt8])])
    func byteExact(_ message: BackendMessage, _ expected: [UInt8]) throws {
        #expect(message.encoded() == expected)
        let framed = try #require(frame(expected))
        #expect(try BackendMessage.decode(id: framed.id, body: framed.body) == message)
    }

    @Test("every strict prefix of a structured body fails as truncated or unterminated",
          arguments: Samples.backend.filter {
              !Samples.backendBodyIsRaw($0) && !Samples.backendBodyEndsWithSecretKey($0) && !frame($0.encoded())!.body.isEmpty
          })
    func truncatedBodies(_ message: BackendMessage) throws {
        let framed = try #require(frame(message.encoded()))
        for cut in 0..<framed.body.count {
            let prefix = Array(framed.body[..<cut])
            do throws(ProtocolError) {
                let decoded = try BackendMessage.decode(id: framed.id, body: prefix)
                Issue.record("prefix of \(cut)/\(framed.body.count) bytes decoded as \(decoded)")
            } catch {
                switch error {
                case .truncated(let id, _, _), .missingTerminator(let id):
                    #expect(id == framed.id)
                default:
                    Issue.record("prefix of \(cut) bytes threw \(error), expected truncated or missingTerminator")
                }
            }
        }
    }

    @Test("a raw-bodied Authentication shorter than its code is truncated", arguments: [8, 11, 12] as [Int32])
    func truncatedRawAuthentication(_ code: Int32) {
        for cut in 0..<4 {
            #expect(throws: ProtocolError.truncated(messageID: 0x52, needed: 4, available: cut)) {
                try BackendMessage.decode(id: 0x52, body: Array(be32(code).prefix(cut)))
            }
        }
    }

    @Test("a byte after a complete structured body is reported as trailing",
          arguments: Samples.backend.filter { !Samples.backendBodyIsRaw($0) && !Samples.backendBodyEndsWithSecretKey($0) })
    func trailingBytes(_ message: BackendMessage) throws {
        let framed = try #require(frame(message.encoded()))
        #expect(throws: ProtocolError.trailingBytes(messageID: framed.id, count: 1)) {
            try BackendMessage.decode(id: framed.id, body: framed.body + [0x00])
        }
        #expect(throws: ProtocolError.trailingBytes(messageID: framed.id, count: 2)) {
            try BackendMessage.decode(id: framed.id, body: framed.body + [0x49, 0x49])
        }
    }

    @Test("BackendKeyData prefixes: a cut process id is truncated, a 0-3 byte key is invalid, 4 bytes or more is a shorter key",
          arguments: Samples.backend.filter(Samples.backendBodyEndsWithSecretKey))
    func backendKeyDataPrefixes(_ message: BackendMessage) throws {
        let framed = try #require(frame(message.encoded()))
        #expect(framed.body.count >= 8)
        for cut in 0..<framed.body.count {
            let prefix = Array(framed.body[..<cut])
            if cut < 4 {
                #expect(throws: ProtocolError.truncated(messageID: 0x4B, needed: 4, available: cut)) {
                    try BackendMessage.decode(id: 0x4B, body: prefix)
                }
            } else if cut < 8 {
                #expect(throws: ProtocolError.invalidValue(messageID: 0x4B, what: "secret key length \(cut - 4)")) {
                    try BackendMessage.decode(id: 0x4B, body: prefix)
                }
            } else {
                // The key's length is whatever the message length leaves: a shorter body is a shorter key.
                let expected = BackendKey(processID: Int32(bitPattern: UInt32(prefix[0]) << 24 | UInt32(prefix[1]) << 16 | UInt32(prefix[2]) << 8 | UInt32(prefix[3])),
                                          secretKey: Array(prefix[4...]))
                #expect(try BackendMessage.decode(id: 0x4B, body: prefix) == .backendKeyData(expected), "cut at \(cut)")
            }
        }
    }

    @Test("bytes after a 4-byte BackendKeyData key make a longer key, not trailing bytes")
    func backendKeyDataExtraBytes() throws {
        let body = be32(12345) + be32(-559_038_737)
        #expect(try BackendMessage.decode(id: 0x4B, body: body + [0x00])
                == .backendKeyData(BackendKey(processID: 12345, secretKey: [0xDE, 0xAD, 0xBE, 0xEF, 0x00])))
        #expect(try BackendMessage.decode(id: 0x4B, body: body + [0x49, 0x49])
                == .backendKeyData(BackendKey(processID: 12345, secretKey: [0xDE, 0xAD, 0xBE, 0xEF, 0x49, 0x49])))
    }

    @Test("a BackendKeyData secret key must be 4 to 256 bytes", arguments: [0, 1, 3, 4, 5, 32, 255, 256, 257, 300, 1000])
    func backendKeyDataKeyLength(_ length: Int) throws {
        let key = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let body = be32(77) + key
        if (4...256).contains(length) {
            #expect(try BackendMessage.decode(id: 0x4B, body: body) == .backendKeyData(BackendKey(processID: 77, secretKey: key)))
            #expect(BackendMessage.backendKeyData(BackendKey(processID: 77, secretKey: key)).encoded() == rawMessage("K", body))
        } else {
            #expect(throws: ProtocolError.invalidValue(messageID: 0x4B, what: "secret key length \(length)")) {
                try BackendMessage.decode(id: 0x4B, body: body)
            }
        }
        #expect(BackendKey.maximumSecretLength == 256)
    }

    /// Protocol 3.2 (PostgreSQL 18) makes the secret key variable length (4 to 256 bytes; the server sends 32).
    /// Switchyard accepts 3.x startups and forwards them, so a 3.2 client gets such a BackendKeyData.
    @Test("a protocol 3.2 BackendKeyData with a 32-byte secret key decodes with every key byte")
    func longSecretKeyInBackendKeyData() throws {
        let secret = (0..<32).map { UInt8($0) }
        let body = be32(4242) + secret
        let decoded = try BackendMessage.decode(id: 0x4B, body: body)
        guard case .backendKeyData(let key) = decoded else {
            Issue.record("decoded as \(decoded)")
            return
        }
        #expect(key.processID == 4242)
        #expect(key.secretKey == secret)
        #expect(key != BackendKey(processID: 4242, secretKey: Array(secret.prefix(4))))
        #expect(decoded.encoded() == rawMessage("K", body))
    }

    @Test("strings without their NUL terminator", arguments: [
        (UInt8(ascii: "C"), Array("SELECT 1".utf8)),
        (UInt8(ascii: "S"), Array("server_version".utf8)),
        (UInt8(ascii: "S"), cstr("server_version") + Array("17".utf8)),
        (UInt8(ascii: "E"), [0x53] + Array("ERROR".utf8)),
        (UInt8(ascii: "N"), [0x4D]),
        (UInt8(ascii: "A"), be32(1) + Array("chan".utf8)),
        (UInt8(ascii: "A"), be32(1) + cstr("chan") + Array("payload".utf8)),
        (UInt8(ascii: "R"), be32(10) + Array("SCRAM-SHA-256".utf8)),
        (UInt8(ascii: "T"), be16(1) + Array("col".utf8)),
        (UInt8(ascii: "v"), be32(0) + be32(1) + Array("_pq_.x".utf8)),
    ] as [(UInt8, [UInt8])])
    func missingTerminator(_ id: UInt8, _ body: [UInt8]) {
        #expect(throws: ProtocolError.missingTerminator(messageID: id)) {
            try BackendMessage.decode(id: id, body: body)
        }
    }

    @Test("16-bit counts are unsigned: 0xFFFF or 0x8000 with a short body is truncated, not a trap or a huge allocation", arguments: [
        // RowDescription: 0xFFFF columns, one column name and nothing after it.
        (UInt8(ascii: "T"), be16(-1) + cstr("a"), ProtocolError.truncated(messageID: 0x54, needed: 4, available: 0)),
        // RowDescription: 0x8000 columns, one complete column, then half a table oid.
        (UInt8(ascii: "T"), be16(.min) + cstr("a") + be32(1) + be16(1) + be32(23) + be16(4) + be32(-1) + be16(0) + cstr("b") + [0, 0],
         .truncated(messageID: 0x54, needed: 4, available: 2)),
        // DataRow: 0xFFFF and 0x8000 columns, no values.
        (UInt8(ascii: "D"), be16(-1), .truncated(messageID: 0x44, needed: 4, available: 0)),
        (UInt8(ascii: "D"), be16(.min), .truncated(messageID: 0x44, needed: 4, available: 0)),
        // DataRow: 0xFFFF columns, one NULL, then a 3-byte fragment of the next length.
        (UInt8(ascii: "D"), be16(-1) + be32(-1) + [0, 0, 0], .truncated(messageID: 0x44, needed: 4, available: 3)),
        // ParameterDescription: 0xFFFF parameters, no oids.
        (UInt8(ascii: "t"), be16(-1), .truncated(messageID: 0x74, needed: 4, available: 0)),
        // CopyInResponse, CopyOutResponse, CopyBothResponse: 0xFFFF or 0xFFFE column formats.
        (UInt8(ascii: "G"), [0] + be16(-1), .truncated(messageID: 0x47, needed: 2, available: 0)),
        (UInt8(ascii: "H"), [1] + be16(-1) + be16(1), .truncated(messageID: 0x48, needed: 2, available: 0)),
        (UInt8(ascii: "W"), [0] + be16(-2) + [0], .truncated(messageID: 0x57, needed: 2, available: 1)),
    ] as [(UInt8, [UInt8], ProtocolError)])
    func unsignedCountsTruncated(_ id: UInt8, _ body: [UInt8], _ expected: ProtocolError) {
        #expect(throws: expected) {
            try BackendMessage.decode(id: id, body: body)
        }
    }

    @Test("a RowDescription with a huge column count and no column name is unterminated")
    func hugeColumnCountWithoutName() {
        #expect(throws: ProtocolError.missingTerminator(messageID: 0x54)) {
            try BackendMessage.decode(id: 0x54, body: be16(-1))
        }
    }

    @Test("NegotiateProtocolVersion's option count is an Int32 and still rejects negative values", arguments: [-1, .min] as [Int32])
    func negativeOptionCount(_ count: Int32) {
        #expect(throws: ProtocolError.invalidValue(messageID: 0x76, what: "option count \(count)")) {
            try BackendMessage.decode(id: 0x76, body: be32(0) + be32(count))
        }
    }

    @Test("counts above Int16.max round-trip: 65535 DataRow columns, 40000 parameter oids, 32768 columns, 65535 COPY formats")
    func largeCountsRoundTrip() throws {
        let column = ColumnDescription(name: "c", tableOID: 1, columnNumber: 2, typeOID: 23, typeSize: 4, typeModifier: -1, format: 1)
        let messages: [BackendMessage] = [
            .dataRow(DataRow(values: Array(repeating: nil, count: 65_535))),
            .dataRow(DataRow(values: (0..<40_000).map { $0 % 2 == 0 ? nil : [UInt8(truncatingIfNeeded: $0)] })),
            .parameterDescription((0..<40_000).map { Int32($0) }),
            .rowDescription(RowDescription(columns: Array(repeating: column, count: 32_768))),
            .copyInResponse(CopyResponse(overallFormat: 1, columnFormats: Array(repeating: 1, count: 65_535))),
            .copyOutResponse(CopyResponse(overallFormat: 0, columnFormats: Array(repeating: 0, count: 40_000))),
            .copyBothResponse(CopyResponse(overallFormat: 0, columnFormats: Array(repeating: 0, count: 32_768))),
        ]
        for message in messages {
            let framed = try #require(frame(message.encoded()))
            #expect(framed.declaredLength == framed.body.count + 4)
            #expect(try BackendMessage.decode(id: framed.id, body: framed.body) == message)
        }
        // The count is written unsigned: 65535 is 0xFFFF and 40000 is 0x9C40 on the wire.
        #expect(Array(frame(messages[0].encoded())!.body.prefix(2)) == [0xFF, 0xFF])
        #expect(Array(frame(messages[2].encoded())!.body.prefix(2)) == [0x9C, 0x40])
        #expect(Array(frame(messages[4].encoded())!.body.prefix(3)) == [0x01, 0xFF, 0xFF])
    }

    @Test("a value length below -1 is an invalid length", arguments: [
        (UInt8(ascii: "D"), be16(1) + be32(-2)),
        (UInt8(ascii: "V"), be32(-5)),
    ] as [(UInt8, [UInt8])])
    func negativeValueLength(_ id: UInt8, _ body: [UInt8]) {
        let error = #expect(throws: ProtocolError.self) {
            try BackendMessage.decode(id: id, body: body)
        }
        guard case .invalidLength(let mid, let length) = error else {
            Issue.record("expected invalidLength, got \(String(describing: error))")
            return
        }
        #expect(mid == id)
        #expect(length < -1)
    }

    @Test("a huge count with a short body is truncated, not a huge allocation")
    func hugeCounts() {
        #expect(throws: ProtocolError.truncated(messageID: 0x44, needed: 4, available: 0)) {
            try BackendMessage.decode(id: 0x44, body: be16(.max))
        }
        #expect(throws: ProtocolError.missingTerminator(messageID: 0x76)) {
            try BackendMessage.decode(id: 0x76, body: be32(0) + be32(.max) + cstr("a"))
        }
        #expect(throws: ProtocolError.truncated(messageID: 0x44, needed: Int(Int32.max), available: 1)) {
            try BackendMessage.decode(id: 0x44, body: be16(1) + be32(.max) + [7])
        }
    }

    @Test("ReadyForQuery rejects a status other than I, T or E", arguments: [
        UInt8(ascii: "X"), UInt8(ascii: "i"), 0x00, 0xFF,
    ] as [UInt8])
    func badTransactionStatus(_ status: UInt8) {
        #expect(throws: ProtocolError.invalidValue(messageID: 0x5A, what: "transaction status \(status)")) {
            try BackendMessage.decode(id: 0x5A, body: [status])
        }
    }

    @Test("Authentication rejects codes PostgreSQL does not send", arguments: [1, 4, 6, 13, -1, .max] as [Int32])
    func unknownAuthenticationCode(_ code: Int32) {
        #expect(throws: ProtocolError.invalidValue(messageID: 0x52, what: "authentication code \(code)")) {
            try BackendMessage.decode(id: 0x52, body: be32(code))
        }
    }

    @Test("an MD5 salt must be exactly four bytes")
    func md5SaltLength() {
        #expect(throws: ProtocolError.truncated(messageID: 0x52, needed: 4, available: 3)) {
            try BackendMessage.decode(id: 0x52, body: be32(5) + [1, 2, 3])
        }
        #expect(throws: ProtocolError.trailingBytes(messageID: 0x52, count: 1)) {
            try BackendMessage.decode(id: 0x52, body: be32(5) + [1, 2, 3, 4, 5])
        }
    }

    @Test("ids that are not backend messages are unknown", arguments: [
        0x00, UInt8(ascii: "Q"), UInt8(ascii: "P"), UInt8(ascii: "B"), UInt8(ascii: "X"), UInt8(ascii: "p"), 0xFF,
    ] as [UInt8])
    func unknownID(_ id: UInt8) {
        #expect(throws: ProtocolError.unknownMessage(messageID: id)) {
            try BackendMessage.decode(id: id, body: [])
        }
    }
}
