// Byte-wise substring search for the texts the proxy looks at on every statement.
import Glibc

extension String {
    /// Whether the UTF-8 bytes of `needle` occur in this string's. Unlike `contains` through
    /// Foundation, which compares as UTF-16 with locale rules, this compares bytes (`memchr` for
    /// the first, `memcmp` for the rest): the markers looked for in statement texts are ASCII,
    /// and this runs for every mirrored write.
    public func containsBytes(_ needle: String) -> Bool {
        var haystack = self
        var pattern = needle
        return haystack.withUTF8 { h in
            pattern.withUTF8 { p in
                guard !p.isEmpty else { return true }
                guard h.count >= p.count, let hb = h.baseAddress, let pb = p.baseAddress else { return false }
                let first = Int32(p[0])
                var offset = 0
                let last = h.count - p.count
                while offset <= last {
                    guard let hit = memchr(hb + offset, first, last - offset + 1) else { return false }
                    let at = UnsafeRawPointer(hit) - UnsafeRawPointer(hb)
                    if memcmp(hb + at, pb, p.count) == 0 { return true }
                    offset = at + 1
                }
                return false
            }
        }
    }
}

/// ASCII case-insensitive search of a lower-case word in UTF-8 bytes, as PostgreSQL folds
/// unquoted identifiers and keywords (ASCII letters only). Runs on every statement of a session
/// with flags, so it is inlined into its callers.
public enum FoldedSearch {
    /// ASCII letters folded to lower case; every other byte as it is.
    @inlinable @inline(__always)
    public static func folded(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Where `word` (lower case) first occurs in `text` at or after `start`, ignoring ASCII case.
    @inlinable
    public static func firstIndex(of word: UnsafeBufferPointer<UInt8>, in text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let first = word.first, text.count >= word.count, start <= text.count - word.count,
              let base = text.baseAddress else { return nil }
        // Plain loads, the first byte matched in either case before anything is folded.
        let upper = first &- 0x61 < 26 ? first & ~0x20 : first
        let last = text.count - word.count
        let raw = UnsafeRawPointer(base)
        var i = start
        while i <= last {
            // Eight places passed over at once when neither spelling of the first byte is there.
            if i + 8 <= text.count, !holdsByte(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self), first, upper) {
                i += 8
                continue
            }
            let b = base[i]
            if b == first || b == upper {
                var j = 1
                while j < word.count && folded(base[i + j]) == word[j] { j += 1 }
                if j == word.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// Whether any of the eight bytes of `word` is `a` or `b`: a byte equal to `a` is a zero byte
    /// of `word ^ a…a`, and `(x - 1…1) & ~x & 80…80` is nonzero exactly when `x` has one.
    @inlinable @inline(__always)
    public static func holdsByte(_ word: UInt64, _ a: UInt8, _ b: UInt8) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
        let x = word ^ (ones &* UInt64(a)), y = word ^ (ones &* UInt64(b))
        return ((x &- ones) & ~x | (y &- ones) & ~y) & high != 0
    }

    /// Whether `word`, written in the source in lower case, occurs in `text`, ignoring ASCII case.
    @inlinable
    public static func contains(_ text: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        firstIndex(of: UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount), in: text, from: 0) != nil
    }
}
