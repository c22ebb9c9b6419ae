// Frontend message codec tests: round-trips for every case, byte-exact wire checks and typed decode failures.

import Testing
@testable import SwitchyardProtocol

@Suite("FrontendMessage codec")
struct FrontendMessageTests {
    @Test("the samples cover every frontend message id")
    func samplesCoverEveryCase() {
        #expect(Set(Samples.frontend.map(\.id)) == Set(FrontendMessageID.allCases))
    }

    @Test("encode, split into id and body, decode gives the same message", arguments: Samples.frontend)
    func roundTrip(_ message: FrontendMessage) throws {
        let bytes = message.encoded()
        let framed = try #require(frame(bytes))
        #expect(framed.id == message.id.rawValue)
        #expect(framed.declaredLength == framed.body.count + 4)
        let decoded = try FrontendMessage.decode(id: framed.id, body: framed.body)
        #expect(decoded == message)
        // encode(into:) appends to what is already written and agrees with encoded().
        var w = ByteWriter()
        w.writeBytes([0xAA])
        message.encode(into: &w)
        #expect(w.bytes == [0xAA] + bytes)
    }

    @Test("byte-exact encodings written by hand from the protocol documentation", arguments: [
        (FrontendMessage.sync, [0x53, 0, 0, 0, 4]),
        (.flush, [0x48, 0, 0, 0, 4]),
        (.terminate, [0x58, 0, 0, 0, 4]),
        (.copyDone, [0x63, 0, 0, 0, 4]),
        // Query "select 1": 'Q', length 4 + 8 + 1 = 13, the text, NUL.
        (.query("select 1"), [0x51, 0, 0, 0, 13, 0x73, 0x65, 0x6C, 0x65, 0x63, 0x74, 0x20, 0x31, 0x00]),
        // Parse: unnamed statement, "select $1", one parameter of type int4 (23).
        (.parse(Parse(statementName: "", query: "select $1", parameterTypes: [23])),
         [0x50, 0, 0, 0, 21, 0x00] + Array("select $1".utf8) + [0x00, 0, 1, 0, 0, 0, 23]),
        // Bind: unnamed portal and statement, no formats, one text parameter "7" and one NULL, no result formats.
        (.bind(Bind(portalName: "", statementName: "", parameters: [[0x37], nil])),
         [0x42, 0, 0, 0, 21, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0x37, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]),
        // Describe portal "": 'D', length 6, 'P', NUL.
        (.describe(Describe(target: .portal, name: "")), [0x44, 0, 0, 0, 6, 0x50, 0]),
        // Close statement "s": 'C', length 7, 'S', 's', NUL.
        (.close(Close(target: .statement, name: "s")), [0x43, 0, 0, 0, 7, 0x53, 0x73, 0]),
        // Execute unnamed portal, all rows.
        (.execute(Execute(portalName: "")), [0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0]),
        (.execute(Execute(portalName: "", maxRows: 258)), [0x45, 0, 0, 0, 9, 0, 0, 0, 1, 2]),
        // PasswordMessage "pw".
        (.password(cstr("pw")), [0x70, 0, 0, 0, 7, 0x70, 0x77, 0]),
        (.copyFail(message: "x"), [0x66, 0, 0, 0, 6, 0x78, 0]),
    ] as [(FrontendMessage, [UInt8])])
    func byteExact(_ message: FrontendMessage, _ expected: [UInt8]) throws {
        #expect(message.encoded() == expected)
        let framed = try #require(frame(expected))
        #expect(try FrontendMessage.decode(id: framed.id, body: framed.body) == message)
    }

