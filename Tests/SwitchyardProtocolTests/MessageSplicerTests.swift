// The splicer passes untouched bytes through and replaces held messages, across any chunking.
import SwitchyardTestSupport
import Testing
@testable import SwitchyardProtocol

@Suite("MessageSplicer")
struct MessageSplicerTests {
    static let stream: [UInt8] = {
        var w = ByteWriter()
        FrontendMessage.parse(Parse(statementName: "s1", query: "select * from users where id = $1")).encode(into: &w)
        FrontendMessage.bind(Bind(portalName: "", statementName: "s1", parameters: [Array("7".utf8)])).encode(into: &w)
        FrontendMessage.execute(Execute(portalName: "")).encode(into: &w)
        FrontendMessage.sync.encode(into: &w)
        FrontendMessage.query("select 1; select 2").encode(into: &w)
        FrontendMessage.copyData(Array(repeating: 0x41, count: 3000)).encode(into: &w)
        FrontendMessage.query("").encode(into: &w)
        FrontendMessage.terminate.encode(into: &w)
        return w.bytes
    }()

    /// Runs the splicer over `stream` cut at `cuts`, replacing held Query texts by `rewrite`.
    static func run(cuts: [Int], hold: Set<UInt8>, rewrite: (String) -> String) throws -> (output: [UInt8], seen: [UInt8], held: [String]) {
        var splicer = MessageSplicer(maxMessageSize: 1 << 20, hold: hold)
        var output: [UInt8] = []
        var seen: [UInt8] = []
        var heldTexts: [String] = []
        var start = 0
        for end in cuts + [stream.count] where end >= start {
            try stream[start..<end].withUnsafeBytes { chunk in
                try splicer.process(chunk, onMessage: { seen.append($0.id) }, onHeld: { id, raw in
                    let body = [UInt8](raw)
                    guard case let .query(text) = try? FrontendMessage.decode(id: id, body: body) else {
                        return [id] + Array(repeating: 0, count: 0) + body  // not reached in these tests
                    }
                    heldTexts.append(text)
                    return FrontendMessage.query(rewrite(text)).encoded()
                }, emit: { output.append(contentsOf: $0) })
            }
            start = end
        }
        #expect(splicer.isAtMessageBoundary)
        return (output, seen, heldTexts)
    }

    static let ids: [UInt8] = [0x50, 0x42, 0x45, 0x53, 0x51, 0x64, 0x51, 0x58]

    @Test("with nothing held, output equals input at every single cut point")
    func passThroughEveryCut() throws {
        for cut in 0...Self.stream.count {
            let r = try Self.run(cuts: [cut], hold: [], rewrite: { $0 })
            #expect(r.output == Self.stream, "cut at \(cut)")
            #expect(r.seen == Self.ids)
        }
    }

    @Test("held messages returned unchanged give the input back, at every pair of cuts")
    func heldUnchangedEveryCut() throws {
        let n = Self.stream.count
        for a in stride(from: 0, through: n, by: 7) {
            for b in stride(from: a, through: n, by: 13) {
                let r = try Self.run(cuts: [a, b], hold: [0x51], rewrite: { $0 })
                #expect(r.output == Self.stream, "cuts \(a), \(b)")
                #expect(r.held == ["select 1; select 2", ""])
            }
        }
    }

    @Test("a chunk whose held messages are all given back unchanged leaves as one slice of itself, not a copy")
    func untouchedChunkIsOneSlice() throws {
        var splicer = MessageSplicer(maxMessageSize: 1 << 20, hold: [0x50, 0x42, 0x51])
        var held: [UInt8] = []
        var pieces: [(base: UnsafeRawPointer?, count: Int)] = []
        try Self.stream.withUnsafeBytes { chunk in
            try splicer.process(chunk, onMessage: { _ in }, onHeld: { id, _ in
                held.append(id)
                return nil
            }, emit: { pieces.append(($0.baseAddress, $0.count)) })
            #expect(pieces.count == 1)
            #expect(pieces.first?.base == chunk.baseAddress && pieces.first?.count == chunk.count)
        }
        #expect(held == [0x50, 0x42, 0x51, 0x51])
        // A held message cut by the chunk's end is still collected whole and given back.
        var output: [UInt8] = []
        let cut = 10
        for range in [0..<cut, cut..<Self.stream.count] {
            try Self.stream[range].withUnsafeBytes { chunk in
                try splicer.process(chunk, onMessage: { _ in }, onHeld: { _, _ in nil }, emit: { output.append(contentsOf: $0) })
            }
        }
        #expect(output == Self.stream)
    }

