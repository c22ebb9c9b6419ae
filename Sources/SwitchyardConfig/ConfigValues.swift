// Parsing and display of the scalar value forms shared by the config file, flags and the admin console.

/// Parsers for the textual value forms (durations, byte sizes, booleans) and their canonical display.
///
/// They are public so the admin console and the command line accept exactly what the file accepts.
/// Errors carry only the key; the loader adds the file and line.
public enum ConfigValues {
    /// The longest duration accepted: far beyond any sensible timeout, yet safely inside Int64 nanoseconds.
    public static let maximumDurationSeconds: Int64 = 1_000_000_000

    private static let durationUnits: [(suffix: String, nanoseconds: Int64)] = [
        ("ns", 1),
        ("us", 1_000), ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000), ("min", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ]

    static let durationExpectation = "expected a duration such as 30s, 500ms or 2m"

    /// Parses "30s", "500ms", "2m", "1h", "250us", "1.5s" or a bare number of seconds ("30", "0.25").
    public static func duration(_ text: String, key: String) throws(ConfigError) -> Duration {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("-") {
            throw ConfigError(key: key, message: "a duration must not be negative, got \(quoted(text))")
        }
        let (number, unitText) = splitNumber(trimmed)
        guard let parts = decimalParts(number) else {
            throw ConfigError(key: key, message: "\(durationExpectation), got \(quoted(text))")
        }
        let unit = unitText.lowercased()
        let perUnit: Int64
        if unit.isEmpty {
            perUnit = 1_000_000_000  // A bare number means seconds, as in most proxies' configs.
        } else if let match = durationUnits.first(where: { $0.suffix == unit }) {
            perUnit = match.nanoseconds
        } else {
            throw ConfigError(
                key: key,
                message: "\(durationExpectation), got \(quoted(text)); units are ns, us, ms, s, m (or min) and h")
        }
        let tooLarge = ConfigError(
            key: key, message: "duration \(quoted(text)) is too large (at most \(maximumDurationSeconds)s)")
        let (whole, overflow) = parts.whole.multipliedReportingOverflow(by: perUnit)
        guard !overflow else { throw tooLarge }
        // The fraction only needs nanosecond precision, which a Double holds comfortably.
        let fraction = (Double(parts.fraction) / parts.fractionScale * Double(perUnit)).rounded()
        let (total, overflow2) = whole.addingReportingOverflow(Int64(fraction))
        guard !overflow2, total <= maximumDurationSeconds * 1_000_000_000 else { throw tooLarge }
        return .nanoseconds(total)
    }

