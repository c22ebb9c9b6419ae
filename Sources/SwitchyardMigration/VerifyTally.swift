// The running result of a verify: chunk and row counts, differing chunks, the keys named, and its report.

/// Adds up a verify chunk by chunk. Differing chunks are all counted; keys are named up to `maxKeys`,
/// after which differing chunks are no longer descended into (`keysComplete` turns false).
public struct VerifyTally: Sendable, Equatable {
    public let maxKeys: Int
    public private(set) var chunks = 0
    public private(set) var rowsOld = 0
    public private(set) var rowsNew = 0
    public private(set) var differingChunks = 0
    /// Differing keys found by the row comparisons (all of them while `keysComplete`).
    public private(set) var differingKeys = 0
    /// The keys named, in key order, at most `maxKeys`.
    public private(set) var sampleKeys: [KeyDifference] = []
    /// False once some differing range was left without naming its keys.
    public private(set) var keysComplete = true

    public init(maxKeys: Int) {
        precondition(maxKeys >= 0)
        self.maxKeys = maxKeys
    }

    /// Whether both relations hold the same data through the mapping.
    public var equal: Bool { differingChunks == 0 }

    /// How many more keys may be named.
    public var keyBudget: Int { max(0, maxKeys - sampleKeys.count) }

    /// Records a chunk's summary. Returns a descent to run when the chunk differs and keys may still be
    /// named; nil otherwise.
    public mutating func record(chunk range: KeyRange, _ summary: RangeSummary) -> VerifyDescent? {
        chunks += 1
        rowsOld += summary.oldRows
        rowsNew += summary.newRows
        guard !summary.matches else { return nil }
        differingChunks += 1
        guard keyBudget > 0 else {
            keysComplete = false
            return nil
        }
        return VerifyDescent(range: range, summary: summary, keyBudget: keyBudget)
    }

    /// Takes in a finished descent's findings.
    public mutating func record(_ descent: VerifyDescent) {
        sampleKeys += descent.differences.prefix(keyBudget)
        differingKeys += descent.differingKeyCount
        if !descent.complete { keysComplete = false }
    }

    /// "3" or "at least 100" when some differing ranges were not examined.
    public var differingKeysText: String {
        keysComplete ? String(differingKeys) : "at least \(differingKeys)"
    }

    /// The report printed at the end: the verdict with its counts, then one line per key named.
    public func reportLines(migration: String, duration: Duration) -> [String] {
        let seconds = Double(Int((duration / .milliseconds(1)).rounded())) / 1000
        var lines: [String] = []
        let counts = "\(chunks) chunks, \(rowsOld) old rows, \(rowsNew) new rows"
        if equal {
            lines.append("verify \(migration): EQUAL: \(counts), \(seconds) s")
        } else {
            lines.append("verify \(migration): DIFFERENT: \(counts), \(differingChunks) differing chunks, "
                + "\(differingKeysText) differing keys, \(seconds) s")
            for difference in sampleKeys {
                lines.append("  \(difference)")
            }
            if !keysComplete || differingKeys > sampleKeys.count {
                lines.append("  (keys named up to --max-keys \(maxKeys))")
            }
        }
        return lines
    }

    /// The named keys as a JSON array for the control schema:
    /// `[{"key": ["eu", "17"], "kind": "missing_in_new"}, ...]`.
    public var sampleKeysJSON: String {
        "[" + sampleKeys.map { difference in
            "{\"key\": [" + difference.key.map(Self.jsonString).joined(separator: ", ") + "], \"kind\": "
                + Self.jsonString(difference.kind.rawValue) + "}"
        }.joined(separator: ", ") + "]"
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
