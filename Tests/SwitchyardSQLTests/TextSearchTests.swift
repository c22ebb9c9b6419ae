// Byte-wise substring search over statement texts.
import SwitchyardSQL
import Testing

@Suite("Text search")
struct TextSearchTests {
    @Test("finds a needle anywhere, after false starts, and not past the end", arguments: [
        ("select 1 /*switchyard_tag:m:UPDATE*/", "/*switchyard_tag:m:UPDATE*/", true),
        ("switchyard_mirrored_q", "switchyard_mirrored_", true),
        ("aaab", "aab", true),
        ("a switchyard_mirrore", "switchyard_mirrored_", false),
        ("short", "longer than it", false),
        ("", "x", false),
        ("anything", "", true),
        ("sélect 'ü' AS switchyard_mirrored_r", "switchyard_mirrored_r", true),
        ("sélect 'ü'", "'ü'", true),
        ("select 'u'", "'ü'", false),
    ])
    func search(text: String, needle: String, found: Bool) {
        #expect(text.containsBytes(needle) == found)
        // The same answer as the standard library's search over UTF-8 (an empty needle is everywhere).
        let bytes = Array(text.utf8), pattern = Array(needle.utf8)
        let expected = pattern.isEmpty || (0..<max(0, bytes.count - pattern.count + 1)).contains { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) }
        #expect(expected == found)
    }
}