    @Test("held messages are replaced in place, one byte at a time too")
    func replaced() throws {
        var expected = ByteWriter()
        FrontendMessage.parse(Parse(statementName: "s1", query: "select * from users where id = $1")).encode(into: &expected)
        FrontendMessage.bind(Bind(portalName: "", statementName: "s1", parameters: [Array("7".utf8)])).encode(into: &expected)
        FrontendMessage.execute(Execute(portalName: "")).encode(into: &expected)
        FrontendMessage.sync.encode(into: &expected)
        FrontendMessage.query("/* rewritten */ select 1; select 2").encode(into: &expected)
        FrontendMessage.copyData(Array(repeating: 0x41, count: 3000)).encode(into: &expected)
        FrontendMessage.query("/* rewritten */ ").encode(into: &expected)
        FrontendMessage.terminate.encode(into: &expected)
        let whole = try Self.run(cuts: [], hold: [0x51], rewrite: { "/* rewritten */ " + $0 })
        #expect(whole.output == expected.bytes)
        let byteByByte = try Self.run(cuts: Array(0...Self.stream.count), hold: [0x51], rewrite: { "/* rewritten */ " + $0 })
        #expect(byteByByte.output == expected.bytes)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            let cuts = (0..<Int(rng.next() % 12)).map { _ in Int(rng.next() % UInt64(Self.stream.count + 1)) }.sorted()
            #expect(try Self.run(cuts: cuts, hold: [0x51], rewrite: { "/* rewritten */ " + $0 }).output == expected.bytes)
        }
    }

    @Test("limits apply to every message before its body arrives")
    func limits() {
        var splicer = MessageSplicer(maxMessageSize: 100, hold: [0x51])
        let header: [UInt8] = [0x51, 0, 0, 1, 0]
        #expect(throws: ProtocolError.messageTooLarge(messageID: 0x51, length: 256, limit: 100)) {
            try header.withUnsafeBytes { chunk in
                try splicer.process(chunk, onMessage: { _ in }, onHeld: { _, b in [UInt8](b) }, emit: { _ in })
            }
        }
        var other = MessageSplicer(maxMessageSize: 100, hold: [])
        #expect(throws: ProtocolError.invalidLength(messageID: 0x44, length: 3)) {
            try [UInt8]([0x44, 0, 0, 0, 3]).withUnsafeBytes { chunk in
                try other.process(chunk, onMessage: { _ in }, onHeld: { _, b in [UInt8](b) }, emit: { _ in })
            }
        }
    }
}

@Suite("ResponseSkipper")
struct ResponseSkipperTests {
    static let injected: [UInt8] = BackendMessage.commandComplete(tag: "SET").encoded() + BackendMessage.readyForQuery(.idle).encoded()
    static let failed: [UInt8] = BackendMessage.errorResponse(ErrorFields(severity: "ERROR", sqlState: "42601", message: "bad")).encoded()
        + BackendMessage.readyForQuery(.idle).encoded()
    static let client: [UInt8] = BackendMessage.rowDescription(RowDescription(columns: [ColumnDescription(name: "a", typeOID: 23)])).encoded()
        + BackendMessage.commandComplete(tag: "SELECT 0").encoded() + BackendMessage.readyForQuery(.idle).encoded()

    @Test("drops exactly the injected answers, at every split, and keeps their errors")
    func dropsPrefix() throws {
        let stream = Self.injected + Self.failed + Self.client
        for cut in 0...stream.count {
            var skipper = ResponseSkipper()
            skipper.expectAnswer()
            skipper.expectAnswer()
            var kept: [UInt8] = []
            var errors: [String] = []
            for part in [Array(stream[..<cut]), Array(stream[cut...])] {
                let consumed = try part.withUnsafeBytes { raw in
                    try skipper.consume(raw) { errors.append($0.message ?? "") }
                }
                kept += part[consumed...]
            }
            #expect(kept == Self.client, "cut \(cut)")
            #expect(errors == ["bad"])
            #expect(!skipper.isActive)
        }
    }

    @Test("does nothing when no answer is expected")
    func inactive() throws {
        var skipper = ResponseSkipper()
        let consumed = try Self.client.withUnsafeBytes { raw in try skipper.consume(raw) { _ in } }
        #expect(consumed == 0)
    }
}

@Suite("ResponseSkipper: the start of an answer")
struct ResponseSkipperLeadingTests {
    static let prepared: [UInt8] = BackendMessage.commandComplete(tag: "PREPARE").encoded()
    static let stale = ErrorFields(fields: [
        (ErrorField.severity.rawValue, "ERROR"), (ErrorField.sqlState.rawValue, "0A000"),
        (ErrorField.message.rawValue, "cached plan must not change result type"), (ErrorField.routine.rawValue, "RevalidateCachedQuery"),
    ])
    static let other: [UInt8] = BackendMessage.errorResponse(ErrorFields(severity: "ERROR", sqlState: "22012", message: "division by zero")).encoded()
        + BackendMessage.readyForQuery(.idle).encoded()

    /// What reaches the client of `stream` cut in two at `cut`, and the outcome.
    static func run(_ stream: [UInt8], cut: Int, injected: Int = 0, leading: ResponseSkipper.Leading)
        throws -> (kept: [UInt8], outcome: ResponseSkipper.LeadingOutcome?) {
        var skipper = ResponseSkipper(isStale: { $0.sqlState == "0A000" })
        for _ in 0..<injected { skipper.expectAnswer() }
        skipper.expectLeading(leading)
        var kept: [UInt8] = []
        var outcome: ResponseSkipper.LeadingOutcome?
        for part in [Array(stream[..<cut]), Array(stream[cut...])] {
            let consumed = skipper.isActive ? try part.withUnsafeBytes { try skipper.consume($0) { _ in } } : 0
            if let o = skipper.takeOutcome() { outcome = o }
            kept += (skipper.takeReturned() ?? []) + part[consumed...]
        }
        return (kept, outcome)
    }

