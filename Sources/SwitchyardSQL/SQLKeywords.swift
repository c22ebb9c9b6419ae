// PostgreSQL's own keyword list, from the parser's scanner.
import CPgQuery

/// How reserved a keyword is, as PostgreSQL's grammar sorts them.
public enum KeywordCategory: UInt8, Sendable {
    /// Usable as any name.
    case unreserved = 0
    /// Usable as a column or table name, not as a function or type name.
    case columnName = 1
    /// Usable as a function or type name, not as a column or table name.
    case typeOrFunctionName = 2
    /// Usable only quoted (or as a column label after AS).
    case reserved = 3
}

public enum SQLKeywords {
    /// Every keyword the parser knows, lower case, with its category.
    public static let all: [(word: String, category: KeywordCategory)] = (0..<Int(switchyard_keyword_count())).map { index in
        var category: UInt8 = 0
        let word = String(cString: switchyard_keyword(Int32(index), &category))
        return (word, KeywordCategory(rawValue: category) ?? .reserved)
    }
}
