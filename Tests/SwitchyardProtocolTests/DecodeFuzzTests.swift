// Seeded property tests: random and mutated bytes fed to every decoder must return or throw ProtocolError, never trap.

import SwitchyardTestSupport
import Testing
@testable import SwitchyardProtocol

@Suite("Decoders never trap on arbitrary input")
struct DecodeFuzzTests {
    static let iterations = 2000

    static let frontendIDs = FrontendMessageID.allCases.map(\.rawValue)
    static let backendIDs = BackendMessageID.allCases.map(\.rawValue)

    /// Values that tend to break length and count handling.
    static let nastyWords: [[UInt8]] = [
        [0xFF, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0], [0x7F, 0xFF, 0xFF, 0xFF], [0xFF, 0xFF, 0xFF, 0xFE],
        [0, 0, 0, 0], [0x7F, 0xFF], [0x80, 0x00], [0xFF, 0xFF], [0, 0],
    ]

    /// Either pure random bytes or a valid body with a few random mutations.
    static func body(from seeds: [[UInt8]], _ rng: inout SplitMix64) -> [UInt8] {
        if Bool.random(using: &rng) || seeds.isEmpty {
            return rng.bytes(count: Int.random(in: 0...48, using: &rng))
        }
        var b = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !b.isEmpty:
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1:
                b.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...b.count, using: &rng))
            case 2 where !b.isEmpty:
                b.remove(at: Int.random(in: 0..<b.count, using: &rng))
            case 3:
                b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
            case 4:
                let word = nastyWords[Int.random(in: 0..<nastyWords.count, using: &rng)]
                let at = Int.random(in: 0...b.count, using: &rng)
                for (k, byte) in word.enumerated() where at + k < b.count { b[at + k] = byte }
            default:
                b += [0]
            }
        }
        return b
    }

    static func id(from known: [UInt8], _ rng: inout SplitMix64) -> UInt8 {
        Int.random(in: 0..<8, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng) : known[Int.random(in: 0..<known.count, using: &rng)]
    }

    @Test("FrontendMessage.decode on random and mutated bodies")
    func frontend() throws {
        var rng = SplitMix64(seed: 1)
        let seeds = Samples.frontend.map { frame($0.encoded())! }
        var decodedCount = 0, thrownCount = 0
        for _ in 0..<Self.iterations {
            let pickSeed = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            let useSeedID = Bool.random(using: &rng)
            let id = useSeedID ? pickSeed.id : Self.id(from: Self.frontendIDs, &rng)
            let body = Self.body(from: seeds.filter { $0.id == id }.map(\.body), &rng)
            switch Result(catching: { () throws(ProtocolError) in try FrontendMessage.decode(id: id, body: body) }) {
            case .success(let message):
                decodedCount += 1
                // Whatever decodes must re-encode to a message that decodes to itself.
                let again = try #require(frame(message.encoded()))
                #expect(again.id == id)
                #expect(again.declaredLength == again.body.count + 4)
                #expect(try FrontendMessage.decode(id: again.id, body: again.body) == message)
            case .failure(let error):
                thrownCount += 1
                #expect(!error.description.isEmpty)
            }
        }
        // Both outcomes must be exercised, or the generator is not testing anything.
        #expect(decodedCount > 100)
        #expect(thrownCount > 100)
    }

    @Test("BackendMessage.decode on random and mutated bodies")
    func backend() throws {
        var rng = SplitMix64(seed: 2)
        let seeds = Samples.backend.map { frame($0.encoded())! }
        var decodedCount = 0, thrownCount = 0
        for _ in 0..<Self.iterations {
            let pickSeed = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            let id = Bool.random(using: &rng) ? pickSeed.id : Self.id(from: Self.backendIDs, &rng)
            let body = Self.body(from: seeds.filter { $0.id == id }.map(\.body), &rng)
            switch Result(catching: { () throws(ProtocolError) in try BackendMessage.decode(id: id, body: body) }) {
            case .success(let message):
                decodedCount += 1
                let again = try #require(frame(message.encoded()))
                #expect(again.id == id)
                #expect(again.declaredLength == again.body.count + 4)
                #expect(try BackendMessage.decode(id: again.id, body: again.body) == message)
            case .failure(let error):
                thrownCount += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(decodedCount > 100)
        #expect(thrownCount > 100)
    }

    @Test("StartupPacket.decode on random and mutated packets")
    func startup() throws {
        var rng = SplitMix64(seed: 3)
        let seeds = Samples.startupPackets.map { $0.encode() }
        var decodedCount = 0, thrownCount = 0
        for _ in 0..<Self.iterations {
            var bytes = Self.body(from: seeds, &rng)
            // Half the time make the length prefix agree, so the body parsing itself is exercised.
            if bytes.count >= 4 && Bool.random(using: &rng) {
                bytes.replaceSubrange(0..<4, with: be32(Int32(bytes.count)))
            }
            switch Result(catching: { () throws(ProtocolError) in try StartupPacket.decode(bytes) }) {
            case .success(let packet):
                decodedCount += 1
                #expect(try StartupPacket.decode(packet.encode()) == packet)
            case .failure(let error):
                thrownCount += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(decodedCount > 50)
        #expect(thrownCount > 100)
    }

    @Test("MessageScanner, StartupPacketReader and SessionStateMachine on random streams")
    func framingAndSession() throws {
        var rng = SplitMix64(seed: 4)
        for _ in 0..<Self.iterations {
            let bytes = rng.bytes(count: Int.random(in: 0...64, using: &rng))
            var scanner = MessageScanner(maxMessageSize: Int.random(in: 0...100, using: &rng),
                                         inspect: Set(rng.bytes(count: Int.random(in: 0...8, using: &rng))))
            var session = SessionStateMachine()
            session.upstreamConnected()
            var i = 0
            do {
                while i < bytes.count {
                    let end = min(bytes.count, i + Int.random(in: 0...9, using: &rng))
                    for message in try scan(&scanner, Array(bytes[i..<end])) {
                        _ = session.serverMessage(message, now: 1)
                        _ = session.clientMessage(message, now: 2)
                    }
                    i = end
                }
            } catch let error as ProtocolError {
                #expect(!error.description.isEmpty)
            } catch {
                Issue.record("scanner threw a non-protocol error: \(error)")
            }

            var reader = StartupPacketReader()
            do {
                if case .packet(let packet, _) = try feed(&reader, bytes) {
                    #expect(Array(packet.prefix(4)) == Array(bytes.prefix(4)))
                }
            } catch let error as ProtocolError {
                #expect(!error.description.isEmpty)
            } catch {
                Issue.record("reader threw a non-protocol error: \(error)")
            }
        }
    }
}
