// Caches what the router needs per query: the analysis, the sqlcommenter tags, and rewrite plans.
import Glibc
import Synchronization
import SwitchyardSQL

/// Everything derived from one query text.
public struct QueryInfo: Sendable {
    public var statements: [StatementAnalysis]
    public var commentTags: CommentTags
    /// For a text analysed through its token shape: the shape and where its tokens are in this text.
    fileprivate var shape: ShapeBinding?
    fileprivate var rewrites: [[ReadRoute]: RewriteOutcome] = [:]
}

/// A text's token shape: its tokens with constants and comments left out. Texts of one shape
/// (`... WHERE aid = 17` and `... WHERE aid = 9042`, with any comment) parse to the same tree
/// but for the constants, so one analysis and one rewrite plan serve them all.
fileprivate struct ShapeBinding: Sendable {
    var template: ShapeTemplate
    /// The text's own token ranges, for a text that was scanned (empty for one found through its
    /// masked key, whose ranges are the key template's, moved: see ``tokenRanges``).
    private var ownRanges: [Range<Int>]
    /// For a text found through its masked key: that key's template and the text's digit runs.
    private(set) var masked: MaskedTemplate?
    private(set) var runs: [Range<Int>]

    init(template: ShapeTemplate, ownRanges: [Range<Int>]) {
        self.template = template
        self.ownRanges = ownRanges
        masked = nil
        runs = []
    }

    /// A text of `masked`'s key whose digit runs are `runs`. Its token places are worked out when
    /// asked (only a rewrite or a mirror without a kept form asks): a binding is made for every
    /// statement, and holding them would be four more lists to keep and free.
    init(masked: MaskedTemplate, runs: [Range<Int>]) {
        template = masked.shape
        ownRanges = []
        self.masked = masked
        self.runs = runs
    }

    /// Where the text's tokens are, comments excluded, in order.
    var tokenRanges: TokenPlaces {
        guard let masked else { return TokenPlaces(ownRanges) }
        return TokenPlaces(masked.tokenRanges, movedFrom: masked.runs, to: runs)
    }
}

/// The byte ranges of a text's tokens (or comments): its own, or those of a text with the same
/// masked bytes (``MaskedText``) moved by how much longer or shorter each digit run is here.
/// Moved one at a time, when asked: a rewrite asks only for the tokens it edits.
fileprivate struct TokenPlaces: Sendable {
    private let ranges: [Range<Int>]
    /// The digit runs of the text the ranges are in, and of this text, as many in each (their
    /// masked bytes are equal); empty for a text's own ranges.
    private let runsThere: [Range<Int>]
    private let runsHere: [Range<Int>]
    /// With more than ``linearRuns`` runs: `growth[k]`, how much longer the first `k` runs are
    /// here, so that a text with many runs and many comments costs no product of the two.
    private let growth: [Int]
    private static let linearRuns = 16

    init(_ own: [Range<Int>]) {
        ranges = own
        runsThere = []
        runsHere = []
        growth = []
    }

    init(_ ranges: [Range<Int>], movedFrom there: [Range<Int>], to here: [Range<Int>]) {
        self.ranges = ranges
        runsThere = there
        runsHere = here
        guard there.count > Self.linearRuns else {
            growth = []
            return
        }
        var sums = [0]
        sums.reserveCapacity(there.count + 1)
        for (a, b) in zip(there, here) { sums.append(sums[sums.count - 1] + b.count - a.count) }
        growth = sums
    }

    var count: Int { ranges.count }

    /// No range begins or ends inside a run (runs are inside single tokens or comments).
    subscript(i: Int) -> Range<Int> {
        let r = ranges[i]
        guard !runsThere.isEmpty else { return r }
        return (r.lowerBound + shift(r.lowerBound))..<(r.upperBound + shift(r.upperBound))
    }

    /// How much the runs that begin before `offset` grew here.
    private func shift(_ offset: Int) -> Int {
        if growth.isEmpty {
            var total = 0
            for k in runsThere.indices {
                guard runsThere[k].lowerBound < offset else { break }
                total += runsHere[k].count - runsThere[k].count
            }
            return total
        }
        // Runs are in order: the count of those that begin before `offset`, found by halving.
        var low = 0, high = runsThere.count
        while low < high {
            let middle = (low + high) / 2
            if runsThere[middle].lowerBound < offset { low = middle + 1 } else { high = middle }
        }
        return growth[low]
    }
}

/// An edit in token positions: it replaces whole tokens, or inserts text right before or
/// right after one, so it applies to every text of the shape whatever its constants.
fileprivate struct TokenEdit: Sendable {
    enum Place: Sendable {
        case tokens(Range<Int>)
        case before(Int)
        case after(Int)
    }
    var place: Place
    var replacement: String

    /// The byte edits' token positions in `tokenRanges`; nil if one is not on a token boundary.
    static func from(_ edits: [ReadRewriter.Edit], tokenRanges: [Range<Int>]) -> [TokenEdit]? {
        var out: [TokenEdit] = []
        for e in edits {
            if e.range.isEmpty {
                if let i = tokenRanges.firstIndex(where: { $0.lowerBound == e.range.lowerBound }) {
                    out.append(TokenEdit(place: .before(i), replacement: e.replacement))
                } else if let i = tokenRanges.firstIndex(where: { $0.upperBound == e.range.lowerBound }) {
                    out.append(TokenEdit(place: .after(i), replacement: e.replacement))
                } else {
                    return nil
                }
                continue
            }
            guard let first = tokenRanges.firstIndex(where: { $0.lowerBound == e.range.lowerBound }),
                  let last = tokenRanges.firstIndex(where: { $0.upperBound == e.range.upperBound }),
                  first <= last else { return nil }
            out.append(TokenEdit(place: .tokens(first..<(last + 1)), replacement: e.replacement))
        }
        return out
    }

    /// The edits applied to a text whose tokens are at `tokenRanges`; nil if the shapes disagree.
    static func apply(_ edits: [TokenEdit], to sql: String, tokenRanges: TokenPlaces) -> String? {
        guard let bytes = byteEdits(edits, tokenRanges: tokenRanges) else { return nil }
        return ReadRewriter.apply(bytes, to: sql)
    }

    /// The byte edits for a text whose tokens are at `tokenRanges`; nil if the shapes disagree.
    static func byteEdits(_ edits: [TokenEdit], tokenRanges: TokenPlaces) -> [ReadRewriter.Edit]? {
        var bytes: [ReadRewriter.Edit] = []
        for e in edits {
            switch e.place {
            case let .tokens(t):
                guard !t.isEmpty, t.upperBound <= tokenRanges.count else { return nil }
                bytes.append(ReadRewriter.Edit(range: tokenRanges[t.lowerBound].lowerBound..<tokenRanges[t.upperBound - 1].upperBound, replacement: e.replacement))
            case let .before(i):
                guard i < tokenRanges.count else { return nil }
                let p = tokenRanges[i].lowerBound
                bytes.append(ReadRewriter.Edit(range: p..<p, replacement: e.replacement))
            case let .after(i):
                guard i < tokenRanges.count else { return nil }
                let p = tokenRanges[i].upperBound
                bytes.append(ReadRewriter.Edit(range: p..<p, replacement: e.replacement))
            }
        }
        return bytes
    }
}