    /// The shortest exact form of a duration: "1h", "2m", "30s", "500ms", "250us", falling back to "ns".
    public static func describe(duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return "\(seconds)s" }
        let nanoseconds = fromSeconds + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0s" }
        for (suffix, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000),
                               ("ms", 1_000_000), ("us", 1_000)] where nanoseconds % size == 0 {
            return "\(nanoseconds / size)\(suffix)"
        }
        return "\(nanoseconds)ns"
    }

    private static let sizeUnits: [(suffix: String, bytes: Int)] = [
        ("b", 1), ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("tb", 1 << 40),
    ]

    static let sizeExpectation = "expected a size in bytes such as 1048576, 512kB, 64MB or 1GB"

    /// Parses a byte count: a plain integer or an integer with a PostgreSQL memory unit
    /// (B, kB = 1024, MB, GB, TB). Units are matched without regard to case: "64mb" can only mean one thing here.
    public static func byteSize(_ text: String, key: String) throws(ConfigError) -> Int {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("-") {
            throw ConfigError(key: key, message: "a size must not be negative, got \(quoted(text))")
        }
        let (number, unitText) = splitNumber(trimmed)
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit) else {
            throw ConfigError(key: key, message: "\(sizeExpectation), got \(quoted(text))")
        }
        var multiplier = 1
        if !unitText.isEmpty {
            guard let unit = sizeUnits.first(where: { $0.suffix == unitText.lowercased() }) else {
                throw ConfigError(
                    key: key, message: "\(sizeExpectation), got \(quoted(text)); units are B, kB, MB, GB and TB")
            }
            multiplier = unit.bytes
        }
        guard let count = Int(number) else {
            throw ConfigError(key: key, message: "size \(quoted(text)) is too large")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw ConfigError(key: key, message: "size \(quoted(text)) is too large") }
        return bytes
    }

    /// The shortest exact form of a byte count in PostgreSQL units: "1GB", "64MB", "512kB", else "1536B".
    public static func describe(byteSize bytes: Int) -> String {
        if bytes != 0 {
            for (suffix, size) in [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)]
            where bytes % size == 0 {
                return "\(bytes / size)\(suffix)"
            }
        }
        return "\(bytes)B"
    }

    /// Parses the YAML 1.1 boolean words, since that is what a YAML author expects to work.
    public static func bool(_ text: String, key: String) throws(ConfigError) -> Bool {
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigError(key: key, message: "expected true or false, got \(quoted(text))")
        }
    }

    static let percentExpectation = "expected a percentage from 0 to 100 with at most two decimals, such as 10 or 12.5"

    /// Parses a percentage with at most two decimals ("0", "12.5", "12.50", "100", "7.25%") into hundredths
    /// of a percent (basis points): 12.5 gives 1250. Trailing zeros past two decimals are accepted ("12.500").
    public static func percentBasisPoints(_ text: String, key: String) throws(ConfigError) -> Int {
        var trimmed = text.trimmingWhitespace()
        if trimmed.hasSuffix("%") { trimmed = trimmed.dropLast().trimmingWhitespace() }
        if trimmed.hasPrefix("-") {
            throw ConfigError(key: key, message: "a percentage must not be negative, got \(quoted(text))")
        }
        let pieces = trimmed.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = pieces.first, !wholeText.isEmpty, wholeText.allSatisfy(\.isASCIIDigit),
              pieces.count == 1 || (!pieces[1].isEmpty && pieces[1].allSatisfy(\.isASCIIDigit)) else {
            throw ConfigError(key: key, message: "\(percentExpectation), got \(quoted(text))")
        }
        var fractionText = pieces.count == 2 ? pieces[1] : ""
        while fractionText.last == "0" { fractionText = fractionText.dropLast() }
        guard fractionText.count <= 2 else {
            throw ConfigError(
                key: key, message: "\(quoted(text)) has more than two decimals; the finest step is 0.01 percent")
        }
        let wholeDigits = wholeText.drop { $0 == "0" }
        guard wholeDigits.count <= 3, let whole = Int(wholeDigits.isEmpty ? "0" : wholeDigits),
              let fraction = Int(fractionText.padding(toLength: 2)) else {
            throw ConfigError(key: key, message: "a percentage is at most 100, got \(quoted(text))")
        }
        let basisPoints = whole * 100 + fraction
        guard basisPoints <= 10_000 else {
            throw ConfigError(key: key, message: "a percentage is at most 100, got \(quoted(text))")
        }
        return basisPoints
    }

    /// A percentage in hundredths with both decimals shown: 1250 gives "12.50%", 0 gives "0.00%".
    public static func describe(basisPoints: Int) -> String {
        let fraction = basisPoints % 100
        return "\(basisPoints / 100).\(fraction < 10 ? "0" : "")\(fraction)%"
    }

    /// Parses a decimal integer within `range`.
    static func integer(_ text: String, key: String, in range: ClosedRange<Int>, what: String) throws(ConfigError) -> Int {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.hasPrefix("-") || trimmed.hasPrefix("+") ? trimmed.dropFirst() : Substring(trimmed)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else {
            throw ConfigError(key: key, message: "expected \(what), got \(quoted(text))")
        }
        guard let value = Int(trimmed), range.contains(value) else {
            throw ConfigError(key: key, message: "expected \(what), got \(trimmed)")
        }
        return value
    }

    /// Splits "1.5 GB" into ("1.5", "GB"): digits and dots first, then the unit with spaces dropped.
    private static func splitNumber(_ text: String) -> (number: String, unit: String) {
        let number = text.prefix { $0.isASCIIDigit || $0 == "." }
        let unit = text[number.endIndex...].trimmingWhitespace()
        return (String(number), unit)
    }

    /// "12.345" -> (12, 345, 1000); nil unless it is digits with at most one dot between digit runs.
    /// Fraction digits past nine are dropped: they are below nanosecond precision for every unit but hours.
    private static func decimalParts(_ text: String) -> (whole: Int64, fraction: Int64, fractionScale: Double)? {
        let pieces = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = pieces.first, !wholeText.isEmpty, wholeText.allSatisfy(\.isASCIIDigit) else {
            return nil
        }
        guard let whole = Int64(wholeText) else { return (Int64.max, 0, 1) }  // Reported as too large.
        guard pieces.count == 2 else { return (whole, 0, 1) }
        let fractionText = pieces[1].prefix(9)
        guard !fractionText.isEmpty, pieces[1].allSatisfy(\.isASCIIDigit), let fraction = Int64(fractionText) else {
            return nil
        }
        var scale = 1.0
        for _ in 0..<fractionText.count { scale *= 10 }
        return (whole, fraction, scale)
    }
}

/// Quotes a user-supplied value in an error message, escaping anything invisible.
func quoted(_ text: String) -> String {
    String(reflecting: text)
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension StringProtocol {
    /// The text with "0"s appended up to `length` characters ("5" -> "50"); never shortened.
    func padding(toLength length: Int) -> String {
        String(self) + String(repeating: "0", count: Swift.max(0, length - count))
    }

    func trimmingWhitespace() -> String {
        let characters = Substring(self)
        guard let first = characters.firstIndex(where: { !$0.isWhitespace }),
              let last = characters.lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(characters[first...last])
    }
}

/// "Did you mean" support: the closest candidate within edit distance 2, if any.
enum Suggestions {
    static func closest(to word: String, among candidates: [String]) -> String? {
        // A typed camelCase or dashed key ("maxClientConnections", "max-client-connections") is an obvious match.
        let normalized = snakeCased(word)
        if normalized != word, candidates.contains(normalized) { return normalized }
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word.lowercased(), candidate)
            if distance <= 2, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    static func hint(for word: String, among candidates: [String]) -> String {
        closest(to: word, among: candidates).map { "; did you mean \($0)?" } ?? ""
    }

    private static func snakeCased(_ word: String) -> String {
        var result = ""
        for character in word {
            if character == "-" || character == " " {
                result.append("_")
            } else if character.isUppercase {
                if !result.isEmpty, result.last != "_" { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// Levenshtein distance over Characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
