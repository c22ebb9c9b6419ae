// Scanner tokens from libpg_query (pg_query_scan) and the decoding of its protobuf ScanResult.

/// One token of PostgreSQL's scanner, comments included.
public struct SQLToken: Sendable, Equatable, Hashable {
    /// The token type: the `Token` enum of libpg_query's `pg_query.proto` (single-character
    /// tokens use their ASCII code, named tokens start at 258, keywords follow).
    public struct Kind: RawRepresentable, Sendable, Equatable, Hashable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let dot = Kind(rawValue: 46)
        public static let semicolon = Kind(rawValue: 59)
        /// A plain or double-quoted identifier (`users`, `"Users"`).
        public static let identifier = Kind(rawValue: 258)
        /// A Unicode-escaped identifier (`U&"d\0061t"`).
        public static let unicodeIdentifier = Kind(rawValue: 259)
        public static let floatConstant = Kind(rawValue: 260)
        public static let stringConstant = Kind(rawValue: 261)
        public static let unicodeStringConstant = Kind(rawValue: 262)
        public static let bitStringConstant = Kind(rawValue: 263)
        public static let hexStringConstant = Kind(rawValue: 264)
        public static let `operator` = Kind(rawValue: 265)
        public static let integerConstant = Kind(rawValue: 266)
        /// A positional parameter (`$1`).
        public static let parameter = Kind(rawValue: 267)
        /// A `-- …` comment.
        public static let sqlComment = Kind(rawValue: 275)
        /// A `/* … */` comment.
        public static let cComment = Kind(rawValue: 276)
    }

    public var kind: Kind
    /// UTF-8 byte range in the scanned text.
    public var byteRange: Range<Int>
    /// The token is one of PostgreSQL's keywords (of any reservation level); unreserved ones
    /// can also serve as identifiers.
    public var isKeyword: Bool

    public init(kind: Kind, byteRange: Range<Int>, isKeyword: Bool) {
        self.kind = kind
        self.byteRange = byteRange
        self.isKeyword = isKeyword
    }

    public var isComment: Bool { kind == .sqlComment || kind == .cComment }
}

/// Decodes `PgQuery__ScanResult` from protobuf wire format.
///
/// libpg_query ships the protobuf-c runtime but not its headers, so rather than depend on
/// libprotobuf-c-dev this reads the two tiny messages directly:
/// `ScanResult { int32 version = 1; repeated ScanToken tokens = 2; }` and
/// `ScanToken { int32 start = 1; int32 end = 2; Token token = 4; KeywordKind keyword_kind = 5; }`.
enum ScanResultDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(SQLAnalysisError) -> [SQLToken] {
        var reader = ProtobufReader(bytes: bytes, range: 0..<bytes.count)
        var tokens: [SQLToken] = []
        // Each token takes at least 8 bytes on the wire.
        tokens.reserveCapacity(bytes.count / 8)
        while let (field, wireType) = try reader.nextKey() {
            if field == 2, wireType == .lengthDelimited {
                var message = try reader.subMessage()
                tokens.append(try decodeToken(&message))
            } else {
                try reader.skip(wireType)
            }
        }
        // The scanner emits tokens in order; sorting is a cheap guarantee for binary searches.
        if zip(tokens, tokens.dropFirst()).contains(where: { $0.byteRange.lowerBound > $1.byteRange.lowerBound }) {
            tokens.sort { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        }
        return tokens
    }

    private static func decodeToken(_ reader: inout ProtobufReader) throws(SQLAnalysisError) -> SQLToken {
        var start: Int32 = 0
        var end: Int32 = 0
        var token: Int32 = 0
        var keywordKind: Int32 = 0
        while let (field, wireType) = try reader.nextKey() {
            guard wireType == .varint else {
                try reader.skip(wireType)
                continue
            }
            // int32 and enums are varints; negative values are sign-extended to 64 bits.
            let value = Int32(truncatingIfNeeded: try reader.varint())
            switch field {
            case 1: start = value
            case 2: end = value
            case 4: token = value
            case 5: keywordKind = value
            default: break
            }
        }
        guard start >= 0, end >= start else {
            throw .malformedParserOutput("scan token with range \(start)..<\(end)")
        }
        return SQLToken(kind: .init(rawValue: token), byteRange: Int(start)..<Int(end), isKeyword: keywordKind != 0)
    }
}

/// A bounds-checked cursor over protobuf wire format.
struct ProtobufReader {
    enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    let bytes: UnsafeRawBufferPointer
    private var offset: Int
    private let end: Int

    init(bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    mutating func nextKey() throws(SQLAnalysisError) -> (field: UInt64, wireType: WireType)? {
        guard offset < end else { return nil }
        let key = try varint()
        guard let wireType = WireType(rawValue: key & 7) else {
            throw .malformedParserOutput("protobuf wire type \(key & 7)")
        }
        return (key >> 3, wireType)
    }

    mutating func varint() throws(SQLAnalysisError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end, shift < 64 else { throw .malformedParserOutput("truncated protobuf varint") }
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func subMessage() throws(SQLAnalysisError) -> ProtobufReader {
        let length = try varint()
        guard length <= UInt64(end - offset) else { throw .malformedParserOutput("truncated protobuf message") }
        let range = offset..<(offset + Int(length))
        offset = range.upperBound
        return ProtobufReader(bytes: bytes, range: range)
    }

    mutating func skip(_ wireType: WireType) throws(SQLAnalysisError) {
        switch wireType {
        case .varint: _ = try varint()
        case .fixed64: try advance(8)
        case .fixed32: try advance(4)
        case .lengthDelimited: _ = try subMessage()
        case .startGroup, .endGroup: throw .malformedParserOutput("protobuf groups are not used by libpg_query")
        }
    }

    private mutating func advance(_ count: Int) throws(SQLAnalysisError) {
        guard end - offset >= count else { throw .malformedParserOutput("truncated protobuf field") }
        offset += count
    }
}
