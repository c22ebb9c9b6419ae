// StartupPacketReader tests: packets split across reads, pipelined leftovers, and lengths rejected early.

import SwitchyardTestSupport
import Testing
@testable import SwitchyardProtocol

@Suite("StartupPacketReader")
struct StartupPacketReaderTests {
    /// A startup packet followed by a pipelined Query, as an eager client might send them.
    static let packet = StartupPacket.startup(StartupMessage(parameters: [("user", "alice"), ("database", "shop")])).encode()
    static let pipelined = FrontendMessage.query("select 1").encoded() + FrontendMessage.sync.encoded()

    /// Feeds `chunks` in order; returns the packet and every byte that followed it (from the
    /// leftover plus any chunks fed after the packet was complete).
    static func run(_ chunks: [[UInt8]]) throws -> (packet: [UInt8]?, after: [UInt8], needMoreCalls: Int) {
        var reader = StartupPacketReader()
        var packet: [UInt8]?
        var after: [UInt8] = []
        var needMore = 0
        for chunk in chunks {
            if packet != nil {
                after += chunk
                continue
            }
            switch try feed(&reader, chunk) {
            case .needMore: needMore += 1
            case let .packet(bytes, leftover):
                packet = bytes
                after += leftover
            }
        }
        return (packet, after, needMore)
    }

    @Test("a packet split at every possible point, with a pipelined message after it")
    func everySplitPoint() throws {
        let stream = Self.packet + Self.pipelined
        for cut in 0...stream.count {
            let result = try Self.run([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(result.packet == Self.packet, "cut at \(cut)")
            #expect(result.after == Self.pipelined, "cut at \(cut)")
            #expect(result.needMoreCalls == (cut < Self.packet.count ? 1 : 0), "cut at \(cut)")
        }
    }

    @Test("a packet fed one byte at a time completes on its last byte")
    func oneByteAtATime() throws {
        var reader = StartupPacketReader()
        for (i, byte) in Self.packet.enumerated() {
            let result = try feed(&reader, [byte])
            if i < Self.packet.count - 1 {
                #expect(result == .needMore, "byte \(i)")
            } else {
                #expect(result == .packet(bytes: Self.packet, leftover: []))
            }
        }
        #expect(try StartupPacket.decode(Self.packet) == .startup(StartupMessage(parameters: [("user", "alice"), ("database", "shop")])))
    }

    @Test("random splits into many chunks")
    func randomSplits() throws {
        var rng = SplitMix64(seed: 0x5747_4152_5455_5000)
        let stream = Self.packet + Self.pipelined
        for _ in 0..<300 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = Int.random(in: 0...7, using: &rng)
                chunks.append(Array(stream[i..<min(stream.count, i + n)]))
                i += n
            }
            let result = try Self.run(chunks)
            #expect(result.packet == Self.packet)
            #expect(result.after == Self.pipelined)
        }
    }

    @Test("an SSLRequest is a complete 8-byte packet; the reader is reusable afterwards")
    func sslThenStartup() throws {
        var reader = StartupPacketReader()
        let ssl = StartupPacket.sslRequest.encode()
        #expect(try feed(&reader, ssl) == .packet(bytes: ssl, leftover: []))
        #expect(try reader.next() == .needMore)
        #expect(try feed(&reader, Array(Self.packet.prefix(3))) == .needMore)
        #expect(try feed(&reader, Array(Self.packet.dropFirst(3))) == .packet(bytes: Self.packet, leftover: []))
    }

    @Test("fewer than four bytes is not an error yet")
    func partialLength() throws {
        var reader = StartupPacketReader()
        #expect(try feed(&reader, []) == .needMore)
        #expect(try feed(&reader, [0, 0]) == .needMore)
        #expect(try feed(&reader, [0]) == .needMore)
    }

    @Test("bad lengths throw as soon as the length is readable", arguments: [
        0, 4, 7, -1, -8, 10_001, 1 << 20, .max, .min,
    ] as [Int32])
    func badLengths(_ length: Int32) throws {
        var reader = StartupPacketReader()
        #expect(throws: ProtocolError.invalidStartupLength(Int(length))) {
            try feed(&reader, be32(length))
        }
        var split = StartupPacketReader()
        #expect(try feed(&split, Array(be32(length).prefix(2))) == .needMore)
        #expect(throws: ProtocolError.invalidStartupLength(Int(length))) {
            try feed(&split, Array(be32(length).dropFirst(2)) + [0, 0, 0, 0])
        }
    }

    @Test("the boundary lengths 8 and 10000 are accepted")
    func boundaryLengths() throws {
        var reader = StartupPacketReader()
        let eight = be32(8) + be32(StartupRequestCode.gssEncRequest)
        #expect(try feed(&reader, eight) == .packet(bytes: eight, leftover: []))

        var big = StartupPacketReader()
        let tenK = be32(10_000) + Array(repeating: 0x61, count: 10_000 - 4)
        #expect(try feed(&big, Array(tenK.prefix(9_999))) == .needMore)
        #expect(try feed(&big, [tenK[9_999], 0x51]) == .packet(bytes: tenK, leftover: [0x51]))
    }
}
