// Byte checks that rule a query text out before any scanning or parsing: most statements in a
// session with flags touch no migrated relation and change no setting.
import SwitchyardSQL

/// Checks on a query's UTF-8 bytes, each of which may answer "maybe" but never wrongly "no".
public enum TextPrefilter {
    /// Whether `word` (lower case) occurs in `text`, ASCII case-insensitively.
    public static func contains(_ text: UnsafeBufferPointer<UInt8>, lowercased word: [UInt8]) -> Bool {
        word.withUnsafeBufferPointer { FoldedSearch.firstIndex(of: $0, in: text, from: 0) != nil }
    }


    /// Whether `text` may change a setting: hold a SET or RESET statement (PostgreSQL's
    /// VariableSetStmt), which only ever begins a statement: one of the two words with nothing but
    /// whitespace before it back to the start of the text or a semicolon; or call `set_config`,
    /// anywhere. A text with a comment opener counts as maybe, since a comment may sit before the
    /// word; an `UPDATE … SET` does not.
    public static func mayChangeSetting(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let set: StaticString = "set", config: StaticString = "_config"
        let word = UnsafeBufferPointer(start: set.utf8Start, count: set.utf8CodeUnitCount)
        let suffix = UnsafeBufferPointer(start: config.utf8Start, count: config.utf8CodeUnitCount)
        var from = 0
        // Each turn moves past one occurrence, so at most text.count turns.
        for _ in 0..<text.count {
            guard let at = FoldedSearch.firstIndex(of: word, in: text, from: from) else { return false }
            from = at + 1
            let end = at + word.count
            if end + suffix.count <= text.count, FoldedSearch.firstIndex(of: suffix, in: UnsafeBufferPointer(rebasing: text[end..<(end + suffix.count)]), from: 0) == 0 {
                return true
            }
            // "reset" ends in "set": the statement word starts two bytes earlier then.
            var start = at
            if at >= 2, FoldedSearch.folded(text[at - 2]) == UInt8(ascii: "r"), FoldedSearch.folded(text[at - 1]) == UInt8(ascii: "e") { start = at - 2 }
            if end < text.count, isIdentifierByte(text[end]) { continue }
            if startsStatement(text, at: start) { return true }
        }
        return false
    }

    /// Whether `text` may close prepared statements (DEALLOCATE, DISCARD).
    public static func mayDeallocate(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "dealloc") || FoldedSearch.contains(text, "discard")
    }

    /// Whether `text` may end a transaction with ROLLBACK (or ABORT).
    public static func mayRollBack(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "rollback") || FoldedSearch.contains(text, "abort")
    }

    /// Whether `text` may end a transaction and begin the next at once (`COMMIT AND CHAIN`).
    public static func mayChain(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "chain")
    }

    /// Whether `text` may prepare a statement with SQL PREPARE.
    public static func mayPrepare(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "prepare")
    }

    /// Whether `text` may run a statement prepared with SQL PREPARE.
    public static func mayExecute(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "execute")
    }

    /// Whether `text` may make or release a savepoint (ROLLBACK TO one is found by ``mayRollBack(_:)``).
    public static func mayMarkSavepoint(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        FoldedSearch.contains(text, "savepoint") || FoldedSearch.contains(text, "release")
    }

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
        let f = FoldedSearch.folded(byte)
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
        let folded = names.map { $0.utf8.map(FoldedSearch.folded) }
        // A text that mentions a name mentions every name inside it (`accounts` in
        // `accounts_v2`): only the inner one is looked for.
        var unique: [[UInt8]] = []
        for (i, bytes) in folded.enumerated() where !unique.contains(bytes) {
            let holdsAnother = folded.indices.contains { j in
                j != i && folded[j] != bytes && !folded[j].isEmpty && Self.holds(bytes, folded[j])
            }
            if !holdsAnother { unique.append(bytes) }
        }
        self.names = unique
        searchable = !names.contains { $0.contains("\"") || $0.isEmpty }
    }

    /// Whether `outer` holds `inner` as a run of bytes.
    private static func holds(_ outer: [UInt8], _ inner: [UInt8]) -> Bool {
        guard inner.count <= outer.count else { return false }
        return (0...(outer.count - inner.count)).contains { outer[$0..<($0 + inner.count)].elementsEqual(inner) }
    }

    public func mayMention(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard searchable else { return true }
        if names.contains(where: { TextPrefilter.contains(text, lowercased: $0) }) { return true }
        return !names.isEmpty && FoldedSearch.contains(text, "u&")
    }
}