/// A masked key's rewrite for one route set, as the rewritten text of one text of the key with
/// the places of its digit runs: the edits replace whole tokens or go between them, so they never
/// cut a run, and the bytes next to an edit (which decide whether it needs a space) are the same
/// in every text of the key, or digits in all of them. Another text of the key is rewritten by
/// copying these bytes with its own digits in the runs: no edit list, no second pass.
fileprivate struct RewrittenForm: Sendable {
    /// The rewritten text of the text the form was made from.
    let bytes: [UInt8]
    /// The runs left in `bytes` (a run inside a replaced token is gone with it), in order, and
    /// which of the key's runs each one is.
    let runs: [Range<Int>]
    let runIndices: [Int]

    /// The form of `text` (whose runs are `runs`) under `edits` (its byte edits, before spacing).
    init?(text: String, runs textRuns: [Range<Int>], edits: [ReadRewriter.Edit]) {
        var sql = text
        let spaced = ReadRewriter.spaced(edits, in: text)
        guard let rewritten = ReadRewriter.applyAsGiven(spaced, to: text) else { return nil }
        var runs: [Range<Int>] = []
        var indices: [Int] = []
        for (k, run) in textRuns.enumerated() {
            var shift = 0
            var replaced = false
            for e in spaced {
                if e.range.upperBound <= run.lowerBound {
                    shift += e.replacement.utf8.count - e.range.count
                } else if e.range.lowerBound >= run.upperBound {
                    continue
                } else if !e.range.isEmpty && e.range.lowerBound <= run.lowerBound && run.upperBound <= e.range.upperBound {
                    replaced = true
                } else {
                    return nil
                }
            }
            if replaced { continue }
            runs.append((run.lowerBound + shift)..<(run.upperBound + shift))
            indices.append(k)
        }
        bytes = Array(rewritten.utf8)
        self.runs = runs
        runIndices = indices
        // Made once per key and route set: checked against the rewrite it stands for.
        guard sql.withUTF8({ apply(to: $0, runs: textRuns) }) == rewritten else { return nil }
    }

    /// The rewritten form of a text of the key whose digit runs are `textRuns`.
    func apply(to text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>]) -> String? {
        guard let total = length(for: text, runs: textRuns) else { return nil }
        return String(unsafeUninitializedCapacity: total) { out in
            fill(out.baseAddress!, text: text, runs: textRuns)
            return total
        }
    }

    /// ``apply(to:runs:)`` as bytes, with `front` bytes left for the caller before the text and a
    /// NUL after it: a Query message's body, its header still to write.
    func applyAsBody(to text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>], front: Int) -> [UInt8]? {
        guard let total = length(for: text, runs: textRuns) else { return nil }
        return [UInt8](unsafeUninitializedCapacity: front + total + 1) { out, count in
            fill(out.baseAddress! + front, text: text, runs: textRuns)
            for i in 0..<front { out[i] = 0 }
            out[front + total] = 0
            count = front + total + 1
        }
    }

    /// The length of the rewritten text; nil when `textRuns` are not the key's runs in `text`.
    private func length(for text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>]) -> Int? {
        var total = bytes.count
        for (j, k) in runIndices.enumerated() {
            guard k < textRuns.count, textRuns[k].upperBound <= text.count else { return nil }
            total += textRuns[k].count - runs[j].count
        }
        return total
    }

    /// Writes the rewritten text at `out`: the form's bytes with the text's digits in the runs.
    private func fill(_ out: UnsafeMutablePointer<UInt8>, text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>]) {
        bytes.withUnsafeBufferPointer { form in
            var written = 0
            func copy(_ part: UnsafeBufferPointer<UInt8>) {
                guard let base = part.baseAddress, !part.isEmpty else { return }
                (out + written).update(from: base, count: part.count)
                written += part.count
            }
            var at = 0
            for (j, k) in runIndices.enumerated() {
                copy(UnsafeBufferPointer(rebasing: form[at..<runs[j].lowerBound]))
                copy(UnsafeBufferPointer(rebasing: text[textRuns[k]]))
                at = runs[j].upperBound
            }
            copy(UnsafeBufferPointer(rebasing: form[at...]))
        }
    }
}

/// A rewrite plan in token positions, so it applies to every text of the shape.
fileprivate enum TokenPlan: Sendable {
    case untouched
    case keptOnOldPath(reason: String)
    case edits([TokenEdit])
}

/// A write-mirroring plan in token positions.
fileprivate enum WriteTokenPlan: Sendable {
    case untouched
    case notMirrored(migration: String, reason: String)
    case edits([TokenEdit], migrations: [String])
}

/// What a write plan depends on besides the shape.
fileprivate struct WritePlanKey: Hashable, Sendable {
    var targets: [MirrorTarget]
    var protocolName: String
}

/// The first text of a shape and what was derived from it. A text's info holds its template,
/// so planning a rewrite needs no second lookup by shape.
fileprivate final class ShapeTemplate: @unchecked Sendable {
    let sql: String
    let statements: [StatementAnalysis]
    let tokenRanges: [Range<Int>]
    /// Rewrite plans per route set, and write plans; read and written only under the cache's lock.
    var plans = PerRoutes<TokenPlan>()
    var writePlans: [WritePlanKey: WriteTokenPlan] = [:]

    init(sql: String, statements: [StatementAnalysis], tokenRanges: [Range<Int>]) {
        self.sql = sql
        self.statements = statements
        self.tokenRanges = tokenRanges
    }
}

