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
public func sqlcommenterTags(_ sql: String) -> [String: String] {
    sqlcommenterTags(comments: comments(in: sql))
}

/// The sqlcommenter tags of comments already found by the scanner (each as written).
public func sqlcommenterTags(comments: [String]) -> [String: String] {
    var tags: [String: String] = [:]
    for comment in comments where comment.hasPrefix("/*") && comment.hasSuffix("*/") && comment.count >= 4 {
        let body = comment.dropFirst(2).dropLast(2)
        guard let pairs = SQLCommenter.parse(Substring(body)) else { continue }
        for (key, value) in pairs { tags[key] = value }
    }
    return tags
}

/// The sqlcommenter serialisation format: `key='value',key2='value2'`.
enum SQLCommenter {
    /// The pairs of one comment body, or nil if the body is not entirely sqlcommenter pairs.
    static func parse(_ body: Substring) -> [(String, String)]? {
        let characters = Array(body.trimmingCharacters(in: .whitespacesAndNewlines))
        guard !characters.isEmpty else { return nil }
        var pairs: [(String, String)] = []
        var index = 0
        while index < characters.count {
            // key: everything up to '=', trimmed; quotes are not allowed in it.
            var key = ""
            while index < characters.count, characters[index] != "=" {
                if characters[index] == "'" || characters[index] == "," { return nil }
                key.append(characters[index])
                index += 1
            }
            key = key.trimmingCharacters(in: .whitespaces)
            guard index < characters.count, !key.isEmpty else { return nil }
            index += 1  // '='
            while index < characters.count, characters[index] == " " { index += 1 }
            // value: a single-quoted string in which \' stands for a quote.
            guard index < characters.count, characters[index] == "'" else { return nil }
            index += 1
            var value = ""
            var closed = false
            while index < characters.count {
                let character = characters[index]
                if character == "\\", index + 1 < characters.count, characters[index + 1] == "'" {
                    value.append("'")
                    index += 2
                } else if character == "'" {
                    index += 1
                    closed = true
                    break
                } else {
                    value.append(character)
                    index += 1
                }
            }
            guard closed else { return nil }
            pairs.append((decoded(key), decoded(value)))
            while index < characters.count, characters[index] == " " { index += 1 }
            if index < characters.count {
                guard characters[index] == "," else { return nil }
                index += 1
                while index < characters.count, characters[index] == " " { index += 1 }
                guard index < characters.count else { return nil }  // trailing comma
            }
        }
        return pairs
    }

    /// Percent-decoding; malformed escapes leave the text as written.
    private static func decoded(_ text: String) -> String {
        text.removingPercentEncoding ?? text
    }
}
