// The answers to mirrored writes are turned back into the answers of the original statements.
import Testing
@testable import SwitchyardProtocol

@Suite("Mirror response fixer")
struct MirrorResponseFixerTests {
    static func fixer() -> MirrorResponseFixer {
        MirrorResponseFixer(marker: "sy_1234", simpleColumn: "switchyard_mirrored_q", extendedColumn: "switchyard_mirrored_x",
                            returningColumn: "switchyard_mirrored_r")
    }

    static func body(_ m: BackendMessage) -> (UInt8, [UInt8]) {
        let bytes = m.encoded()
        return (bytes[0], Array(bytes[5...]))
    }

    static func run(_ f: inout MirrorResponseFixer, _ messages: [BackendMessage]) -> [BackendMessage] {
        var out: [BackendMessage] = []
        for m in messages {
            let (id, body) = body(m)
            f.sawHeader(id)
            guard (MirrorResponseFixer.watchedMessages.union(MirrorResponseFixer.retryMessages)).contains(id), f.holds(id) else {
                out.append(m)
                continue
            }
            switch f.process(id: id, body: body) {
            case .pass: out.append(m)
            case .drop, .retry: break
            case let .replace(bytes): out.append(try! BackendMessage.decode(id: bytes[0], body: Array(bytes[5...])))
            }
        }
        return out
    }

    static func marker(_ column: String) -> BackendMessage {
        .rowDescription(RowDescription(columns: [ColumnDescription(name: column, typeOID: 25)]))
    }

    static func markerRow(_ tag: String) -> BackendMessage { .dataRow(DataRow(values: [Array("sy_1234:\(tag)".utf8)])) }

    @Test("simple protocol: the marker row description and row go, SELECT 1 becomes the original tag")
    func simple() {
        var f = Self.fixer()
        // The ReadyForQuery that ends authentication answers no request.
        #expect(Self.run(&f, [.readyForQuery(.idle)]) == [.readyForQuery(.idle)])
        f.requestSent()
        #expect(f.isIdle)
        f.mirroredQuerySent()
        #expect(f.isWatching)
        #expect(!f.isIdle)
        let out = Self.run(&f, [
            Self.marker("switchyard_mirrored_q"), Self.markerRow("UPDATE 3"), .commandComplete(tag: "SELECT 1"),
            .readyForQuery(.idle),
        ])
        #expect(out == [.commandComplete(tag: "UPDATE 3"), .readyForQuery(.idle)])
        #expect(!f.isWatching)
        #expect(f.isIdle)
    }