    @Test("every strict prefix of a structured body fails as truncated or unterminated",
          arguments: Samples.frontend.filter { !Samples.frontendBodyIsRaw($0) && !frame($0.encoded())!.body.isEmpty })
    func truncatedBodies(_ message: FrontendMessage) throws {
        let framed = try #require(frame(message.encoded()))
        for cut in 0..<framed.body.count {
            let prefix = Array(framed.body[..<cut])
            do throws(ProtocolError) {
                let decoded = try FrontendMessage.decode(id: framed.id, body: prefix)
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

    @Test("a byte after a complete structured body is reported as trailing",
          arguments: Samples.frontend.filter { !Samples.frontendBodyIsRaw($0) })
    func trailingBytes(_ message: FrontendMessage) throws {
        let framed = try #require(frame(message.encoded()))
        #expect(throws: ProtocolError.trailingBytes(messageID: framed.id, count: 1)) {
            try FrontendMessage.decode(id: framed.id, body: framed.body + [0x00])
        }
        #expect(throws: ProtocolError.trailingBytes(messageID: framed.id, count: 3)) {
            try FrontendMessage.decode(id: framed.id, body: framed.body + [0x41, 0x00, 0x42])
        }
    }

    @Test("raw bodies (CopyData, PasswordMessage) take any bytes, including none")
    func rawBodies() throws {
        for body in [[], [0x00], [0xFF, 0x00, 0x51], Array(repeating: 0x7F, count: 1000)] as [[UInt8]] {
            #expect(try FrontendMessage.decode(id: 0x64, body: body) == .copyData(body))
            #expect(try FrontendMessage.decode(id: 0x70, body: body) == .password(body))
        }
    }

    @Test("strings without their NUL terminator", arguments: [
        (UInt8(ascii: "Q"), Array("select 1".utf8)),
        (UInt8(ascii: "Q"), []),
        (UInt8(ascii: "f"), Array("oops".utf8)),
        (UInt8(ascii: "D"), [0x53] + Array("name".utf8)),
        (UInt8(ascii: "C"), [0x50]),
        (UInt8(ascii: "E"), Array("portal".utf8)),
        (UInt8(ascii: "P"), cstr("s") + Array("select 1".utf8)),
        (UInt8(ascii: "B"), cstr("portal") + Array("stmt".utf8)),
    ] as [(UInt8, [UInt8])])
    func missingTerminator(_ id: UInt8, _ body: [UInt8]) {
        #expect(throws: ProtocolError.missingTerminator(messageID: id)) {
            try FrontendMessage.decode(id: id, body: body)
        }
    }