/// Values kept per route set, the one asked for last compared first: sessions ask for the same
/// routes statement after statement, and comparing those (their strings shared with the flag
/// table) costs less than hashing them.
fileprivate struct PerRoutes<Value> {
    private var all: [[ReadRoute]: Value] = [:]
    private var last: (routes: [ReadRoute], value: Value)?

    mutating func value(for routes: [ReadRoute]) -> Value? {
        if let last, last.routes == routes { return last.value }
        guard let found = all[routes] else { return nil }
        last = (routes, found)
        return found
    }

    mutating func set(_ value: Value, for routes: [ReadRoute]) {
        all[routes] = value
        last = (routes, value)
    }
}

/// A token shape as bytes: each token's kind, and the spelling of every token that is not a
/// constant. Its hash is taken once, when it is made, and two keys are equal only when their
/// bytes are: a hash collision costs a comparison, never a wrong plan.
struct ShapeKey: Hashable, Sendable {
    let bytes: [UInt8]
    private let digest: Int

    init(bytes: [UInt8]) {
        self.bytes = bytes
        digest = bytes.withUnsafeBytes { Self.digest(of: $0) }
    }

    /// Chosen at random once per process, so which texts share a digest cannot be known ahead.
    private static let seed = UInt64.random(in: .min ... .max)

    /// A 64-bit multiply-and-fold digest of `bytes`, eight at a time. A key is made for every text
    /// with constants inlined, and the standard library's hasher costs about twenty times as
    /// much per byte; the dictionary still hashes the digest with it.
    static func digest(of bytes: UnsafeRawBufferPointer) -> Int {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= bytes.count {
            h = fold(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        for j in i..<bytes.count { tail |= UInt64(bytes[j]) << UInt64(8 * (j - i)) }
        return Int(bitPattern: UInt(truncatingIfNeeded: fold(fold(h ^ tail))))
    }

    /// The full 128-bit product's halves xored: every input bit reaches every output bit.
    @inline(__always) private static func fold(_ x: UInt64) -> UInt64 {
        let (high, low) = x.multipliedFullWidth(by: 0xD6E8_FEB8_6659_FD93)
        return high ^ low
    }

    static func == (a: ShapeKey, b: ShapeKey) -> Bool { a.digest == b.digest && a.bytes == b.bytes }

    func hash(into hasher: inout Hasher) { hasher.combine(digest) }

    /// Collects a text's tokens, comments left out, into a key.
    struct Builder {
        private(set) var bytes: [UInt8] = []

        init(textBytes: Int, tokens: Int) { bytes.reserveCapacity(textBytes + tokens * 3) }

        /// Each token is its kind, then for a token that is not a constant its length and spelling:
        /// no two token sequences give the same bytes.
        mutating func append(kind: SQLToken.Kind, spelling: UnsafeBufferPointer<UInt8>) {
            appendVarint(UInt64(UInt32(bitPattern: kind.rawValue)))
            guard !QueryInfoCache.isConstant(kind) else { return }
            appendVarint(UInt64(spelling.count))
            bytes.append(contentsOf: spelling)
        }

        private mutating func appendVarint(_ value: UInt64) {
            var v = value
            // At most ten bytes for 64 bits.
            for _ in 0..<10 {
                if v < 0x80 {
                    bytes.append(UInt8(v))
                    return
                }
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
        }

        var key: ShapeKey { ShapeKey(bytes: bytes) }
    }
}

/// A text with its digits masked: each run of ASCII digits becomes one 0xFF byte, which UTF-8
/// never holds. Texts with the same masked bytes differ only in their digit runs. Where the first
/// of them (the template) has a run inside a numeric constant, a plain string constant or a
/// comment, another text may have any digits there and still scans to the same tokens, with
/// token boundaries moved by the runs' lengths; every other run (in a name, a parameter, an
/// escape, a dollar-quote tag) must be the same digits. A text that passes needs no scan, only
/// its tokens' places worked out from the template's.
struct MaskedText {
    let key: ShapeKey
    /// The masked runs, in order.
    let runs: [Range<Int>]

    init?(_ text: UnsafeBufferPointer<UInt8>) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var runs: [Range<Int>] = []
        var i = 0
        var copied = 0
        let n = text.count
        // Runs for every new text: the bytes between runs are copied in one piece each, and
        // eight bytes without a digit are passed over at once.
        let base = UnsafeRawPointer(text.baseAddress)
        while i < n {
            if let base, i + 8 <= n, !Self.holdsDigit(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
                continue
            }
            guard Self.isDigit(text[i]) else {
                i += 1
                continue
            }
            var end = i + 1
            while end < n, Self.isDigit(text[end]) { end += 1 }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<i]))
            bytes.append(Self.runMark)
            // One allocation for the usual few runs, not one per doubling.
            if runs.isEmpty { runs.reserveCapacity(8) }
            runs.append(i..<end)
            i = end
            copied = end
        }
        guard !runs.isEmpty else { return nil }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<n]))
        key = ShapeKey(bytes: bytes)
        self.runs = runs
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// What a run becomes in the key: a byte UTF-8 never holds.
    static let runMark: UInt8 = 0xFF

    /// Whether any of the eight bytes of `word` is an ASCII digit: a byte strictly between
    /// 0x2F and 0x3A, tested in every byte at once (bytes of 0x80 and above never count).
    @inline(__always) static func holdsDigit(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, low7 = ones &* 0x7F, high = ones &* 0x80
        let x = word & low7
        return (ones &* (127 + 0x3A) &- x) & ~word & (x &+ ones &* (127 - 0x2F)) & high != 0
    }

    /// How far the digits of a template's run may differ in another text of its key.
    enum Latitude {
        /// Any digits: the run is inside a decimal or real constant, a string constant written
        /// with plain quotes, or a comment.
        case any
        /// Up to nine digits: the run is an integer constant, which the scanner turns into a
        /// float constant once it passes int32, and some places (`char(n)`, `FETCH n`) take
        /// integers only.
        case integer
        /// The template's digits: the run is in a name, a parameter, `E'…'` or `U&'…'` (whose
        /// escapes digits can make invalid) or `$tag$…$tag$` (whose tags they can make unequal).
        case none
    }

    static let integerDigits = 9

    /// The latitude of `run`, given the template's tokens (sorted, comments included).
    static func latitude(_ run: Range<Int>, in tokens: [SQLToken], text: UnsafeBufferPointer<UInt8>, from index: inout Int) -> Latitude {
        while index < tokens.count, tokens[index].byteRange.upperBound <= run.lowerBound { index += 1 }
        guard index < tokens.count else { return .none }
        let token = tokens[index]
        guard token.byteRange.lowerBound <= run.lowerBound, run.upperBound <= token.byteRange.upperBound,
              token.byteRange.upperBound <= text.count else { return .none }
        switch token.kind {
        case .integerConstant: return .integer
        case .floatConstant, .sqlComment, .cComment: return .any
        case .stringConstant: return text[token.byteRange.lowerBound] == UInt8(ascii: "'") ? .any : .none
        default: return .none
        }
    }
}

