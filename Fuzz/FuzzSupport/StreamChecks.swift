// Checks shared by the message-stream targets: a stream is framed alike whatever its read boundaries, and forwarded byte for byte.
import SwitchyardProtocol

public enum StreamChecks {
    /// The read sizes a stream is cut into, cycling, so that headers and bodies straddle reads.
    public static let readSizes = [1, 2, 3, 5, 8, 13, 64]

    /// The limit the checks frame with: small enough that the too-large error is reached too.
    public static let maxMessageSize = 1 << 16

    public struct Framing {
        /// Every message whose body arrived whole, in order, with its body.
        public var messages: [ScannedMessage]
        public var error: ProtocolError?
    }

    /// Frames `stream` with the scanner (every id inspected) and with the splicer (every id held,
    /// then none), each fed whole and in small reads. Fails unless every way agrees, each message
    /// has exactly its declared length, and the splicer gives back the bytes it was given.
    public static func frame(_ stream: [UInt8]) -> Framing {
        let all = Set((0...255).map(UInt8.init))
        let whole = scan(stream, inspect: all, reads: [max(stream.count, 1)])
        let pieces = scan(stream, inspect: all, reads: readSizes)
        guard whole.messages == pieces.messages, whole.error == pieces.error else {
            FuzzDriver.violated("the scanner framed \(stream.count) bytes differently in small reads")
        }
        var consumed = 0
        for message in whole.messages {
            guard message.bodyLength >= 0, message.body?.count == message.bodyLength else {
                FuzzDriver.violated("message \(message.id) reported \(message.body?.count ?? -1) body bytes for a declared \(message.bodyLength)")
            }
            consumed += 5 + message.bodyLength
        }
        guard consumed <= stream.count else { FuzzDriver.violated("the scanner reported \(consumed) bytes of \(stream.count)") }

        for hold in [all, []] {
            let splicedWhole = splice(stream, hold: hold, reads: [max(stream.count, 1)])
            let splicedPieces = splice(stream, hold: hold, reads: readSizes)
            guard splicedWhole.error == whole.error, splicedPieces.error == whole.error else {
                FuzzDriver.violated("the splicer's error differs from the scanner's")
            }
            for spliced in [splicedWhole, splicedPieces] {
                // Untouched messages leave as they came: what is emitted is the stream, or a prefix of it
                // while a message is incomplete or after an error.
                guard spliced.emitted.count <= stream.count, spliced.emitted[...] == stream[0..<spliced.emitted.count] else {
                    FuzzDriver.violated("the splicer emitted bytes that differ from its input")
                }
                if spliced.error == nil && spliced.atBoundary && spliced.emitted.count != stream.count {
                    FuzzDriver.violated("the splicer ended between messages with \(spliced.emitted.count) of \(stream.count) bytes emitted")
                }
            }
            if whole.error == nil && splicedWhole.emitted != splicedPieces.emitted {
                FuzzDriver.violated("the splicer emitted other bytes in small reads")
            }
            if splicedWhole.headers != splicedPieces.headers {
                FuzzDriver.violated("the splicer saw other headers in small reads")
            }
        }
        return whole
    }

    static func scan(_ stream: [UInt8], inspect: Set<UInt8>, reads: [Int]) -> Framing {
        var scanner = MessageScanner(maxMessageSize: maxMessageSize, inspect: inspect)
        var framing = Framing(messages: [], error: nil)
        forEachRead(of: stream, sizes: reads) { read in
            do throws(ProtocolError) {
                try scanner.scan(read) { framing.messages.append($0) }
                return true
            } catch {
                framing.error = error
                return false
            }
        }
        return framing
    }

    struct Spliced {
        var emitted: [UInt8] = []
        var headers: [ScannedMessage] = []
        var error: ProtocolError?
        var atBoundary = false
    }

    static func splice(_ stream: [UInt8], hold: Set<UInt8>, reads: [Int]) -> Spliced {
        var splicer = MessageSplicer(maxMessageSize: maxMessageSize, hold: hold)
        var out = Spliced()
        forEachRead(of: stream, sizes: reads) { read in
            do throws(ProtocolError) {
                try splicer.process(read, onMessage: { out.headers.append($0) }, onHeld: { _, _ in nil }, emit: { out.emitted += $0 })
                return true
            } catch {
                out.error = error
                return false
            }
        }
        out.atBoundary = splicer.isAtMessageBoundary
        return out
    }

    /// Calls `body` with consecutive pieces of `stream`, their sizes cycling through `sizes`,
    /// until the stream ends or `body` returns false.
    public static func forEachRead(of stream: [UInt8], sizes: [Int], _ body: (UnsafeRawBufferPointer) -> Bool) {
        stream.withUnsafeBytes { raw in
            var start = 0, turn = 0
            while start < raw.count {
                let end = min(start + sizes[turn % sizes.count], raw.count)
                guard body(UnsafeRawBufferPointer(rebasing: raw[start..<end])) else { return }
                start = end
                turn += 1
            }
        }
    }
}

extension StreamChecks {
    /// Decodes one body and checks what a decoded message promises: it encodes back to a message of
    /// the same id whose length field counts its bytes and which decodes to the same value, and,
    /// unless text was repaired in decoding, to exactly the bytes it came from: a decoder that
    /// skipped or ignored bytes fails there. Returns the message, or nil if it did not decode.
    public static func roundTrip<Message: Equatable>(
        id: UInt8, body: [UInt8],
        decode: (UInt8, [UInt8]) throws(ProtocolError) -> Message,
        encode: (Message) -> [UInt8]
    ) -> Message? {
        let message: Message
        do {
            message = try decode(id, body)
        } catch {
            if error.description.isEmpty { FuzzDriver.violated("an empty error for message \(id)") }
            return nil
        }
        let bytes = encode(message)
        guard bytes.count >= 5, bytes[0] == id else { FuzzDriver.violated("message \(id) encoded under another id") }
        let declared = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        guard declared == bytes.count - 1 else { FuzzDriver.violated("message \(id) encoded with length \(declared) for \(bytes.count - 1) bytes") }
        let encodedBody = Array(bytes[5...])
        guard let again = try? decode(id, encodedBody), again == message else {
            FuzzDriver.violated("message \(id) does not decode to itself after encoding")
        }
        if encodedBody != body && replacementCharacters(in: encodedBody) <= replacementCharacters(in: body) {
            FuzzDriver.violated("message \(id) encoded to other bytes than it was decoded from")
        }
        return message
    }

    /// How many U+FFFD the bytes hold. Decoding repairs text that is not UTF-8 with one U+FFFD per
    /// bad sequence, so a re-encoding with more of them had text repaired; with no more, it must be
    /// byte for byte what was decoded. (Whether the whole body is UTF-8 says nothing of each string:
    /// an ErrorResponse field code of 0xEF and a value starting 0xBF 0xBD are valid together.)
    static func replacementCharacters(in bytes: [UInt8]) -> Int {
        guard bytes.count >= 3 else { return 0 }
        return (0..<(bytes.count - 2)).count { bytes[$0] == 0xEF && bytes[$0 + 1] == 0xBF && bytes[$0 + 2] == 0xBD }
    }
}
