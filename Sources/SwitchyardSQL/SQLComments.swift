// Comments found by PostgreSQL's scanner, and the sqlcommenter tags (`/*key='value'*/`) written in them.
import Foundation

/// The comments of `sql` in textual order, each exactly as written (`/* … */` or `-- …`).
///
/// Comments are found by PostgreSQL's scanner, so comment-like text inside string literals or
/// quoted identifiers is not a comment. Returns `[]` when the text does not scan (an
/// unterminated string or comment): PostgreSQL will reject it anyway.
public func comments(in sql: String) -> [String] {
    guard let tokens = try? SQLAnalyzer.tokens(in: sql) else { return [] }
    let bytes = Array(sql.utf8)
    return tokens.compactMap { token in
        guard token.isComment, token.byteRange.upperBound <= bytes.count else { return nil }
        return String(decoding: bytes[token.byteRange], as: UTF8.self)
    }
}

/// The sqlcommenter tags of `sql` (https://google.github.io/sqlcommenter/spec/): every `/* … */`
/// comment the scanner finds whose whole content is `key='value'` pairs separated by commas.
///
/// Keys and values are URL-decoded and `\'` in values is unescaped. Comments that do not follow
/// the format (ordinary remarks) are ignored entirely; when a key repeats, the later one wins.
public func sqlcommenterTags(_ sql: String) -> CommentTags {
    sqlcommenterTags(comments: comments(in: sql))
}

/// The sqlcommenter tags of comments already found by the scanner (each as written).
public func sqlcommenterTags(comments: [String]) -> CommentTags {
    var tags = CommentTags()
    for comment in comments {
        var comment = comment
        comment.withUTF8 { addSQLCommenterTags(comment: $0, to: &tags) }
    }
    return tags
}

/// Adds the sqlcommenter tags of one comment, given as the bytes the scanner found
/// (`/* … */` included; other comments add nothing). Runs for every routed statement,
/// so it reads the bytes in place.
public func addSQLCommenterTags(comment: UnsafeBufferPointer<UInt8>, to tags: inout CommentTags) {
    let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*")
    let n = comment.count
    guard n >= 4, comment[0] == slash, comment[1] == star, comment[n - 2] == star, comment[n - 1] == slash else { return }
    let body = UnsafeBufferPointer(rebasing: comment[2..<(n - 2)])
    // Added only once the whole comment is read: a comment that is not all pairs adds nothing.
    var found = CommentTags()
    guard SQLCommenter.scan(body, { key, value, escaped in
        found[SQLCommenter.decoded(key)] = SQLCommenter.value(value, escaped: escaped)
    }) else { return }
    if tags.isEmpty {
        tags = found
    } else {
        for pair in found.pairs { tags[pair.key] = pair.value }
    }
}

/// Where the values of one comment's sqlcommenter tags are (`/* … */` included, as for
/// ``addSQLCommenterTags(comment:to:)``): each pair's key, decoded, and its value's bytes in
/// `comment`, between the quotes, in order. A text whose comment differs from this one only
/// inside those values has the tags these ranges hold there. nil when a value is escaped or
/// percent-encoded (its bytes are not its value); none for a comment that is not all pairs.
public func sqlcommenterValueRanges(comment: UnsafeBufferPointer<UInt8>) -> [(key: String, value: Range<Int>)]? {
    let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), percent = UInt8(ascii: "%")
    let n = comment.count
    guard n >= 4, comment[0] == slash, comment[1] == star, comment[n - 2] == star, comment[n - 1] == slash,
          let base = comment.baseAddress else { return [] }
    var found: [(key: String, value: Range<Int>)] = []
    var plain = true
    guard SQLCommenter.scan(UnsafeBufferPointer(rebasing: comment[2..<(n - 2)]), { key, value, escaped in
        if escaped || value.contains(percent) { plain = false }
        let start = value.baseAddress.map { $0 - base } ?? 2
        found.append((SQLCommenter.decoded(key), start..<(start + value.count)))
    }) else { return [] }
    return plain ? found : nil
}