/// The template of a masked key: the first text's shape, where its runs, tokens and comments
/// are, and the digits of the runs that must not vary.
fileprivate final class MaskedTemplate: @unchecked Sendable {
    let shape: ShapeTemplate
    let runs: [Range<Int>]
    /// Tokens without comments, and comments, in the template's text.
    let tokenRanges: [Range<Int>]
    let commentRanges: [Range<Int>]
    /// The runs that must be the same in every text of the key: index and digits.
    let fixed: [(run: Int, digits: [UInt8])]
    /// The runs that are integer constants, which must stay within ``MaskedText/integerDigits`` digits.
    let integers: [Int]
    /// The key's bytes: what ``match(_:)`` compares a text with, without masking it first.
    let maskedBytes: [UInt8]
    /// Rewritten forms per route set (nil: the rewrite has no form; see ``RewrittenForm``). Read
    /// and written only under the cache's lock.
    var forms = PerRoutes<RewrittenForm?>()
    /// Every sqlcommenter pair of the comments, in order, with its value's bytes in the template,
    /// when the runs in comments are all inside plain values (``sqlcommenterValueRanges(comment:)``):
    /// then a text's tags are those values moved by its runs, with no comment parsed again.
    let tagValues: [(key: String, value: Range<Int>)]?
    /// The runs a parameter stands for in the key's prepared forms (``PreparedRead``), when the
    /// key is one SELECT whose every run is fixed, in a comment, or an integer constant at one of
    /// its ``StatementAnalysis/parameterPlaces``; nil otherwise.
    let parameterRuns: [Int]?
    /// The prepared form of the key's texts as they are, made with the template (nil when not
    /// preparable), and per route set (read and written only under the cache's lock; nil inside:
    /// the key has none).
    let preparedAsIs: PreparedRead?
    var preparedForms = PerRoutes<PreparedRead?>()

    init?(shape: ShapeTemplate, masked: MaskedText, tokens: [SQLToken], text: UnsafeBufferPointer<UInt8>,
          tokenRanges: [Range<Int>], commentRanges: [Range<Int>]) {
        var fixed: [(Int, [UInt8])] = []
        var integers: [Int] = []
        var anywhere: [Int] = []
        var cursor = 0
        for (i, run) in masked.runs.enumerated() {
            switch MaskedText.latitude(run, in: tokens, text: text, from: &cursor) {
            case .any: anywhere.append(i)
            case .integer: integers.append(i)
            case .none: fixed.append((i, Array(UnsafeBufferPointer(rebasing: text[run]))))
            }
        }
        // A text whose every run is fixed is better served by the exact-text cache.
        guard fixed.count < masked.runs.count else { return nil }
        let parameterRuns = Self.parameterRuns(runs: masked.runs, integers: integers, anywhere: anywhere, shape: shape,
                                               tokenRanges: tokenRanges, commentRanges: commentRanges)
        self.parameterRuns = parameterRuns
        preparedAsIs = parameterRuns.map {
            Self.preparedForm(parameterRuns: $0, bytes: Array(text), places: masked.runs, indices: Array(masked.runs.indices))
        }
        tagValues = Self.tagValues(commentRanges: commentRanges, runs: masked.runs, text: text)
        maskedBytes = masked.key.bytes
        self.integers = integers
        self.shape = shape
        runs = masked.runs
        self.tokenRanges = tokenRanges
        self.commentRanges = commentRanges
        self.fixed = fixed
    }

    /// See ``parameterRuns``. The shape's places are found in the template by token: the shape
    /// may have been made from another text, its constants of other lengths.
    private static func parameterRuns(runs: [Range<Int>], integers: [Int], anywhere: [Int], shape: ShapeTemplate,
                                      tokenRanges: [Range<Int>], commentRanges: [Range<Int>]) -> [Int]? {
        guard !integers.isEmpty, shape.statements.count == 1, let statement = shape.statements.first,
              statement.statementType == "SelectStmt", statement.error == nil,
              shape.tokenRanges.count == tokenRanges.count else { return nil }
        for i in anywhere where !commentRanges.contains(where: { $0.lowerBound <= runs[i].lowerBound && runs[i].upperBound <= $0.upperBound }) {
            return nil
        }
        let places = Set(statement.parameterPlaces.map { $0 + statement.range.lowerBound })
        var token = 0
        for i in integers {
            while token < tokenRanges.count, tokenRanges[token].upperBound <= runs[i].lowerBound { token += 1 }
            guard token < tokenRanges.count, tokenRanges[token] == runs[i],
                  places.contains(shape.tokenRanges[token].lowerBound) else { return nil }
        }
        return integers
    }

    /// The prepared form of the text as rewritten into `bytes`, where the key's runs `indices` are at `places`.
    static func preparedForm(parameterRuns: [Int], bytes: [UInt8], places: [Range<Int>], indices: [Int]) -> PreparedRead {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        var kept: [Int] = []
        var at = 0
        for (place, k) in zip(places, indices) where parameterRuns.contains(k) {
            out += bytes[at..<place.lowerBound]
            kept.append(k)
            out += Array("$\(kept.count)".utf8)
            at = place.upperBound
        }
        out += bytes[at...]
        return PreparedRead(text: out, parameterRuns: kept)
    }

    /// The comments of a text of the key whose digit runs are `textRuns`, where they are in it, in order.
    func forEachComment(of text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>], _ body: (Range<Int>) -> Void) {
        let n = min(runs.count, textRuns.count)
        var k = 0, shift = 0
        for c in commentRanges {
            while k < n, runs[k].lowerBound < c.lowerBound {
                shift += textRuns[k].count - runs[k].count
                k += 1
            }
            var j = k, endShift = shift
            while j < n, runs[j].lowerBound < c.upperBound {
                endShift += textRuns[j].count - runs[j].count
                j += 1
            }
            let comment = (c.lowerBound + shift)..<(c.upperBound + endShift)
            if comment.upperBound <= text.count { body(comment) }
        }
    }

    /// See ``tagValues``: nil when a run in a comment is not inside a plain value.
    private static func tagValues(commentRanges: [Range<Int>], runs: [Range<Int>], text: UnsafeBufferPointer<UInt8>)
        -> [(key: String, value: Range<Int>)]? {
        var all: [(key: String, value: Range<Int>)] = []
        for c in commentRanges {
            guard c.upperBound <= text.count,
                  let pairs = sqlcommenterValueRanges(comment: UnsafeBufferPointer(rebasing: text[c])) else { return nil }
            let values = pairs.map { (key: $0.key, value: ($0.value.lowerBound + c.lowerBound)..<($0.value.upperBound + c.lowerBound)) }
            for run in runs where c.contains(run.lowerBound) {
                guard values.contains(where: { $0.value.lowerBound <= run.lowerBound && run.upperBound <= $0.value.upperBound }) else { return nil }
            }
            all += values
        }
        return all
    }

    /// The sqlcommenter tags of a text of the key whose digit runs are `textRuns`: its comments
    /// are the template's, moved by the runs before them and as long as the runs inside them make them.
    func commentTags(of text: UnsafeBufferPointer<UInt8>, runs textRuns: [Range<Int>]) -> CommentTags {
        var tags = CommentTags()
        let n = min(runs.count, textRuns.count)
        if let tagValues {
            // In order, as the runs are: a place moves by how much the runs that end at or before it grew.
            var k = 0, shift = 0
            func moved(_ place: Int) -> Int {
                while k < n, runs[k].upperBound <= place {
                    shift += textRuns[k].count - runs[k].count
                    k += 1
                }
                return place + shift
            }
            for (key, value) in tagValues {
                let start = moved(value.lowerBound), end = moved(value.upperBound)
                guard start <= end, end <= text.count else { return CommentTags() }
                tags[key] = String(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self)
            }
            return tags
        }
        // Comments and runs are both in order: an end moves by how much the runs that begin
        // before it grew here (as ``TokenPlaces`` moves them), found in one pass.
        forEachComment(of: text, runs: textRuns) { comment in
            addSQLCommenterTags(comment: UnsafeBufferPointer(rebasing: text[comment]), to: &tags)
        }
        return tags
    }

    /// Whether `text`, masked to this template's key as `masked`, has the template's digits in
    /// every fixed run and integers the scanner still reads as integers.
    func accepts(_ runs: [Range<Int>], text: UnsafeBufferPointer<UInt8>) -> Bool {
        for run in integers where runs[run].count > MaskedText.integerDigits { return false }
        for (run, digits) in fixed {
            let r = runs[run]
            guard r.count == digits.count, r.upperBound <= text.count else { return false }
            for j in 0..<digits.count where text[r.lowerBound + j] != digits[j] { return false }
        }
        return true
    }

    /// The digit runs of `text` if it masks to this template's key, else nil: the pieces between
    /// runs (as long as between the template's own runs) are compared whole, and each run is the
    /// longest stretch of digits where the key has one (the key holds no digit, so a piece never
    /// begins or ends inside a run).
    /// The runs go into `found` (emptied first, its storage kept: a session passes the same list
    /// statement after statement); on false its contents mean nothing.
    func match(_ text: UnsafeBufferPointer<UInt8>, into found: inout [Range<Int>]) -> Bool {
        guard let textStart = text.baseAddress else { return false }
        found.removeAllKeepingStorage()
        found.reserveCapacity(runs.count)
        return maskedBytes.withUnsafeBufferPointer { key -> Bool in
            guard let keyStart = key.baseAddress else { return false }
            var i = 0, j = 0, templateEnd = 0
            for k in 0...runs.count {
                let length = k < runs.count ? runs[k].lowerBound - templateEnd : key.count - j
                guard i + length <= text.count, memcmp(textStart + i, keyStart + j, length) == 0 else { return false }
                i += length
                j += length
                guard k < runs.count else { break }
                templateEnd = runs[k].upperBound
                let start = i
                while i < text.count, MaskedText.isDigit(text[i]) { i += 1 }
                guard i > start else { return false }
                found.append(start..<i)
                j += 1
            }
            return i == text.count
        }
    }
}

