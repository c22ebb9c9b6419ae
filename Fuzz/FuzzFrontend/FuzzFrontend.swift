// Fuzzes the client side of the wire: framing a client's byte stream, decoding each message, and the session following it.
import FuzzSupport
import SwitchyardProtocol

@main
enum FuzzFrontend {
    static func main() {
        FuzzDriver.main(input: fuzzFrontend, seeds: seeds)
    }

    /// The input is a client's stream after startup. Besides, its first byte and the rest are
    /// decoded as one message id and body, so bodies of any shape reach the decoders directly.
    static func check(_ input: [UInt8]) {
        if let id = input.first {
            _ = StreamChecks.roundTrip(id: id, body: Array(input.dropFirst()), decode: FrontendMessage.decode, encode: { $0.encoded() })
        }
        let framing = StreamChecks.frame(input)
        var session = SessionStateMachine()
        for (index, scanned) in framing.messages.enumerated() {
            guard let body = scanned.body else { continue }
            _ = StreamChecks.roundTrip(id: scanned.id, body: body, decode: FrontendMessage.decode, encode: { $0.encoded() })
            _ = session.clientMessage(scanned, now: UInt64(index))
        }
        if session.outstandingRequests < 0 { FuzzDriver.violated("negative outstanding requests") }
    }

    /// Client streams as real drivers send them, encoded by the project's own encoders.
    static func seeds() -> [[UInt8]] {
        let conversations: [[FrontendMessage]] = [
            [.query("select 1"), .query("begin; update t set a = 1 where id = 2; commit")],
            [.parse(Parse(statementName: "", query: "select * from users where id = $1", parameterTypes: [23])),
             .bind(Bind(portalName: "", statementName: "", parameterFormats: [0], parameters: [Array("42".utf8)], resultFormats: [0])),
             .describe(Describe(target: .portal, name: "")), .execute(Execute(portalName: "")), .sync],
            [.parse(Parse(statementName: "s1", query: "insert into t values ($1, $2)", parameterTypes: [23, 25])),
             .bind(Bind(portalName: "p", statementName: "s1", parameterFormats: [1, 0], parameters: [[0, 0, 0, 7], nil], resultFormats: [1])),
             .execute(Execute(portalName: "p", maxRows: 10)), .flush, .close(Close(target: .portal, name: "p")),
             .close(Close(target: .statement, name: "s1")), .sync],
            [.query("copy t from stdin"), .copyData(Array("1\tone\n2\ttwo\n".utf8)), .copyDone],
            [.query("copy t from stdin"), .copyData([0xff, 0x00]), .copyFail(message: "client gave up")],
            [.functionCall(FunctionCall(functionOID: 1598, argumentFormats: [1], arguments: [[0, 0, 0, 1], nil], resultFormat: 1))],
            [.password(Array("md5f3a1b2c3d4e5f60718293a4b5c6d7e8f".utf8) + [0])],
            [.password(Array("SCRAM-SHA-256".utf8) + [0, 0, 0, 0, 12] + Array("n,,n=,r=abcd".utf8))],
            [.query(""), .terminate],
        ]
        return conversations.map { $0.flatMap { $0.encoded() } }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzFrontend(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzFrontend.check(FuzzDriver.bytes(data, size))
    return 0
}