    @Test("tag form, simple protocol: the mirror's INSERT 0 n becomes UPDATE n; the next request's tag passes")
    func tagFormSimple() {
        var f = Self.fixer()
        _ = Self.run(&f, [.readyForQuery(.idle)])
        f.requestSent()
        f.mirroredQuerySent()
        f.renameExpected(extended: false, ordinal: 0, verb: "UPDATE")
        #expect(!f.isIdle)
        #expect(Self.run(&f, [.commandComplete(tag: "INSERT 0 3"), .readyForQuery(.idle)])
                == [.commandComplete(tag: "UPDATE 3"), .readyForQuery(.idle)])
        #expect(f.isIdle)
        f.requestSent()
        #expect(Self.run(&f, [.commandComplete(tag: "INSERT 0 1"), .readyForQuery(.idle)])
                == [.commandComplete(tag: "INSERT 0 1"), .readyForQuery(.idle)])
    }

    @Test("tag form, extended protocol: only the completions of the tag-form Executes are renamed, in a pipeline")
    func tagFormPipelined() {
        var f = Self.fixer()
        _ = Self.run(&f, [.readyForQuery(.idle)])
        // Sync 1: an INSERT, the tag-form UPDATE, another INSERT. Sync 2: a tag-form UPDATE
        // that fails, and an Execute the error skips. Sync 3: a tag-form UPDATE after a portal
        // suspended once.
        f.renameExpected(extended: true, ordinal: 1, verb: "UPDATE")
        f.requestSent()
        f.renameExpected(extended: true, ordinal: 0, verb: "UPDATE")
        f.requestSent()
        f.renameExpected(extended: true, ordinal: 2, verb: "UPDATE")
        f.requestSent()
        let error = ErrorFields(severity: "ERROR", sqlState: "23514", message: "violates check constraint")
        let out = Self.run(&f, [
            .bindComplete, .commandComplete(tag: "INSERT 0 1"), .bindComplete, .commandComplete(tag: "INSERT 0 2"),
            .bindComplete, .commandComplete(tag: "INSERT 0 1"), .readyForQuery(.inTransaction),
            .bindComplete, .errorResponse(error), .readyForQuery(.failed),
            .portalSuspended, .emptyQueryResponse, .commandComplete(tag: "INSERT 0 5"), .readyForQuery(.idle),
        ])
        #expect(out == [
            .bindComplete, .commandComplete(tag: "INSERT 0 1"), .bindComplete, .commandComplete(tag: "UPDATE 2"),
            .bindComplete, .commandComplete(tag: "INSERT 0 1"), .readyForQuery(.inTransaction),
            .bindComplete, .errorResponse(error), .readyForQuery(.failed),
            .portalSuspended, .emptyQueryResponse, .commandComplete(tag: "UPDATE 5"), .readyForQuery(.idle),
        ])
        #expect(!f.holds(BackendMessageID.commandComplete.rawValue))
    }

    @Test("a marker value holding a NUL byte is no marker: the CommandComplete after it passes as it came")
    func nulInMarkerValue() throws {
        // Found by FuzzBackend: the value became the tag of a CommandComplete whose length field
        // counted bytes after its string's end, a message no client can read.
        var f = Self.fixer()
        f.requestSent()
        f.mirroredQuerySent()
        let messages: [BackendMessage] = [
            Self.marker("switchyard_mirrored_q"), .dataRow(DataRow(values: [Array("sy_1234:UPDA".utf8) + [0x13, 0, 0, 0]])),
            .commandComplete(tag: "SELECT 1"),
        ]
        var actions: [MirrorResponseFixer.Action] = []
        for m in messages {
            let (id, body) = Self.body(m)
            f.sawHeader(id)
            actions.append(f.process(id: id, body: body))
        }
        #expect(actions == [.drop, .pass, .pass])
    }

    @Test("extended protocol: Describe gets NoData; Execute's marker row goes and its tag is restored; other rows pass")
    func extended() {
        var f = Self.fixer()
        f.mirroredExtendedSent()
        f.requestSent()  // the Sync
        let userRow: BackendMessage = .dataRow(DataRow(values: [Array("hello".utf8)]))
        let out = Self.run(&f, [
            .parseComplete, .bindComplete, Self.marker("switchyard_mirrored_x"), Self.markerRow("INSERT 0 2"),
            .commandComplete(tag: "SELECT 1"), userRow, .commandComplete(tag: "SELECT 1"), .readyForQuery(.inTransaction),
        ])
        #expect(out == [.parseComplete, .bindComplete, .noData, .commandComplete(tag: "INSERT 0 2"), userRow,
                        .commandComplete(tag: "SELECT 1"), .readyForQuery(.inTransaction)])
        #expect(!f.isWatching)
    }

    @Test("RETURNING: the two leading columns go from the description and every row; the last row gives the tag")
    func returning() {
        var f = Self.fixer()
        f.requestSent()
        f.mirroredQuerySent()
        let description: BackendMessage = .rowDescription(RowDescription(columns: [
            ColumnDescription(name: "switchyard_mirrored_r", typeOID: 25), ColumnDescription(name: "switchyard_row", typeOID: 16400),
            ColumnDescription(name: "id", tableOID: 16384, columnNumber: 1, typeOID: 23),
        ]))
        let row: BackendMessage = .dataRow(DataRow(values: [Array("sy_1234:row".utf8), Array("(7,x)".utf8), Array("7".utf8)]))
        let last: BackendMessage = .dataRow(DataRow(values: [Array("sy_1234:UPDATE 1".utf8), nil, nil]))
        let out = Self.run(&f, [description, row, last, .commandComplete(tag: "SELECT 2"), .readyForQuery(.idle)])
        #expect(out == [
            .rowDescription(RowDescription(columns: [ColumnDescription(name: "id", tableOID: 16384, columnNumber: 1, typeOID: 23)])),
            .dataRow(DataRow(values: [Array("7".utf8)])), .commandComplete(tag: "UPDATE 1"), .readyForQuery(.idle),
        ])
    }

    @Test("a retryable write that fails: its error and ReadyForQuery go, the retry's answer is the client's")
    func retry() {
        var f = Self.fixer()
        f.requestSent()
        f.mirroredQuerySent(retryable: true)
        let error: BackendMessage = .errorResponse(ErrorFields(severity: "ERROR", sqlState: "23514", message: "violates check constraint"))
        // The error may come in one read and its ReadyForQuery in the next: the retry waits for both.
        #expect(Self.run(&f, [error]) == [])
        let (id, body) = Self.body(.readyForQuery(.idle))
        f.sawHeader(id)
        #expect(f.holds(id))
        #expect(f.process(id: id, body: body) == .retry(ErrorFields(severity: "ERROR", sqlState: "23514", message: "violates check constraint")))
        f.retrySent()
        #expect(!f.isIdle)
        #expect(Self.run(&f, [.commandComplete(tag: "UPDATE 1"), .readyForQuery(.idle)]) == [.commandComplete(tag: "UPDATE 1"), .readyForQuery(.idle)])
        #expect(f.isIdle)
        #expect(f.takeRetryOutcome() == true)
        #expect(f.takeRetryOutcome() == nil)
        #expect(!f.holds(BackendMessageID.errorResponse.rawValue))

        // A retry that fails too: its error is the client's, and the outcome says so.
        f.requestSent()
        f.mirroredQuerySent(retryable: true)
        #expect(Self.run(&f, [Self.marker("switchyard_mirrored_q"), error, .readyForQuery(.idle)]) == [])
        f.retrySent()
        #expect(Self.run(&f, [error, .readyForQuery(.idle)]) == [error, .readyForQuery(.idle)])
        #expect(f.takeRetryOutcome() == false)

        // A second request in flight behind it disarms the retry: the error is the client's.
        f.requestSent()
        f.mirroredQuerySent(retryable: true)
        f.requestSent()
        #expect(Self.run(&f, [error, .readyForQuery(.idle)]) == [error, .readyForQuery(.idle)])
    }

    @Test("an error instead of the marker leaves the next command's tag alone; watching lasts until the right ReadyForQuery")
    func errorsAndWatching() {
        var f = Self.fixer()
        f.requestSent()                 // an earlier query, still unanswered
        f.requestSent()
        f.mirroredQuerySent()           // the mirrored one
        let error: BackendMessage = .errorResponse(ErrorFields(severity: "ERROR", sqlState: "23505", message: "duplicate key"))
        #expect(Self.run(&f, [.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)]).count == 2)
        #expect(f.isWatching)
        #expect(Self.run(&f, [error, .readyForQuery(.idle)]) == [error, .readyForQuery(.idle)])
        #expect(!f.isWatching)
        // A row that only looks similar is the client's.
        let lookalike: BackendMessage = .dataRow(DataRow(values: [Array("sy_12345:UPDATE 1".utf8)]))
        #expect(Self.run(&f, [lookalike, .commandComplete(tag: "SELECT 1")]) == [lookalike, .commandComplete(tag: "SELECT 1")])
    }

    @Test("a mirrored COPY: the client gets CopyInResponse, notices and errors, and one tag, COPY n; the staging statements' tags go")
    func copy() {
        var f = Self.fixer()
        f.requestSent()
        f.mirroredCopySent()
        let copyIn = BackendMessage.copyInResponse(CopyResponse(overallFormat: 0, columnFormats: [0, 0, 0]))
        let out = Self.run(&f, [
            .commandComplete(tag: "SELECT 0"), copyIn, .commandComplete(tag: "COPY 2"),
            Self.marker("switchyard_mirrored_q"), Self.markerRow("COPY 2"), .commandComplete(tag: "SELECT 1"),
            .commandComplete(tag: "DROP TABLE"), .readyForQuery(.idle),
        ])
        #expect(out == [copyIn, .commandComplete(tag: "COPY 2"), .readyForQuery(.idle)])
        #expect(!f.isWatching)
        // A failed COPY: the error reaches the client, no tag; the next request is not touched.
        f.requestSent()
        f.mirroredCopySent()
        let error = BackendMessage.errorResponse(ErrorFields(severity: "ERROR", sqlState: "23505", message: "duplicate key value"))
        #expect(Self.run(&f, [.commandComplete(tag: "SELECT 0"), copyIn, error, .readyForQuery(.idle)]) == [copyIn, error, .readyForQuery(.idle)])
        f.requestSent()
        #expect(Self.run(&f, [.commandComplete(tag: "DROP TABLE"), .readyForQuery(.idle)]) == [.commandComplete(tag: "DROP TABLE"), .readyForQuery(.idle)])
    }
}
