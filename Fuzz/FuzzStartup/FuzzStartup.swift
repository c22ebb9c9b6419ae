// Fuzzes the startup phase: collecting untyped packets, decoding them, and the session's answer to SSL, GSS, cancel and startup requests.
import FuzzSupport
import SwitchyardProtocol

@main
enum FuzzStartup {
    static func main() {
        FuzzDriver.main(input: fuzzStartup, seeds: seeds)
    }

    /// The input is what a client sends first. It is played as the proxy plays it, whole and again
    /// in small reads: both must end the same way.
    static func check(_ input: [UInt8]) {
        let whole = negotiate(input, reads: [max(input.count, 1)])
        let pieces = negotiate(input, reads: StreamChecks.readSizes)
        if whole != pieces { FuzzDriver.violated("startup went \(whole) whole but \(pieces) in small reads") }
    }

    /// What the session did with each packet, until it connects, rejects, forwards a cancel or fails.
    static func negotiate(_ stream: [UInt8], reads: [Int]) -> [String] {
        var reader = StartupPacketReader()
        var session = SessionStateMachine()
        var outcomes: [String] = []
        StreamChecks.forEachRead(of: stream, sizes: reads) { read in
            var result: StartupPacketReader.Result
            do throws(ProtocolError) {
                result = try reader.feed(read)
            } catch {
                outcomes.append("failed: \(session.startupFailed(error))")
                return false
            }
            // Each packet is at least 8 bytes of the input, so this ends.
            while case let .packet(bytes, leftover) = result {
                let packet: StartupPacket
                do throws(ProtocolError) {
                    packet = try StartupPacket.decode(bytes)
                } catch {
                    outcomes.append("failed: \(session.startupFailed(error))")
                    return false
                }
                checkEncoding(packet, from: bytes)
                let action = session.startupPacketReceived(packet)
                outcomes.append("\(action)")
                guard action == .declineEncryption else { return false }
                let next = leftover.withUnsafeBytes { raw in
                    Result { () throws(ProtocolError) -> StartupPacketReader.Result in try reader.feed(raw) }
                }
                switch next {
                case let .success(r): result = r
                case let .failure(error):
                    outcomes.append("failed: \(session.startupFailed(error))")
                    return false
                }
            }
            return true
        }
        return outcomes
    }

    /// A decoded packet encodes to a packet that decodes to it, and, unless a parameter's text had
    /// to be repaired, to the very bytes it came from.
    static func checkEncoding(_ packet: StartupPacket, from bytes: [UInt8]) {
        let encoded = packet.encode()
        guard (try? StartupPacket.decode(encoded)) == packet else { FuzzDriver.violated("\(packet) does not decode to itself after encoding") }
        // After the length and the code, a startup packet holds only NUL-terminated text.
        let textIsValid = if case .startup = packet { String(validating: bytes.dropFirst(8), as: UTF8.self) != nil } else { true }
        if textIsValid, encoded != bytes {
            FuzzDriver.violated("\(packet) encoded to other bytes than it was decoded from")
        }
    }

    /// What clients send first, encoded by the project's own encoders.
    static func seeds() -> [[UInt8]] {
        let startup = StartupPacket.startup(StartupMessage(parameters: [
            ("user", "app"), ("database", "appdb"), ("application_name", "psql"), ("client_encoding", "UTF8"),
        ]))
        let conversations: [[StartupPacket]] = [
            [startup],
            [.sslRequest, startup],
            [.gssEncRequest, .sslRequest, startup],
            [.cancel(BackendKey(processID: 4242, secretKey: 77))],
            [.cancel(BackendKey(processID: 1, secretKey: [UInt8](repeating: 0xab, count: 32)))],
            [.startup(StartupMessage(parameters: [("user", "postgres"), ("database", "switchyard")]))],
            [.startup(StartupMessage(protocolVersion: 3 << 16 | 2, parameters: [("user", "u"), ("options", "-c search_path=app")]))],
            [.startup(StartupMessage(parameters: [("database", "nouser")]))],
        ]
        // A first query pipelined after the startup packet stays for the next phase.
        let pipelined = startup.encode() + FrontendMessage.query("select 1").encoded()
        return conversations.map { $0.flatMap { $0.encode() } } + [pipelined]
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzStartup(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzStartup.check(FuzzDriver.bytes(data, size))
    return 0
}