/// A statement's sqlcommenter tags: keys and their values, a later pair replacing an earlier one
/// with the same key. A statement carries one or two, and every routed statement has its own: they
/// are kept in order in a small list, which costs less to fill and to read than a hashed table,
/// and the first pair is kept in place, so the usual single tag allocates no list at all.
public struct CommentTags: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The first pair, and the others in order; `rest` is empty while `first` is nil.
    private var first: (key: String, value: String)?
    private var rest: [(key: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (key, value) in elements { self[key] = value }
    }

    /// The value of `key`; setting nil removes it.
    public subscript(key: String) -> String? {
        get {
            guard let first else { return nil }
            if first.key == key { return first.value }
            for pair in rest where pair.key == key { return pair.value }
            return nil
        }
        set {
            if first?.key == key {
                if let newValue {
                    first!.value = newValue
                } else {
                    first = rest.isEmpty ? nil : rest.removeFirst()
                }
            } else if let i = rest.firstIndex(where: { $0.key == key }) {
                if let newValue { rest[i].value = newValue } else { rest.remove(at: i) }
            } else if let newValue {
                if first == nil { first = (key, newValue) } else { rest.append((key, newValue)) }
            }
        }
    }

    public var isEmpty: Bool { first == nil }
    public var count: Int { first == nil ? 0 : 1 + rest.count }

    /// Every pair, in order.
    fileprivate var pairs: [(key: String, value: String)] {
        guard let first else { return [] }
        return [first] + rest
    }

    /// The tags as a dictionary.
    public var dictionary: [String: String] {
        Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { _, later in later })
    }

    /// Equal when they hold the same keys with the same values, in any order.
    public static func == (a: CommentTags, b: CommentTags) -> Bool { a.dictionary == b.dictionary }
}

/// The sqlcommenter serialisation format: `key='value',key2='value2'`.
enum SQLCommenter {
    /// Walks the pairs of one comment body, giving each key and value as written (the value
    /// without its quotes, `escaped` when it holds `\'`); false if the body is not entirely
    /// sqlcommenter pairs (the pairs before the fault have been given by then).
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>,
                     _ pair: (_ key: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>, _ escaped: Bool) -> Void) -> Bool {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }
        var end = bytes.count
        while end > 0, isSpace(bytes[end - 1]) { end -= 1 }
        var index = 0
        while index < end, isSpace(bytes[index]) { index += 1 }
        guard index < end else { return false }
        let quote = UInt8(ascii: "'"), comma = UInt8(ascii: ","), equals = UInt8(ascii: "="), backslash = UInt8(ascii: "\\")
        while index < end {
            // key: everything up to '=', trimmed; quotes and commas are not allowed in it.
            let keyStart = index
            while index < end, bytes[index] != equals {
                if bytes[index] == quote || bytes[index] == comma { return false }
                index += 1
            }
            var keyEnd = index
            var keyBegin = keyStart
            while keyEnd > keyBegin, isSpace(bytes[keyEnd - 1]) { keyEnd -= 1 }
            while keyBegin < keyEnd, isSpace(bytes[keyBegin]) { keyBegin += 1 }
            guard index < end, keyEnd > keyBegin else { return false }
            let key = UnsafeBufferPointer(rebasing: bytes[keyBegin..<keyEnd])
            index += 1  // '='
            while index < end, bytes[index] == 0x20 { index += 1 }
            // value: a single-quoted string in which \' stands for a quote.
            guard index < end, bytes[index] == quote else { return false }
            index += 1
            let valueStart = index
            var escaped = false
            var closed = false
            while index < end {
                let b = bytes[index]
                if b == backslash, index + 1 < end, bytes[index + 1] == quote {
                    escaped = true
                    index += 2
                } else if b == quote {
                    closed = true
                    break
                } else {
                    index += 1
                }
            }
            guard closed else { return false }
            pair(key, UnsafeBufferPointer(rebasing: bytes[valueStart..<index]), escaped)
            index += 1  // closing quote
            while index < end, bytes[index] == 0x20 { index += 1 }
            if index < end {
                guard bytes[index] == comma else { return false }
                index += 1
                while index < end, bytes[index] == 0x20 { index += 1 }
                guard index < end else { return false }  // trailing comma
            }
        }
        return true
    }

    /// A value as written between its quotes, with `\'` unescaped and percent-decoded.
    static func value(_ value: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
        guard escaped else { return decoded(value) }
        let quote = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        var unescaped: [UInt8] = []
        var i = 0
        while i < value.count {
            if value[i] == backslash, i + 1 < value.count, value[i + 1] == quote { i += 1 }
            unescaped.append(value[i])
            i += 1
        }
        return unescaped.withUnsafeBufferPointer { decoded($0) }
    }

    /// Percent-decoding; a malformed escape or one that does not decode to UTF-8 leaves the text as written.
    static func decoded(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let percent = UInt8(ascii: "%")
        guard bytes.contains(percent) else { return String(decoding: bytes, as: UTF8.self) }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x41 + 10
            case 0x61...0x66: b - 0x61 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == percent {
                guard i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) else {
                    return String(decoding: bytes, as: UTF8.self)
                }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self) ?? String(decoding: bytes, as: UTF8.self)
    }
}
