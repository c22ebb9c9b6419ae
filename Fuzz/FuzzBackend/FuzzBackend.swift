// Fuzzes the server side of the wire: framing the server's byte stream, decoding each message, and the session following it.
import FuzzSupport
import SwitchyardProtocol
import SwitchyardRouting

@main
enum FuzzBackend {
    static func main() {
        FuzzDriver.main(input: fuzzBackend, seeds: seeds)
    }

    /// The input is what the server sends from authentication on. Besides, its first byte and the
    /// rest are decoded as one message id and body, so bodies of any shape reach the decoders directly.
    static func check(_ input: [UInt8]) {
        if let id = input.first {
            _ = StreamChecks.roundTrip(id: id, body: Array(input.dropFirst()), decode: BackendMessage.decode, encode: { $0.encoded() })
        }
        let framing = StreamChecks.frame(input)
        // A session past its startup, with a request outstanding, sees the messages as the proxy
        // shows them: bodies only for the kinds it inspects.
        var session = SessionStateMachine()
        _ = session.startupPacketReceived(.startup(StartupMessage(parameters: [("user", "app"), ("database", "app")])))
        session.upstreamConnected()
        _ = session.clientMessage(ScannedMessage(id: FrontendMessageID.query.rawValue, bodyLength: 9, body: nil), now: 0)
        // The answer to a mirrored write that may be retried, as the fixer rewrites it for the client.
        var fixer = MirrorResponseFixer(marker: marker, simpleColumn: simpleColumn, extendedColumn: extendedColumn, returningColumn: returningColumn)
        fixer.requestSent()
        fixer.mirroredQuerySent(retryable: true)
        for (index, scanned) in framing.messages.enumerated() {
            guard let body = scanned.body else { continue }
            _ = StreamChecks.roundTrip(id: scanned.id, body: body, decode: BackendMessage.decode, encode: { $0.encoded() })
            var seen = scanned
            if !SessionStateMachine.inspectedServerMessages.contains(scanned.id) { seen.body = nil }
            if case let .requestCompleted(nanoseconds, _) = session.serverMessage(seen, now: UInt64(index)), nanoseconds > UInt64(index) {
                FuzzDriver.violated("a request took longer than the stream")
            }
            fixer.sawHeader(scanned.id)
            guard fixer.holds(scanned.id) else { continue }
            if case let .replace(bytes) = fixer.process(id: scanned.id, body: body) {
                // What the client gets instead is one whole message of the same kind or NoData.
                let replaced = StreamChecks.frame(bytes)
                guard replaced.error == nil, replaced.messages.count == 1, replaced.messages[0].bodyLength + 5 == bytes.count,
                      (try? BackendMessage.decode(id: bytes[0], body: Array(bytes[5...]))) != nil else {
                    FuzzDriver.violated("the fixer replaced message \(scanned.id) with bytes that are not one message")
                }
            }
        }
    }

    /// The marker (the router draws one per process) and the column names of mirrored writes.
    static let marker = "m"
    static let simpleColumn = WriteMirror.Wire.simple.rawValue
    static let extendedColumn = WriteMirror.Wire.extended.rawValue
    static let returningColumn = WriteMirror.returningColumn

    /// Server streams as PostgreSQL sends them, encoded by the project's own encoders.
    static func seeds() -> [[UInt8]] {
        let ready = BackendMessage.readyForQuery(.idle)
        let conversations: [[BackendMessage]] = [
            [.authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))],
            [.authentication(.saslContinue(data: Array("r=abc,s=c2FsdA==,i=4096".utf8))), .authentication(.saslFinal(data: Array("v=c2ln".utf8))),
             .authentication(.ok), .parameterStatus(name: "server_version", value: "17.2"),
             .backendKeyData(BackendKey(processID: 4242, secretKey: 77)), ready],
            [.authentication(.md5Password(salt: [1, 2, 3, 4]))],
            [.rowDescription(RowDescription(columns: [ColumnDescription(name: "id", tableOID: 16384, columnNumber: 1, typeOID: 23, typeSize: 4),
                                                      ColumnDescription(name: "name", typeOID: 25)])),
             .dataRow(DataRow(values: [Array("1".utf8), nil])), .commandComplete(tag: "SELECT 1"), ready],
            [.parseComplete, .parameterDescription([23, 25]), .noData, .bindComplete, .dataRow(DataRow(values: [[0, 0, 0, 7]])),
             .portalSuspended, .closeComplete, .readyForQuery(.inTransaction)],
            [.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0, 0])), .commandComplete(tag: "COPY 2"), ready],
            [.copyOutResponse(CopyResponse(overallFormat: 1, columnFormats: [1])), .copyData(Array("1\tone\n".utf8)), .copyDone,
             .commandComplete(tag: "COPY 1"), ready],
            [.copyBothResponse(CopyResponse(overallFormat: 0, columnFormats: []))],
            [.errorResponse(ErrorFields(severity: "ERROR", sqlState: "42P01", message: "relation \"nope\" does not exist", detail: "d", hint: "h")),
             .readyForQuery(.failed)],
            [.noticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: "skipping")), .emptyQueryResponse,
             .notificationResponse(NotificationResponse(processID: 99, channel: "jobs", payload: "{}")), ready],
            [.functionCallResponse([0, 0, 0, 1]), .functionCallResponse(nil), ready],
            [.negotiateProtocolVersion(NegotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.x"]))],
            [.errorResponse(ErrorFields(severity: "FATAL", sqlState: "57P01", message: "terminating connection"))],
            // Answers to mirrored writes: the marker row and its tag, with RETURNING, and a failed attempt.
            [.rowDescription(RowDescription(columns: [ColumnDescription(name: simpleColumn, typeOID: 25)])),
             .dataRow(DataRow(values: [Array("\(marker):UPDATE 3".utf8)])), .commandComplete(tag: "SELECT 1"), ready],
            [.rowDescription(RowDescription(columns: [ColumnDescription(name: extendedColumn, typeOID: 25)])),
             .dataRow(DataRow(values: [Array("\(marker):INSERT 0 1".utf8)])), .commandComplete(tag: "SELECT 1"), ready],
            [.rowDescription(RowDescription(columns: [ColumnDescription(name: returningColumn, typeOID: 25), ColumnDescription(name: "switchyard_row", typeOID: 2249),
                                                      ColumnDescription(name: "id", typeOID: 23)])),
             .dataRow(DataRow(values: [Array("\(marker):row".utf8), Array("(1,x)".utf8), Array("1".utf8)])),
             .dataRow(DataRow(values: [Array("\(marker):DELETE 1".utf8), nil, nil])), .commandComplete(tag: "SELECT 2"), ready],
            [.errorResponse(ErrorFields(severity: "ERROR", sqlState: "23505", message: "duplicate key value")), .readyForQuery(.idle),
             .commandComplete(tag: "UPDATE 1"), ready],
        ]
        return conversations.map { $0.flatMap { $0.encoded() } }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzBackend(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzBackend.check(FuzzDriver.bytes(data, size))
    return 0
}
