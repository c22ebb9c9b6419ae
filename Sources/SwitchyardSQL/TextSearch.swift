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