/// A read a session runs as a statement it prepared on its server connection, for the texts of
/// one masked key on one path: the key's text (as it is, or rewritten onto a route set) with a
/// parameter `$n`, declared `int4`, in place of each integer constant the key lets vary
/// (``StatementAnalysis/parameterPlaces``). PostgreSQL then plans the read once per connection
/// rather than once per text: a text is `EXECUTE name(…)` with its digits.
public struct PreparedRead: Sendable, Equatable {
    /// Unique in the process, whichever loop's cache made it: a session keeps its prepared names by it.
    public let id: Int
    /// The statement to prepare.
    let text: [UInt8]
    /// The key's run that each parameter takes its digits from, in parameter order.
    let parameterRuns: [Int]

    private static let serial = Atomic<Int>(0)

    init(text: [UInt8], parameterRuns: [Int]) {
        id = Self.serial.add(1, ordering: .relaxed).newValue
        self.text = text
        self.parameterRuns = parameterRuns
    }

    /// `PREPARE name(int4, …) AS text` and a `;` on a line of its own, so that a line comment at
    /// the text's end does not take in what follows.
    public func prepareStatement(name: String) -> [UInt8] {
        var out = Array("PREPARE \(name)".utf8)
        if !parameterRuns.isEmpty {
            out += Array("(\(Array(repeating: "int4", count: parameterRuns.count).joined(separator: ",")))".utf8)
        }
        out += Array(" AS ".utf8)
        out += text
        out += Array("\n;".utf8)
        return out
    }

