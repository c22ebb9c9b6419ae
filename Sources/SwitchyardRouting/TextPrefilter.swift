// Byte checks that rule a query text out before any scanning or parsing: most statements in a
// session with flags touch no migrated relation and change no setting.

/// Checks on a query's UTF-8 bytes, each of which may answer "maybe" but never wrongly "no".
public enum TextPrefilter {
    /// ASCII letters folded to lower case; every other byte as it is (PostgreSQL folds unquoted
    /// identifiers in ASCII only).
    @inline(__always)
    static func folded(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Whether `word` (lower case) occurs in `text`, ASCII case-insensitively.
    public static func contains(_ text: UnsafeBufferPointer<UInt8>, lowercased word: [UInt8]) -> Bool {
        firstIndex(of: word, in: text, from: 0) != nil
    }

    static func firstIndex(of word: [UInt8], in text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let first = word.first, text.count >= word.count, start <= text.count - word.count,
              let base = text.baseAddress else { return nil }
        // Runs on every statement of a session with flags: plain loads, the first byte matched in
        // either case before anything is folded.
        let upper = first &- 0x61 < 26 ? first & ~0x20 : first
        let last = text.count - word.count
        return word.withUnsafeBufferPointer { w -> Int? in
            var i = start
            while i <= last {
                let b = base[i]
                if b == first || b == upper {
                    var j = 1
                    while j < w.count && folded(base[i + j]) == w[j] { j += 1 }
                    if j == w.count { return i }
                }
                i += 1
            }
            return nil
        }
    }

    /// Whether `text` may hold a SET or RESET statement (PostgreSQL's VariableSetStmt), which only
    /// ever begins a statement: one of the two words with nothing but whitespace before it back to
    /// the start of the text or a semicolon. A text with a comment opener counts as maybe, since
    /// a comment may sit before the word; an `UPDATE … SET` does not.
    public static func mayChangeSetting(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var from = 0
        // Each turn moves past one occurrence, so at most text.count turns.
        for _ in 0..<text.count {
            guard let at = firstIndex(of: set, in: text, from: from) else { return false }
            from = at + 1
            // "reset" ends in "set": the statement word starts two bytes earlier then.
            var start = at
            if at >= 2, folded(text[at - 2]) == UInt8(ascii: "r"), folded(text[at - 1]) == UInt8(ascii: "e") { start = at - 2 }
            let end = at + set.count
            if end < text.count, isIdentifierByte(text[end]) { continue }
            if startsStatement(text, at: start) { return true }
        }
        return false
    }

    private static let set = Array("set".utf8)

    /// Whether `text` may close prepared statements (DEALLOCATE, DISCARD).
    public static func mayDeallocate(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        contains(text, lowercased: dealloc) || contains(text, lowercased: discard)
    }

    /// Whether `text` may end a transaction with ROLLBACK (or ABORT).
    public static func mayRollBack(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        contains(text, lowercased: rollback) || contains(text, lowercased: abort)
    }

    /// Whether `text` may end a transaction and begin the next at once (`COMMIT AND CHAIN`).
    public static func mayChain(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        contains(text, lowercased: chain)
    }

    /// Whether `text` may make or release a savepoint (ROLLBACK TO one is found by ``mayRollBack(_:)``).
    public static func mayMarkSavepoint(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        contains(text, lowercased: savepoint) || contains(text, lowercased: release)
    }

    /// Whether `text` may call `set_config`, which changes a setting as SET does.
    public static func maySetConfig(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        contains(text, lowercased: setConfig)
    }

    private static let savepoint = Array("savepoint".utf8)
    private static let release = Array("release".utf8)
    private static let setConfig = Array("set_config".utf8)

    private static let chain = Array("chain".utf8)
    private static let dealloc = Array("dealloc".utf8)
    private static let discard = Array("discard".utf8)
    private static let rollback = Array("rollback".utf8)
    private static let abort = Array("abort".utf8)

    /// Nothing but whitespace between the start of the text (or the last semicolon) and `index`;
    /// true as well when the text has a comment, which could hide what comes before.
    private static func startsStatement(_ text: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        var i = index - 1
        while i >= 0 {
            switch text[i] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0B, 0x0C:
                i -= 1
            case UInt8(ascii: ";"):
                return true
            default:
                return hasCommentOpener(text)
            }
        }
        return true
    }

    static func hasCommentOpener(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count >= 2 else { return false }
        for i in 0..<(text.count - 1) {
            let a = text[i], b = text[i + 1]
            if (a == UInt8(ascii: "-") && b == UInt8(ascii: "-")) || (a == UInt8(ascii: "/") && b == UInt8(ascii: "*")) { return true }
        }
        return false
    }

    /// Letters, digits, `_`, `$` and every byte of a multi-byte character continue an identifier.
    static func isIdentifierByte(_ byte: UInt8) -> Bool {
        let f = folded(byte)
        return (f >= UInt8(ascii: "a") && f <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$") || byte >= 0x80
    }
}

/// The relation names a statement must mention for any flag to concern it: the old and new
/// relations of every flag past `off`. A text that has none of them (ASCII case-insensitively:
/// unquoted names fold, quoted ones are spelled as stored) and no Unicode escape (`U&"…"`, which
/// can spell a name in other bytes) neither reads nor writes one.
public struct RelationMentions: Sendable, Equatable {
    /// Lower-cased UTF-8 names.
    let names: [[UInt8]]
    /// A name holding a double quote is written doubled inside a quoted identifier, so its bytes
    /// need not occur: then every text may mention it.
    let searchable: Bool

    public init(names: [String]) {
        var unique: [[UInt8]] = []
        for name in names {
            let bytes = name.utf8.map(TextPrefilter.folded)
            if !unique.contains(bytes) { unique.append(bytes) }
        }
        self.names = unique
        searchable = !names.contains { $0.contains("\"") || $0.isEmpty }
    }

    private static let unicodeEscape = Array("u&".utf8)

    public func mayMention(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard searchable else { return true }
        if names.contains(where: { TextPrefilter.contains(text, lowercased: $0) }) { return true }
        return !names.isEmpty && TextPrefilter.contains(text, lowercased: Self.unicodeEscape)
    }
}