    @Test("drops the leading CommandCompletes after the injected answers, at every split")
    func completions() throws {
        let stream = ResponseSkipperTests.injected + Self.prepared + Self.prepared + ResponseSkipperTests.client
        for cut in 0...stream.count {
            let (kept, outcome) = try Self.run(stream, cut: cut, injected: 1, leading: .completions(2))
            #expect(kept == ResponseSkipperTests.client, "cut \(cut)")
            #expect(outcome == .completionsDropped, "cut \(cut)")
        }
    }

    @Test("notices, notifications and parameters before the leading messages go to the client, which sees the rest as if they were not there")
    func asynchronousFirst() throws {
        let notice = BackendMessage.noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: "hello")).encoded()
        let staleAnswer = BackendMessage.errorResponse(Self.stale).encoded() + BackendMessage.readyForQuery(.idle).encoded()
        let cases: [(stream: [UInt8], leading: ResponseSkipper.Leading, kept: [UInt8], outcome: ResponseSkipper.LeadingOutcome)] = [
            (notice + Self.prepared + ResponseSkipperTests.client, .completions(1), notice + ResponseSkipperTests.client, .completionsDropped),
            (notice + notice + staleAnswer, .staleError, notice + notice, .stale(Self.stale)),
            (notice + ResponseSkipperTests.client, .staleError, notice + ResponseSkipperTests.client, .passed),
        ]
        for c in cases {
            for cut in 0...c.stream.count {
                var skipper = ResponseSkipper(isStale: { $0.sqlState == "0A000" })
                skipper.expectLeading(c.leading)
                var kept: [UInt8] = []
                var outcome: ResponseSkipper.LeadingOutcome?
                for part in [Array(c.stream[..<cut]), Array(c.stream[cut...])] {
                    // As a session reads: the skipper, what it hands back, the skipper again on the rest.
                    var rest = part[...]
                    while skipper.isActive && !rest.isEmpty {
                        let consumed = try Array(rest).withUnsafeBytes { try skipper.consume($0) { _ in } }
                        rest = rest.dropFirst(consumed)
                        if let o = skipper.takeOutcome() { outcome = o }
                        if let back = skipper.takeReturned() {
                            kept += back
                            continue
                        }
                        if consumed == 0 { break }
                    }
                    if let o = skipper.takeOutcome() { outcome = o }
                    kept += rest
                }
                #expect(kept == c.kept, "cut \(cut)")
                #expect(outcome == c.outcome, "cut \(cut)")
            }
        }
    }

    @Test("once the client has another request in flight, a stale error is the client's")
    func staleKept() throws {
        let staleAnswer = BackendMessage.errorResponse(Self.stale).encoded() + BackendMessage.readyForQuery(.idle).encoded()
        var skipper = ResponseSkipper(isStale: { $0.sqlState == "0A000" })
        skipper.expectLeading(.staleError)
        skipper.keepStaleErrors()
        #expect(skipper.takeOutcome() == .passed)
        #expect(!skipper.isActive)
        // Kept while the error is half read.
        skipper.expectLeading(.staleError)
        let first = try Array(staleAnswer[..<7]).withUnsafeBytes { try skipper.consume($0) { _ in } }
        #expect(first == 7)
        skipper.keepStaleErrors()
        let rest = Array(staleAnswer[7...])
        let consumed = try rest.withUnsafeBytes { try skipper.consume($0) { _ in } }
        #expect(skipper.takeOutcome() == .passed)
        #expect((skipper.takeReturned() ?? []) + rest[consumed...] == staleAnswer)
    }

    @Test("an error before the CommandCompletes is the client's")
    func interrupted() throws {
        let stream = Self.prepared + Self.other
        for cut in 0...stream.count {
            let (kept, outcome) = try Self.run(stream, cut: cut, leading: .completions(2))
            #expect(kept == Self.other, "cut \(cut)")
            #expect(outcome == .passed, "cut \(cut)")
        }
    }

    @Test("a stale error is dropped with its answer; another error and a plain answer pass whole")
    func staleError() throws {
        let staleAnswer = BackendMessage.errorResponse(Self.stale).encoded() + BackendMessage.readyForQuery(.idle).encoded()
        for cut in 0...staleAnswer.count {
            let (kept, outcome) = try Self.run(staleAnswer, cut: cut, leading: .staleError)
            #expect(kept.isEmpty, "cut \(cut)")
            #expect(outcome == .stale(Self.stale), "cut \(cut)")
        }
        for answer in [Self.other, ResponseSkipperTests.client] {
            for cut in 0...answer.count {
                let (kept, outcome) = try Self.run(answer, cut: cut, leading: .staleError)
                #expect(kept == answer, "cut \(cut)")
                #expect(outcome == .passed, "cut \(cut)")
            }
        }
    }
}