    /// One form is one id.
    public static func == (a: PreparedRead, b: PreparedRead) -> Bool { a.id == b.id }
}

/// A text found to be of the last masked template's key (``QueryInfoCache/matchLast(_:runs:)``).
public struct MaskedMatch: @unchecked Sendable {
    fileprivate let template: MaskedTemplate
    /// Whether the key's texts may run as a ``PreparedRead``.
    public var isPreparable: Bool { template.parameterRuns != nil }
    /// The analysis every text of the key shares.
    public var statements: [StatementAnalysis] { template.shape.statements }
    /// Whether the two are texts of one key (a match holds its template: no other takes its place).
    public func isOfKey(of other: MaskedMatch) -> Bool { template === other.template }
}

/// A shared cache, safe from any loop thread. Applications in the simple protocol inline
/// their parameters, so most texts are new; the scanner's tokens (a fraction of a parse)
/// find the text's shape, and the shape's analysis and rewrite plans are reused. A text that
/// differs from one scanned before only in the digits of its constants and comments (see
/// ``MaskedText``) is not scanned at all. Exact texts seen before (prepared statements,
/// repeated queries) cost one lookup.
public final class QueryInfoCache: Sendable {
    private struct State: ~Copyable {
        var exact: LRUStorage<String, QueryInfo>
        var shapes: LRUStorage<ShapeKey, ShapeTemplate>
        var masked: LRUStorage<ShapeKey, MaskedTemplate>
        /// The masked template found last. A loop's sessions send the same few shapes statement
        /// after statement; a text that matches this one is neither masked nor looked up.
        var lastMasked: MaskedTemplate?
        var maskedHits = 0
        var formRewrites = 0
    }
    private let state: Mutex<State>
    /// Texts longer than this are analysed every time rather than kept.
    public let maximumTextBytes: Int

    public init(capacity: Int = 10_000, maximumTextBytes: Int = 64 * 1024) {
        state = Mutex(State(exact: LRUStorage(capacity: capacity), shapes: LRUStorage(capacity: capacity),
                            masked: LRUStorage(capacity: capacity)))
        self.maximumTextBytes = maximumTextBytes
    }

    public func info(for sql: String) -> QueryInfo {
        var runs: [Range<Int>] = []
        return info(for: sql, runs: &runs)
    }

    /// ``info(for:)``, with `runs` as the list a text matched against the last masked template
    /// keeps its digit runs in: a caller that passes the same list each time, and has let go of
    /// the info it got last, reuses its storage.
    public func info(for sql: String, runs scratch: inout [Range<Int>]) -> QueryInfo {
        guard sql.utf8.count <= maximumTextBytes else {
            return QueryInfo(statements: SQLAnalyzer.analyze(sql), commentTags: sqlcommenterTags(sql))
        }
        var text = sql
        // A text masked like one seen before needs no scan: its tokens are the first text's, moved.
        // Looked for first: texts with constants inlined are mostly new, and miss the exact cache.
        if let match = text.withUTF8({ matchLast($0, runs: &scratch) }) {
            return info(match, sql: sql, runs: scratch)
        }
        let masked = text.withUTF8 { MaskedText($0) }
        if let masked, let template = text.withUTF8({ bytes in
            state.withLock { s -> MaskedTemplate? in
                guard let t = s.masked.value(forKey: masked.key), t.accepts(masked.runs, text: bytes) else { return nil }
                s.maskedHits += 1
                s.lastMasked = t
                return t
            }
        }) {
            return info(MaskedMatch(template: template), sql: sql, runs: masked.runs)
        }
        if let hit = state.withLock({ $0.exact.value(forKey: sql) }) { return hit }
        guard let tokens = try? SQLAnalyzer.tokens(in: sql) else {
            return QueryInfo(statements: SQLAnalyzer.analyze(sql), commentTags: sqlcommenterTags(sql))
        }
        // The key stays bytes, hashed once: this runs for every new text.
        var builder = ShapeKey.Builder(textBytes: sql.utf8.count, tokens: tokens.count)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(tokens.count)
        var commentRanges: [Range<Int>] = []
        var tags = CommentTags()
        text.withUTF8 { bytes in
            for t in tokens {
                guard t.byteRange.upperBound <= bytes.count else { continue }
                let spelling = UnsafeBufferPointer(rebasing: bytes[t.byteRange])
                if t.isComment {
                    addSQLCommenterTags(comment: spelling, to: &tags)
                    commentRanges.append(t.byteRange)
                    continue
                }
                ranges.append(t.byteRange)
                builder.append(kind: t.kind, spelling: spelling)
            }
        }
        let key = builder.key
        /// This text as the template of its masked key, for shape `shape`.
        func maskedTemplate(_ shape: ShapeTemplate) -> MaskedTemplate? {
            guard let masked else { return nil }
            return text.withUTF8 {
                MaskedTemplate(shape: shape, masked: masked, tokens: tokens, text: $0, tokenRanges: ranges, commentRanges: commentRanges)
            }
        }
        if let template = state.withLock({ $0.shapes.value(forKey: key) }) {
            if let masked, let entry = maskedTemplate(template) {
                state.withLock { s in
                    _ = s.masked.insert(entry, forKey: masked.key)
                    s.lastMasked = entry
                }
            }
            return QueryInfo(statements: template.statements, commentTags: tags, shape: ShapeBinding(template: template, ownRanges: ranges))
        }
        let statements = SQLAnalyzer.analyze(sql)
        // SET and set_config carry their values in constants, and a text that does not parse has
        // no tree: those are analysed text by text.
        let reusable = !statements.contains { $0.statementType == "VariableSetStmt" || $0.mayCallSetConfig || $0.error != nil }
        let template = reusable ? ShapeTemplate(sql: sql, statements: statements, tokenRanges: ranges) : nil
        let info = QueryInfo(statements: statements, commentTags: tags,
                             shape: template.map { ShapeBinding(template: $0, ownRanges: ranges) })
        let maskedEntry = template.flatMap(maskedTemplate)
        state.withLock { s in
            if let template { _ = s.shapes.insert(template, forKey: key) }
            if let masked, let maskedEntry {
                _ = s.masked.insert(maskedEntry, forKey: masked.key)
                s.lastMasked = maskedEntry
            }
            _ = s.exact.insert(info, forKey: sql)
        }
        return info
    }

