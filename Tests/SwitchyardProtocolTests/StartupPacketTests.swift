// StartupPacket codec tests: round-trips, byte-exact packets from the protocol docs, and rejected lengths and versions.

import Testing
@testable import SwitchyardProtocol

@Suite("StartupPacket codec")
struct StartupPacketTests {
    @Test("encode then decode gives the same packet", arguments: Samples.startupPackets)
    func roundTrip(_ packet: StartupPacket) throws {
        let bytes = packet.encode()
        #expect(Array(bytes.prefix(4)) == be32(Int32(bytes.count)))
        #expect(try StartupPacket.decode(bytes) == packet)
    }

    @Test("StartupMessage keeps parameter order and exposes user and database")
    func startupParameters() throws {
        let packet = try StartupPacket.decode(Samples.startupPackets[0].encode())
        guard case .startup(let message) = packet else {
            Issue.record("decoded as \(packet)")
            return
        }
        #expect(message.parameters.map(\.0) == ["user", "database", "application_name", "options"])
        #expect(message.parameters.map(\.1) == ["alice", "shop", "psql", "-c search_path=app"])
        #expect(message.user == "alice")
        #expect(message.database == "shop")
        #expect(message.parameter("options") == "-c search_path=app")
        #expect(message.parameter("missing") == nil)
        #expect(message.majorVersion == 3)
        #expect(message.minorVersion == 0)
        // The database defaults to the user name, as in PostgreSQL.
        #expect(StartupMessage(parameters: [("user", "bob")]).database == "bob")
        #expect(StartupMessage(parameters: []).database == nil)
        // Equality is order-sensitive: order keeps the encoding byte-exact.
        #expect(StartupMessage(parameters: [("a", "1"), ("b", "2")]) != StartupMessage(parameters: [("b", "2"), ("a", "1")]))
        #expect(StartupMessage(protocolVersion: 3 << 16 | 1, parameters: []) != StartupMessage(parameters: []))
    }

    @Test("byte-exact packets written by hand from the protocol documentation", arguments: [
        (StartupPacket.sslRequest, [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]),
        (.gssEncRequest, [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x30]),
        (.cancel(BackendKey(processID: 1234, secretKey: 5678)), [0, 0, 0, 16, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0x04, 0xD2, 0, 0, 0x16, 0x2E]),
        // Protocol 3.2 CancelRequest: the key is the rest of the packet, here 32 bytes: length 4 + 4 + 4 + 32.
        (.cancel(BackendKey(processID: 1234, secretKey: Array(101...132))), [0, 0, 0, 44, 0x04, 0xD2, 0x16, 0x2E, 0, 0, 0x04, 0xD2] + Array(101...132)),
        // StartupMessage 3.0 with user=bob: length 4 + 4 + "user\0bob\0" + final NUL = 18.
        (.startup(StartupMessage(parameters: [("user", "bob")])),
         [0, 0, 0, 18, 0, 3, 0, 0] + Array("user".utf8) + [0] + Array("bob".utf8) + [0, 0]),
        (.startup(StartupMessage(parameters: [])), [0, 0, 0, 9, 0, 3, 0, 0, 0]),
    ] as [(StartupPacket, [UInt8])])
    func byteExact(_ packet: StartupPacket, _ expected: [UInt8]) throws {
        #expect(packet.encode() == expected)
        #expect(try StartupPacket.decode(expected) == packet)
    }