    @Test("16-bit counts are unsigned: 0xFFFF or 0x8000 with a short body is truncated, not a trap or a huge allocation", arguments: [
        // Parse: parameter type count 0xFFFF (65535), then no type oids.
        (UInt8(ascii: "P"), cstr("") + cstr("select 1") + be16(-1), 4, 0),
        // Parse: count 0x8000 (32768), one oid and half of the next.
        (UInt8(ascii: "P"), cstr("") + cstr("select 1") + be16(.min) + be32(23) + [0, 0], 4, 2),
        // Bind: parameter format count 0xFFFF.
        (UInt8(ascii: "B"), cstr("") + cstr("") + be16(-1), 2, 0),
        // Bind: parameter value count 0xFFFF.
        (UInt8(ascii: "B"), cstr("") + cstr("") + be16(0) + be16(-1), 4, 0),
        // Bind: parameter value count 0x8000 with two NULLs present.
        (UInt8(ascii: "B"), cstr("") + cstr("") + be16(0) + be16(.min) + be32(-1) + be32(-1), 4, 0),
        // Bind: result format count 0xFFFF with one format present.
        (UInt8(ascii: "B"), cstr("") + cstr("") + be16(0) + be16(0) + be16(-1) + be16(1), 2, 0),
        // FunctionCall: argument format count 0xFFFF, one byte left.
        (UInt8(ascii: "F"), be32(1) + be16(-1) + [0], 2, 1),
        // FunctionCall: argument count 0x8000.
        (UInt8(ascii: "F"), be32(1) + be16(0) + be16(-32768), 4, 0),
    ] as [(UInt8, [UInt8], Int, Int)])
    func unsignedCountsTruncated(_ id: UInt8, _ body: [UInt8], _ needed: Int, _ available: Int) {
        #expect(throws: ProtocolError.truncated(messageID: id, needed: needed, available: available)) {
            try FrontendMessage.decode(id: id, body: body)
        }
    }

    @Test("ByteReader.readCount16 and ByteWriter.writeCount16 treat 16-bit counts as unsigned", arguments: [
        (0, [0x00, 0x00]), (1, [0x00, 0x01]), (32_767, [0x7F, 0xFF]), (32_768, [0x80, 0x00]),
        (40_000, [0x9C, 0x40]), (65_535, [0xFF, 0xFF]),
    ] as [(Int, [UInt8])])
    func count16(_ count: Int, _ bytes: [UInt8]) throws {
        var r = ByteReader(bytes + [0xAB], messageID: 0x42)
        #expect(try r.readCount16() == count)
        #expect(r.remaining == 1)
        var w = ByteWriter()
        w.writeCount16(count)
        #expect(w.bytes == bytes)
        // A lone byte is not a count.
        var short = ByteReader([bytes[0]], messageID: 0x42)
        #expect(throws: ProtocolError.truncated(messageID: 0x42, needed: 2, available: 1)) {
            try short.readCount16()
        }
    }

    @Test("a Bind with 40000 NULL parameters (over Int16.max, as libpq allows) round-trips")
    func bindWithManyParameters() throws {
        let bind = Bind(portalName: "p", statementName: "s", parameterFormats: [1],
                        parameters: Array(repeating: nil, count: 40_000), resultFormats: [0, 1])
        let bytes = FrontendMessage.bind(bind).encoded()
        let framed = try #require(frame(bytes))
        #expect(framed.id == UInt8(ascii: "B"))
        // "p\0" "s\0", 1 format, the count, 40000 lengths of -1, 2 result formats.
        let expectedBodyCount = 2 + 2 + 2 + 2 + 2 + 40_000 * 4 + 2 + 4
        #expect(framed.body.count == expectedBodyCount)
        #expect(framed.declaredLength == expectedBodyCount + 4)
        #expect(Array(framed.body[0..<10]) == cstr("p") + cstr("s") + be16(1) + be16(1) + [0x9C, 0x40])
        #expect(Array(framed.body[10..<18]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(Array(framed.body.suffix(6)) == be16(2) + be16(0) + be16(1))
        let decoded = try FrontendMessage.decode(id: framed.id, body: framed.body)
        guard case .bind(let back) = decoded else {
            Issue.record("decoded as \(decoded.id)")
            return
        }
        #expect(back.parameters.count == 40_000)
        #expect(back.parameters.allSatisfy { $0 == nil })
        #expect(back == bind)
        // One parameter short of the declared 40000: the result formats are read as the last length
        // (0x0002_0000), which runs past the end.
        let short = Array(framed.body[..<(framed.body.count - 10)]) + be16(2) + be16(0) + be16(1)
        #expect(throws: ProtocolError.truncated(messageID: 0x42, needed: 0x0002_0000, available: 2)) {
            try FrontendMessage.decode(id: framed.id, body: short)
        }
    }

    @Test("the largest counts, 65535 Parse parameter types and FunctionCall arguments, round-trip")
    func maximumCounts() throws {
        let messages: [FrontendMessage] = [
            .parse(Parse(statementName: "", query: "select", parameterTypes: (0..<65_535).map { Int32($0) })),
            .functionCall(FunctionCall(functionOID: 1, argumentFormats: Array(repeating: 1, count: 65_535),
                                       arguments: Array(repeating: [7], count: 65_535), resultFormat: 0)),
        ]
        for message in messages {
            let framed = try #require(frame(message.encoded()))
            #expect(try FrontendMessage.decode(id: framed.id, body: framed.body) == message)
        }
    }

    @Test("a value length below -1 is an invalid length", arguments: [
        (UInt8(ascii: "B"), cstr("") + cstr("") + be16(0) + be16(1) + be32(-2) + be16(0)),
        (UInt8(ascii: "F"), be32(1) + be16(0) + be16(1) + be32(.min) + be16(0)),
    ] as [(UInt8, [UInt8])])
    func negativeValueLength(_ id: UInt8, _ body: [UInt8]) {
        let error = #expect(throws: ProtocolError.self) {
            try FrontendMessage.decode(id: id, body: body)
        }
        guard case .invalidLength(let mid, let length) = error else {
            Issue.record("expected invalidLength, got \(String(describing: error))")
            return
        }
        #expect(mid == id)
        #expect(length < -1)
    }

    @Test("a value length past the end of the body is truncated, not a huge allocation")
    func hugeValueLength() {
        let body = cstr("") + cstr("") + be16(0) + be16(1) + be32(.max) + [1, 2, 3]
        #expect(throws: ProtocolError.truncated(messageID: 0x42, needed: Int(Int32.max), available: 3)) {
            try FrontendMessage.decode(id: 0x42, body: body)
        }
    }

    @Test("Describe and Close reject a target that is neither 'S' nor 'P'", arguments: [
        UInt8(ascii: "D"), UInt8(ascii: "C"),
    ], [UInt8(ascii: "s"), UInt8(ascii: "p"), 0x00, UInt8(ascii: "X")])
    func badTarget(_ id: UInt8, _ target: UInt8) {
        #expect(throws: ProtocolError.invalidValue(messageID: id, what: "target kind \(target)")) {
            try FrontendMessage.decode(id: id, body: [target] + cstr("name"))
        }
    }

    @Test("ids that are not frontend messages are unknown", arguments: [
        0x00, UInt8(ascii: "Z"), UInt8(ascii: "R"), UInt8(ascii: "K"), UInt8(ascii: "T"), UInt8(ascii: "q"), 0xFF,
    ] as [UInt8])
    func unknownID(_ id: UInt8) {
        #expect(throws: ProtocolError.unknownMessage(messageID: id)) {
            try FrontendMessage.decode(id: id, body: [])
        }
    }

    @Test("decode reports a truncated Execute with exact numbers")
    func truncatedExecuteDetails() {
        // Portal "" then only two of the four maxRows bytes.
        #expect(throws: ProtocolError.truncated(messageID: 0x45, needed: 4, available: 2)) {
            try FrontendMessage.decode(id: 0x45, body: [0, 0, 1])
        }
    }
}