    /// The last masked template, if `text` (a text's bytes) is a text of its key and not one kept
    /// whole: what ``info(for:runs:)`` looks for first, found without the text as a `String`.
    /// `runs` gets the text's digit runs, as there.
    public func matchLast(_ text: UnsafeBufferPointer<UInt8>, runs: inout [Range<Int>]) -> MaskedMatch? {
        guard text.count <= maximumTextBytes else { return nil }
        return state.withLock { s -> MaskedMatch? in
            guard let t = s.lastMasked, t.match(text, into: &runs), t.accepts(runs, text: text) else { return nil }
            s.maskedHits += 1
            return MaskedMatch(template: t)
        }
    }

    /// ``info(for:runs:)`` of `sql`, a text that matched, its runs `runs`.
    public func info(_ match: MaskedMatch, sql: String, runs: [Range<Int>]) -> QueryInfo {
        var text = sql
        return QueryInfo(statements: match.template.shape.statements, commentTags: text.withUTF8 { commentTags(match, text: $0, runs: runs) },
                         shape: ShapeBinding(masked: match.template, runs: runs))
    }

    /// The sqlcommenter tags of a text that matched (``matchLast(_:runs:)``), its runs `runs`.
    public func commentTags(_ match: MaskedMatch, text: UnsafeBufferPointer<UInt8>, runs: [Range<Int>]) -> CommentTags {
        match.template.commentRanges.isEmpty ? CommentTags() : match.template.commentTags(of: text, runs: runs)
    }

    /// The rewrite of a text that matched onto `routes`, as ``rewrite(_:info:routes:)`` makes it,
    /// laid out as ``RewrittenForm/applyAsBody(to:runs:front:)`` does: nil unless the key has its
    /// rewritten form for `routes` already (the first text of the key rewritten onto them makes it).
    public func rewrittenBody(_ match: MaskedMatch, text: UnsafeBufferPointer<UInt8>, runs: [Range<Int>], routes: [ReadRoute],
                              front: Int) -> [UInt8]? {
        guard let form = state.withLock({ s -> RewrittenForm? in
            guard case let .some(.some(form)) = match.template.forms.value(for: routes) else { return nil }
            s.formRewrites += 1
            return form
        }) else { return nil }
        return form.applyAsBody(to: text, runs: runs, front: front)
    }

    /// The prepared form of a key's texts as they are (`routes` nil) or as rewritten onto
    /// `routes`: nil when the key is not ``MaskedMatch/isPreparable``, or has no rewritten form
    /// for `routes` yet.
    public func preparedRead(_ match: MaskedMatch, routes: [ReadRoute]?) -> PreparedRead? {
        let t = match.template
        guard let parameterRuns = t.parameterRuns else { return nil }
        // As they are: made with the template, read without the lock.
        guard let routes else { return t.preparedAsIs }
        return state.withLock { _ -> PreparedRead? in
            if let made = t.preparedForms.value(for: routes) { return made }
            guard case let .some(.some(form)) = t.forms.value(for: routes) else { return nil }
            let made = MaskedTemplate.preparedForm(parameterRuns: parameterRuns, bytes: form.bytes, places: form.runs, indices: form.runIndices)
            t.preparedForms.set(made, for: routes)
            return made
        }
    }

    /// A Query's body (with `front` bytes left for its header, as ``rewrittenBody`` lays it out)
    /// that runs `prepared` for `text`, a text of `match`'s key with digit runs `runs`: `head`
    /// (`EXECUTE name`), the text's digits as arguments, and its comments (as sqlcommenter's readers,
    /// logs and pg_stat_activity, expect them); before it, `prepareStatement` when given (see
    /// ``PreparedRead/prepareStatement(name:)``). Made in one allocation: it is every prepared read's.
    public func executeBody(_ match: MaskedMatch, prepared: PreparedRead, head: [UInt8], prepareStatement: [UInt8]?,
                            text: UnsafeBufferPointer<UInt8>, runs: [Range<Int>], front: Int) -> [UInt8]? {
        let template = match.template
        let parameters = prepared.parameterRuns
        var total = front + (prepareStatement?.count ?? 0) + head.count + 1
        for k in parameters {
            guard k < runs.count, runs[k].upperBound <= text.count else { return nil }
            total += runs[k].count + 1
        }
        if !parameters.isEmpty { total += 1 }
        let hasComments = !template.commentRanges.isEmpty
        if hasComments {
            template.forEachComment(of: text, runs: runs) { total += 1 + $0.count + (Self.isLineComment($0, in: text) ? 1 : 0) }
        }
        return [UInt8](unsafeUninitializedCapacity: total) { out, count in
            let base = out.baseAddress!
            var at = front
            func put(_ part: UnsafeBufferPointer<UInt8>) {
                guard let from = part.baseAddress, !part.isEmpty else { return }
                (base + at).update(from: from, count: part.count)
                at += part.count
            }
            func put(_ byte: UInt8) {
                base[at] = byte
                at += 1
            }
            (base).initialize(repeating: 0, count: front)
            prepareStatement?.withUnsafeBufferPointer { put($0) }
            head.withUnsafeBufferPointer { put($0) }
            for (i, k) in parameters.enumerated() {
                put(i == 0 ? UInt8(ascii: "(") : UInt8(ascii: ","))
                put(UnsafeBufferPointer(rebasing: text[runs[k]]))
            }
            if !parameters.isEmpty { put(UInt8(ascii: ")")) }
            if hasComments {
                template.forEachComment(of: text, runs: runs) { comment in
                    put(UInt8(ascii: " "))
                    put(UnsafeBufferPointer(rebasing: text[comment]))
                    // A line comment must not take in what follows.
                    if Self.isLineComment(comment, in: text) { put(UInt8(ascii: "\n")) }
                }
            }
            put(0)
            count = at
        }
    }

