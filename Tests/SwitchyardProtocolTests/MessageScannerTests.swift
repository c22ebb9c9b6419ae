// MessageScanner tests: boundaries across every chunk split, bodies only for inspected ids, and limits enforced at header time.

import SwitchyardTestSupport
import Testing
@testable import SwitchyardProtocol

@Suite("MessageScanner")
struct MessageScannerTests {
    /// A session-like server stream: authentication, parameters, a result set, errors, COPY data, empty bodies.
    static let messages: [[UInt8]] = {
        var list: [BackendMessage] = [
            .authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])),
            .authentication(.saslContinue(data: Array("r=nonce,s=salt,i=4096".utf8))),
            .authentication(.ok),
            .parameterStatus(name: "server_version", value: "17.2"),
            .parameterStatus(name: "TimeZone", value: "UTC"),
            .backendKeyData(BackendKey(processID: 77, secretKey: 99)),
            .readyForQuery(.idle),
            .parseComplete,
            .bindComplete,
            .rowDescription(RowDescription(columns: [ColumnDescription(name: "n", typeOID: 23, typeSize: 4)])),
        ]
        for i in 0..<6 { list.append(.dataRow(DataRow(values: [Array(String(i).utf8), nil]))) }
        list += [
            .commandComplete(tag: "SELECT 6"),
            .readyForQuery(.inTransaction),
            .noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: "hi")),
            .errorResponse(ErrorFields(severity: "ERROR", sqlState: "22012", message: "division by zero")),
            .readyForQuery(.failed),
            .copyOutResponse(CopyResponse(overallFormat: 0, columnFormats: [0])),
            .copyData(Array(repeating: 0x61, count: 300)),
            .copyDone,
            .emptyQueryResponse,
            .readyForQuery(.idle),
        ]
        return list.map { $0.encoded() }
    }()

    static let stream: [UInt8] = messages.flatMap { $0 }

    /// Offsets where a message starts or the stream ends.
    static let boundaries: Set<Int> = {
        var offsets: Set<Int> = [0]
        var offset = 0
        for m in messages {
            offset += m.count
            offsets.insert(offset)
        }
        return offsets
    }()

    static let inspectSets: [Set<UInt8>] = [
        SessionStateMachine.inspectedServerMessages,
        [],
        Set(BackendMessageID.allCases.map(\.rawValue)),
        [UInt8(ascii: "D"), UInt8(ascii: "d")],
    ]

    /// What the scanner must report for `messages`, and the stream offset by which each report is due:
    /// inspected messages once their body is complete, others once their header is.
    static func expected(inspect: Set<UInt8>) -> [(message: ScannedMessage, dueAt: Int)] {
        var out: [(ScannedMessage, Int)] = []
        var offset = 0
        for m in messages {
            let id = m[0]
            let bodyLength = m.count - 5
            if inspect.contains(id) && bodyLength <= MessageScanner.inspectLimit {
                out.append((ScannedMessage(id: id, bodyLength: bodyLength, body: Array(m[5...])), offset + m.count))
            } else {
                out.append((ScannedMessage(id: id, bodyLength: bodyLength, body: nil), offset + 5))
            }
            offset += m.count
        }
        return out
    }

    static func collectedCount(_ scanner: MessageScanner) -> Int? {
        (Mirror(reflecting: scanner).descendant("collected") as? [UInt8])?.count
    }

    @Test("the whole stream in one chunk", arguments: inspectSets)
    func oneChunk(_ inspect: Set<UInt8>) throws {
        var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: inspect)
        #expect(scanner.isAtMessageBoundary)
        let got = try scan(&scanner, Self.stream)
        #expect(got == Self.expected(inspect: inspect).map(\.message))
        #expect(scanner.isAtMessageBoundary)
    }

    @Test("split in two at every possible point: same messages, each reported as soon as it is due", arguments: inspectSets)
    func everyTwoWaySplit(_ inspect: Set<UInt8>) throws {
        let expected = Self.expected(inspect: inspect)
        let all = expected.map(\.message)
        for cut in 0...Self.stream.count {
            var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: inspect)
            let first = try scan(&scanner, Array(Self.stream[..<cut]))
            let due = expected.filter { $0.dueAt <= cut }.count
            #expect(first == Array(all.prefix(due)), "cut at \(cut)")
            #expect(scanner.isAtMessageBoundary == Self.boundaries.contains(cut), "cut at \(cut)")
            let second = try scan(&scanner, Array(Self.stream[cut...]))
            #expect(first + second == all, "cut at \(cut)")
            #expect(scanner.isAtMessageBoundary)
        }
    }

    @Test("one byte at a time: boundary flag and reports are exact after every byte", arguments: inspectSets)
    func byteByByte(_ inspect: Set<UInt8>) throws {
        let expected = Self.expected(inspect: inspect)
        var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: inspect)
        var got: [ScannedMessage] = []
        for (i, byte) in Self.stream.enumerated() {
            got += try scan(&scanner, [byte])
            let offset = i + 1
            #expect(got.count == expected.filter { $0.dueAt <= offset }.count, "after byte \(offset)")
            #expect(scanner.isAtMessageBoundary == Self.boundaries.contains(offset), "after byte \(offset)")
        }
        #expect(got == expected.map(\.message))
    }

    @Test("finishMessage stops at the end of the message in progress, wherever the stream was cut", arguments: inspectSets)
    func finishMessageStopsAtTheBoundary(_ inspect: Set<UInt8>) throws {
        let expected = Self.expected(inspect: inspect)
        let all = expected.map(\.message)
        let sortedBoundaries = Self.boundaries.sorted()
        for cut in 0...Self.stream.count {
            var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: inspect)
            var got = try scan(&scanner, Array(Self.stream[..<cut]))
            let rest = Array(Self.stream[cut...])
            let consumed = try rest.withUnsafeBytes { raw in
                try scanner.finishMessage(raw) { got.append($0) }
            }
            // The next boundary at or after the cut, and nothing reported past it.
            let boundary = sortedBoundaries.first { $0 >= cut }!
            #expect(consumed == boundary - cut, "cut at \(cut)")
            #expect(scanner.isAtMessageBoundary, "cut at \(cut)")
            #expect(got == Array(all.prefix(expected.filter { $0.dueAt <= boundary }.count)), "cut at \(cut)")
            // The plain scan takes the stream on from there.
            got += try scan(&scanner, Array(rest[consumed...]))
            #expect(got == all, "cut at \(cut)")
        }
    }

    @Test("2000 random multi-chunk splits (seeded) give the same sequence")
    func randomSplits() throws {
        var rng = SplitMix64(seed: 0xC0FF_EE00_1234_5678)
        let stream = Self.stream
        for iteration in 0..<2000 {
            let inspect = Self.inspectSets[iteration % Self.inspectSets.count]
            var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: inspect)
            var got: [ScannedMessage] = []
            var i = 0
            // Mix tiny chunks (split headers) with large ones (several messages per chunk), and empty reads.
            let maxChunk = [1, 3, 8, 40, stream.count][Int.random(in: 0..<5, using: &rng)]
            while i < stream.count {
                let n = Int.random(in: 0...maxChunk, using: &rng)
                let end = min(stream.count, i + n)
                got += try scan(&scanner, Array(stream[i..<end]))
                #expect(scanner.isAtMessageBoundary == Self.boundaries.contains(end))
                i = end
            }
            #expect(got == Self.expected(inspect: inspect).map(\.message), "iteration \(iteration)")
            #expect(scanner.isAtMessageBoundary)
        }
    }

    @Test("a 10 MB DataRow, not inspected, is reported at header time and never buffered")
    func hugeUninspectedDataRow() throws {
        let bodyLength = 10 * 1024 * 1024
        var scanner = MessageScanner(maxMessageSize: 64 * 1024 * 1024, inspect: SessionStateMachine.inspectedServerMessages)
        let header = [UInt8(ascii: "D")] + be32(Int32(bodyLength + 4))
        let reported = try scan(&scanner, header)
        #expect(reported == [ScannedMessage(id: 0x44, bodyLength: bodyLength, body: nil)])
        #expect(!scanner.isAtMessageBoundary)

        let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
        let chunks = bodyLength / chunk.count
        for n in 0..<(chunks - 1) {
            let more = try scan(&scanner, chunk)
            if !more.isEmpty { Issue.record("chunk \(n) reported \(more.count) messages") }
            if n % 40 == 0 {
                #expect(try #require(Self.collectedCount(scanner)) == 0, "bytes buffered after chunk \(n)")
                #expect(!scanner.isAtMessageBoundary)
            }
        }
        // The last body bytes and a whole ReadyForQuery arrive in the same read.
        let tail = chunk + BackendMessage.readyForQuery(.idle).encoded()
        let last = try scan(&scanner, tail)
        #expect(last == [ScannedMessage(id: 0x5A, bodyLength: 1, body: [0x49])])
        #expect(scanner.isAtMessageBoundary)
        #expect(try #require(Self.collectedCount(scanner)) == 0)
    }

    @Test("an inspected message over inspectLimit comes without its body; one at the limit comes with it")
    func inspectLimit() throws {
        let limit = MessageScanner.inspectLimit
        var scanner = MessageScanner(maxMessageSize: 1 << 20, inspect: [UInt8(ascii: "d")])
        let over = BackendMessage.copyData([UInt8](repeating: 1, count: limit + 1)).encoded()
        let atLimit = BackendMessage.copyData([UInt8](repeating: 2, count: limit)).encoded()

        // Over the limit: reported as soon as the header is complete, body nil.
        #expect(try scan(&scanner, Array(over.prefix(5))) == [ScannedMessage(id: 0x64, bodyLength: limit + 1, body: nil)])
        #expect(try scan(&scanner, Array(over[5..<1000])).isEmpty)
        #expect(try #require(Self.collectedCount(scanner)) == 0)
        #expect(try scan(&scanner, Array(over[1000...])).isEmpty)
        #expect(scanner.isAtMessageBoundary)

        // At the limit: reported only when the body is complete, with the body.
        #expect(try scan(&scanner, Array(atLimit.prefix(limit))).isEmpty)
        #expect(try scan(&scanner, Array(atLimit.dropFirst(limit))) == [ScannedMessage(id: 0x64, bodyLength: limit, body: [UInt8](repeating: 2, count: limit))])
        #expect(scanner.isAtMessageBoundary)
    }

    @Test("inspected messages with an empty body are reported with an empty body")
    func inspectedEmptyBody() throws {
        var scanner = MessageScanner(maxMessageSize: 1024, inspect: [UInt8(ascii: "S")])
        let got = try scan(&scanner, FrontendMessage.sync.encoded() + FrontendMessage.flush.encoded())
        #expect(got == [ScannedMessage(id: 0x53, bodyLength: 0, body: []), ScannedMessage(id: 0x48, bodyLength: 0, body: nil)])
    }

    @Test("a length field below 4 is an invalid length", arguments: [0, 1, 3, -1, .min] as [Int32])
    func lengthBelowFour(_ length: Int32) throws {
        var scanner = MessageScanner(maxMessageSize: 1024, inspect: [])
        #expect(throws: ProtocolError.invalidLength(messageID: 0x44, length: Int(length))) {
            try scan(&scanner, [0x44] + be32(length))
        }
        // Also when the bad header follows a good message and is split across reads.
        var split = MessageScanner(maxMessageSize: 1024, inspect: [])
        let good = FrontendMessage.sync.encoded()
        let header = [0x51] + be32(length)
        #expect(try scan(&split, good + header.prefix(2)) == [ScannedMessage(id: 0x53, bodyLength: 0, body: nil)])
        #expect(!split.isAtMessageBoundary)
        #expect(throws: ProtocolError.invalidLength(messageID: 0x51, length: Int(length))) {
            try scan(&split, Array(header.dropFirst(2)) + [0x51, 0x00])
        }
    }

    @Test("a length field of exactly 4 is an empty body")
    func lengthFour() throws {
        var scanner = MessageScanner(maxMessageSize: 4, inspect: [0x5A])
        #expect(try scan(&scanner, [0x5A] + be32(4)) == [ScannedMessage(id: 0x5A, bodyLength: 0, body: [])])
        #expect(scanner.isAtMessageBoundary)
    }

    @Test("a length over maxMessageSize throws from the header alone, before any body", arguments: [
        Set<UInt8>(), [0x44],
    ])
    func tooLarge(_ inspect: Set<UInt8>) throws {
        var scanner = MessageScanner(maxMessageSize: 1024, inspect: inspect)
        #expect(throws: ProtocolError.messageTooLarge(messageID: 0x44, length: 1025, limit: 1024)) {
            try scan(&scanner, [0x44] + be32(1025))
        }
        var huge = MessageScanner(maxMessageSize: 1024, inspect: inspect)
        #expect(try scan(&huge, [0x44, 0x7F]).isEmpty)
        #expect(throws: ProtocolError.messageTooLarge(messageID: 0x44, length: Int(Int32.max), limit: 1024)) {
            try scan(&huge, [0xFF, 0xFF, 0xFF])
        }
        // Exactly the limit (the length field counts itself) is allowed.
        var ok = MessageScanner(maxMessageSize: 1024, inspect: inspect)
        let body = [UInt8](repeating: 7, count: 1020)
        let got = try scan(&ok, [0x44] + be32(1024) + body)
        #expect(got == [ScannedMessage(id: 0x44, bodyLength: 1020, body: inspect.isEmpty ? nil : body)])
    }

    @Test("isAtMessageBoundary tracks partial headers and bodies")
    func boundaryFlag() throws {
        var scanner = MessageScanner(maxMessageSize: 1024, inspect: [0x5A])
        #expect(scanner.isAtMessageBoundary)
        _ = try scan(&scanner, [])
        #expect(scanner.isAtMessageBoundary)
        let z = BackendMessage.readyForQuery(.idle).encoded()
        for k in 1..<z.count {
            var s = MessageScanner(maxMessageSize: 1024, inspect: [0x5A])
            #expect(try scan(&s, Array(z.prefix(k))).isEmpty)
            #expect(!s.isAtMessageBoundary, "after \(k) bytes")
        }
        #expect(try scan(&scanner, z) == [ScannedMessage(id: 0x5A, bodyLength: 1, body: [0x49])])
        #expect(scanner.isAtMessageBoundary)
        // Not inspected: reported at the header, but the body is still pending.
        let c = BackendMessage.commandComplete(tag: "SELECT 1").encoded()
        #expect(try scan(&scanner, Array(c.prefix(5))) == [ScannedMessage(id: 0x43, bodyLength: 9, body: nil)])
        #expect(!scanner.isAtMessageBoundary)
        #expect(try scan(&scanner, Array(c.dropFirst(5))).isEmpty)
        #expect(scanner.isAtMessageBoundary)
    }
}