    @Test("a CancelRequest's key is the rest of the packet: a trailing byte makes a 5-byte key")
    func cancelKeyIsTheRest() throws {
        #expect(try StartupPacket.decode(be32(17) + be32(StartupRequestCode.cancelRequest) + be32(1) + be32(2) + [0])
                == .cancel(BackendKey(processID: 1, secretKey: [0, 0, 0, 2, 0])))
        #expect(try StartupPacket.decode(be32(17) + be32(StartupRequestCode.cancelRequest) + be32(1) + be32(2) + [0])
                != .cancel(BackendKey(processID: 1, secretKey: 2)))
    }

    @Test("a CancelRequest's secret key must be 4 to 256 bytes", arguments: [0, 1, 3, 4, 5, 32, 255, 256, 257, 1000])
    func cancelKeyLength(_ length: Int) throws {
        let key = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let packet = be32(Int32(12 + length)) + be32(StartupRequestCode.cancelRequest) + be32(99) + key
        if (4...BackendKey.maximumSecretLength).contains(length) {
            #expect(try StartupPacket.decode(packet) == .cancel(BackendKey(processID: 99, secretKey: key)))
            #expect(StartupPacket.cancel(BackendKey(processID: 99, secretKey: key)).encode() == packet)
        } else {
            #expect(throws: ProtocolError.invalidValue(messageID: 0, what: "secret key length \(length)")) {
                try StartupPacket.decode(packet)
            }
        }
    }

    /// Protocol 3.2 (PostgreSQL 18) makes the secret key variable length (4 to 256 bytes; the server sends 32).
    @Test("a protocol 3.2 CancelRequest with a 32-byte secret key is a cancel, not a malformed packet")
    func longSecretKeyInCancelRequest() throws {
        let secret = (0..<32).map { UInt8($0) }
        let packet = be32(12 + 32) + be32(StartupRequestCode.cancelRequest) + be32(4242) + secret
        let decoded = try StartupPacket.decode(packet)
        guard case .cancel(let key) = decoded else {
            Issue.record("decoded as \(decoded)")
            return
        }
        #expect(key.processID == 4242)
        #expect(key.secretKey == secret)
        #expect(decoded.encode() == packet)
    }

    @Test("BackendKey's Int32 initializer makes the 4-byte big-endian key of protocol 3.0", arguments: [
        (5678, [0, 0, 0x16, 0x2E]), (0, [0, 0, 0, 0]), (-1, [0xFF, 0xFF, 0xFF, 0xFF]),
        (.min, [0x80, 0, 0, 0]), (.max, [0x7F, 0xFF, 0xFF, 0xFF]), (-559_038_737, [0xDE, 0xAD, 0xBE, 0xEF]),
    ] as [(Int32, [UInt8])])
    func int32SecretKey(_ secret: Int32, _ bytes: [UInt8]) {
        let key = BackendKey(processID: 7, secretKey: secret)
        #expect(key.secretKey == bytes)
        #expect(key == BackendKey(processID: 7, secretKey: bytes))
        #expect(key.hashValue == BackendKey(processID: 7, secretKey: bytes).hashValue)
        // Keys differ by process id, by key bytes and by key length.
        #expect(key != BackendKey(processID: 8, secretKey: bytes))
        #expect(key != BackendKey(processID: 7, secretKey: bytes + [0]))
        #expect(key != BackendKey(processID: 7, secretKey: [bytes[0] ^ 1] + bytes.dropFirst()))
    }

    @Test("request codes are the documented magic numbers")
    func requestCodes() {
        #expect(StartupRequestCode.protocol3 == 3 << 16)
        #expect(StartupRequestCode.cancelRequest == 1234 << 16 | 5678)
        #expect(StartupRequestCode.sslRequest == 1234 << 16 | 5679)
        #expect(StartupRequestCode.gssEncRequest == 1234 << 16 | 5680)
    }

    @Test("a declared length below 8 is rejected", arguments: [0, 4, 7, -1, Int32.min] as [Int32])
    func lengthTooSmall(_ length: Int32) {
        // Both with the body the length claims (when it can exist) and with a plausible 8-byte body.
        #expect(throws: ProtocolError.invalidStartupLength(Int(length))) {
            try StartupPacket.decode(be32(length) + be32(StartupRequestCode.sslRequest))
        }
        if length >= 4 {
            #expect(throws: ProtocolError.invalidStartupLength(Int(length))) {
                try StartupPacket.decode(be32(length) + Array(repeating: 0, count: Int(length) - 4))
            }
        }
    }

    @Test("a packet over 10000 bytes is rejected even when complete")
    func lengthTooLarge() throws {
        var params: [(String, String)] = [("user", "u")]
        params.append(("options", String(repeating: "x", count: 10_000)))
        let bytes = StartupPacket.startup(StartupMessage(parameters: params)).encode()
        #expect(bytes.count > 10_000)
        #expect(throws: ProtocolError.invalidStartupLength(bytes.count)) {
            try StartupPacket.decode(bytes)
        }
        // Exactly 10000 is still accepted.
        let filler = 10_000 - 4 - 4 - cstr("user").count - cstr("u").count - cstr("options").count - 1 - 1
        let exact = StartupPacket.startup(StartupMessage(parameters: [("user", "u"), ("options", String(repeating: "y", count: filler))]))
        let exactBytes = exact.encode()
        #expect(exactBytes.count == 10_000)
        #expect(try StartupPacket.decode(exactBytes) == exact)
        #expect(throws: ProtocolError.invalidStartupLength(10_001)) {
            try StartupPacket.decode(be32(10_001) + Array(repeating: 0, count: 10_001 - 4))
        }
    }

    @Test("a length that disagrees with the bytes given is rejected")
    func lengthMismatch() {
        let good = StartupPacket.startup(StartupMessage(parameters: [("user", "bob")])).encode()
        #expect(throws: ProtocolError.invalidStartupLength(good.count)) {
            try StartupPacket.decode(Array(good.dropLast()))
        }
        #expect(throws: ProtocolError.invalidStartupLength(good.count)) {
            try StartupPacket.decode(good + [0])
        }
        #expect(throws: ProtocolError.invalidStartupLength(16)) {
            try StartupPacket.decode(be32(16) + be32(StartupRequestCode.sslRequest))
        }
    }

    @Test("fewer than four bytes cannot even hold the length")
    func tooShortForLength() {
        for n in 0..<4 {
            #expect(throws: ProtocolError.truncated(messageID: 0, needed: 4, available: n)) {
                try StartupPacket.decode(Array(repeating: 0, count: n))
            }
        }
    }

    @Test("protocol versions other than 3.x are unsupported", arguments: [
        (2, 0), (1, 0), (4, 0), (0, 0), (0xFFFF, 0xFFFF),
    ] as [(Int, Int)])
    func unsupportedVersion(_ major: Int, _ minor: Int) {
        let code = Int32(bitPattern: UInt32(major) << 16 | UInt32(minor))
        let expected = ProtocolError.unsupportedProtocolVersion(major: Int(code >> 16), minor: Int(code & 0xffff))
        #expect(throws: expected) {
            try StartupPacket.decode(be32(9) + be32(code) + [0])
        }
        #expect(throws: expected) {
            try StartupPacket.decode(be32(18) + be32(code) + cstr("user") + cstr("bob") + [0])
        }
    }

    @Test("protocol 2.0 is reported as major 2, minor 0")
    func protocol2() {
        #expect(throws: ProtocolError.unsupportedProtocolVersion(major: 2, minor: 0)) {
            try StartupPacket.decode([0, 0, 0, 8, 0, 2, 0, 0])
        }
    }

    @Test("later 3.x minor versions are accepted")
    func protocol3Minor() throws {
        let packet = try StartupPacket.decode(be32(9) + be32(3 << 16 | 2) + [0])
        guard case .startup(let message) = packet else {
            Issue.record("decoded as \(packet)")
            return
        }
        #expect(message.majorVersion == 3)
        #expect(message.minorVersion == 2)
    }

    @Test("malformed bodies are typed errors")
    func malformedBodies() {
        // SSLRequest and GSSENCRequest carry nothing after the code.
        #expect(throws: ProtocolError.trailingBytes(messageID: 0, count: 1)) {
            try StartupPacket.decode(be32(9) + be32(StartupRequestCode.sslRequest) + [0])
        }
        #expect(throws: ProtocolError.trailingBytes(messageID: 0, count: 4)) {
            try StartupPacket.decode(be32(12) + be32(StartupRequestCode.gssEncRequest) + [0, 0, 0, 0])
        }
        // CancelRequest needs a whole process id and a key of at least 4 bytes.
        #expect(throws: ProtocolError.truncated(messageID: 0, needed: 4, available: 2)) {
            try StartupPacket.decode(be32(10) + be32(StartupRequestCode.cancelRequest) + [0, 1])
        }
        #expect(throws: ProtocolError.invalidValue(messageID: 0, what: "secret key length 0")) {
            try StartupPacket.decode(be32(12) + be32(StartupRequestCode.cancelRequest) + be32(1))
        }
        #expect(throws: ProtocolError.invalidValue(messageID: 0, what: "secret key length 3")) {
            try StartupPacket.decode(be32(15) + be32(StartupRequestCode.cancelRequest) + be32(1) + [0, 0, 2])
        }
        // A parameter list without its final NUL.
        #expect(throws: ProtocolError.missingTerminator(messageID: 0)) {
            try StartupPacket.decode(be32(17) + be32(StartupRequestCode.protocol3) + cstr("user") + cstr("bob"))
        }
        // A name with no value.
        #expect(throws: ProtocolError.missingTerminator(messageID: 0)) {
            try StartupPacket.decode(be32(13) + be32(StartupRequestCode.protocol3) + cstr("user"))
        }
        // Bytes after the terminating NUL.
        #expect(throws: ProtocolError.trailingBytes(messageID: 0, count: 2)) {
            try StartupPacket.decode(be32(11) + be32(StartupRequestCode.protocol3) + [0, 0x41, 0])
        }
    }
}