    private static func isLineComment(_ comment: Range<Int>, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        comment.count >= 2 && text[comment.lowerBound] == UInt8(ascii: "-")
    }

    /// The rewrite of `sql` onto `routes`, planned once per shape (or text) and route set.
    public func rewrite(_ sql: String, info: QueryInfo, routes: [ReadRoute]) -> RewriteOutcome {
        if let binding = info.shape, let plan = tokenPlan(binding.template, routes: routes) {
            switch plan {
            case .untouched: return .untouched
            case let .keptOnOldPath(reason): return .keptOnOldPath(reason: reason)
            case let .edits(edits):
                if let masked = binding.masked, let form = rewrittenForm(masked, routes: routes, edits: edits, sql: sql, binding: binding) {
                    var text = sql
                    if let rewritten = text.withUTF8({ form.apply(to: $0, runs: binding.runs) }) { return .rewritten(rewritten) }
                }
                if let text = TokenEdit.apply(edits, to: sql, tokenRanges: binding.tokenRanges) { return .rewritten(text) }
            }
        }
        if let cached = info.rewrites[routes] { return cached }
        let outcome = ReadRewriter.rewrite(sql: sql, statements: Self.ownStatements(sql, info), routes: routes)
        if sql.utf8.count <= maximumTextBytes {
            state.withLock { s in
                if var current = s.exact.value(forKey: sql) {
                    current.rewrites[routes] = outcome
                    _ = s.exact.insert(current, forKey: sql)
                }
            }
        }
        return outcome
    }

    /// The masked key's rewritten form for `routes`, made from `sql` (a text of the key, bound as
    /// `binding`) the first time; nil when the edits have no form.
    private func rewrittenForm(_ masked: MaskedTemplate, routes: [ReadRoute], edits: [TokenEdit], sql: String,
                               binding: ShapeBinding) -> RewrittenForm? {
        if let found = state.withLock({ s -> RewrittenForm?? in
            let found = masked.forms.value(for: routes)
            if case .some(.some) = found { s.formRewrites += 1 }
            return found
        }) { return found }
        let form = TokenEdit.byteEdits(edits, tokenRanges: binding.tokenRanges).flatMap { RewrittenForm(text: sql, runs: binding.runs, edits: $0) }
        state.withLock { _ in masked.forms.set(form, for: routes) }
        return form
    }

    /// The shape's plan for `routes`, made on the shape's first text; nil if its edits do not
    /// fall on token boundaries.
    private func tokenPlan(_ template: ShapeTemplate, routes: [ReadRoute]) -> TokenPlan? {
        if let plan = state.withLock({ _ in template.plans.value(for: routes) }) { return plan }
        let plan: TokenPlan
        switch ReadRewriter.plan(sql: template.sql, statements: template.statements, routes: routes) {
        case .untouched: plan = .untouched
        case let .keptOnOldPath(reason): plan = .keptOnOldPath(reason: reason)
        case let .edits(edits, _):
            guard let tokenEdits = TokenEdit.from(edits, tokenRanges: template.tokenRanges) else { return nil }
            plan = .edits(tokenEdits)
        }
        state.withLock { _ in template.plans.set(plan, for: routes) }
        return plan
    }

    /// The mirrored form of the writes in `sql` (see ``WriteMirror``), planned once per shape,
    /// target set and protocol.
    public func mirror(_ sql: String, info: QueryInfo, targets: [MirrorTarget], wire: WriteMirror.Wire, marker: String) -> WritePlan {
        guard let binding = info.shape else {
            return WriteMirror.plan(sql: sql, statements: info.statements, targets: targets, wire: wire, marker: marker).plan
        }
        let key = WritePlanKey(targets: targets, protocolName: wire.rawValue)
        let template = binding.template
        var plan = state.withLock { _ in template.writePlans[key] }
        if plan == nil {
            let made: WriteTokenPlan
            let planned = WriteMirror.plan(sql: template.sql, statements: template.statements, targets: targets, wire: wire, marker: marker)
            switch planned.plan {
            case .untouched: made = .untouched
            case let .notMirrored(migration, reason): made = .notMirrored(migration: migration, reason: reason)
            case let .mirrored(_, migrations):
                guard let edits = TokenEdit.from(planned.edits, tokenRanges: template.tokenRanges) else {
                    return WriteMirror.plan(sql: sql, statements: Self.ownStatements(sql, info), targets: targets, wire: wire, marker: marker).plan
                }
                made = .edits(edits, migrations: migrations)
            }
            state.withLock { _ in template.writePlans[key] = made }
            plan = made
        }
        switch plan! {
        case .untouched: return .untouched
        case let .notMirrored(migration, reason): return .notMirrored(migration: migration, reason: reason)
        case let .edits(edits, migrations):
            guard let text = TokenEdit.apply(edits, to: sql, tokenRanges: binding.tokenRanges) else {
                return WriteMirror.plan(sql: sql, statements: Self.ownStatements(sql, info), targets: targets, wire: wire, marker: marker).plan
            }
            return .mirrored(text, migrations: migrations)
        }
    }

    /// The analysis of `sql` itself. A text found through its shape carries the analysis of the
    /// shape's first text, whose byte ranges are that text's: planning on this text's bytes
    /// (when a plan does not fall on token boundaries) needs this text's own.
    static func ownStatements(_ sql: String, _ info: QueryInfo) -> [StatementAnalysis] {
        guard let binding = info.shape, binding.template.sql != sql else { return info.statements }
        return SQLAnalyzer.analyze(sql)
    }

    static func isConstant(_ kind: SQLToken.Kind) -> Bool {
        kind == .integerConstant || kind == .floatConstant || kind == .stringConstant || kind == .unicodeStringConstant
            || kind == .bitStringConstant || kind == .hexStringConstant
    }

    public var count: Int { state.withLock { $0.exact.count } }
    public var shapeCount: Int { state.withLock { $0.shapes.count } }
    /// Texts whose tokens came from a masked text seen before, without a scan.
    public var maskedHits: Int { state.withLock { $0.maskedHits } }
    /// Rewrites made by filling a masked key's rewritten form with a text's digits (after the
    /// form's first text).
    public var formRewrites: Int { state.withLock { $0.formRewrites } }
}
