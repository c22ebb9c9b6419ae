// Tests of comment extraction via the scanner and of sqlcommenter tag parsing.
import SwitchyardSQL
import Testing

@Suite("Comments and sqlcommenter tags")
struct SQLCommentsTests {
    @Test("comments are returned as written, in order")
    func commentsInOrder() {
        let sql = "/* first */ SELECT 1 -- second\n, 2 /* third */"
        #expect(comments(in: sql) == ["/* first */", "-- second", "/* third */"])
    }

    @Test("comment markers inside literals and identifiers are not comments")
    func quotedMarkers() {
        #expect(comments(in: "SELECT '/* no */', \"-- no\", $$ /* no */ $$").isEmpty)
    }

    @Test("nested C comments are one comment, as in PostgreSQL")
    func nestedComments() {
        #expect(comments(in: "/* outer /* inner */ still outer */ SELECT 1") == ["/* outer /* inner */ still outer */"])
    }

    @Test("text that does not scan has no comments", arguments: ["SELECT 'unterminated /* x */", "/* unterminated"])
    func unscannable(_ sql: String) {
        #expect(comments(in: sql).isEmpty)
    }

    @Test("sqlcommenter tags are parsed and URL-decoded")
    func tags() {
        let sql = "SELECT * FROM t /*cohort='tenant-42',route='%2Fapi%2Fusers%3Fa%3D1',note='it\\'s'*/"
        #expect(sqlcommenterTags(sql) == ["cohort": "tenant-42", "route": "/api/users?a=1", "note": "it's"])
    }

    @Test("whitespace around pairs is allowed")
    func spacing() {
        #expect(sqlcommenterTags("SELECT 1 /* a='1', b = '2' */") == ["a": "1", "b": "2"])
    }

    @Test("ordinary comments, SQL comments and malformed pairs are ignored", arguments: [
        "SELECT 1 /* just a remark */",
        "SELECT 1 -- cohort='tenant-1'",
        "SELECT 1 /*a='1',*/",
        "SELECT 1 /*a=1*/",
        "SELECT 1 /*a='1' b='2'*/",
        "SELECT 1 /*='1'*/",
        "SELECT 1 /*a='unterminated*/",
        "SELECT 1 /**/",
        "SELECT '/*cohort=''x''*/'",
    ])
    func ignored(_ sql: String) {
        #expect(sqlcommenterTags(sql).isEmpty)
    }

    @Test("several tagged comments merge; the later one wins")
    func merging() {
        let sql = "/*a='1',b='2'*/ SELECT 1 /* remark */ /*b='3'*/"
        #expect(sqlcommenterTags(sql) == ["a": "1", "b": "3"])
    }

    @Test("malformed percent escapes are kept as written")
    func badEscapes() {
        #expect(sqlcommenterTags("SELECT 1 /*a='100%'*/") == ["a": "100%"])
    }

    @Test("tags can be read from a text that fails to parse but scans")
    func unparsable() {
        #expect(sqlcommenterTags("SELEC 1 /*cohort='x'*/") == ["cohort": "x"])
    }

    @Test("tags are set, replaced and removed by key, whichever place the key holds")
    func settingAndRemoving() {
        var tags = CommentTags()
        #expect(tags.isEmpty && tags.count == 0 && tags["a"] == nil)
        tags["a"] = "1"
        tags["b"] = "2"
        tags["c"] = "3"
        #expect(tags.count == 3 && tags["a"] == "1" && tags["b"] == "2" && tags["c"] == "3")
        tags["a"] = "10"
        tags["c"] = "30"
        #expect(tags.dictionary == ["a": "10", "b": "2", "c": "30"])
        // Removing the first key keeps the others readable, and a key set again comes back.
        tags["a"] = nil
        #expect(tags.count == 2 && tags["a"] == nil && tags["b"] == "2" && tags["c"] == "30")
        tags["b"] = nil
        #expect(tags.count == 1 && tags["c"] == "30")
        tags["a"] = "4"
        #expect(tags.dictionary == ["a": "4", "c": "30"])
        tags["c"] = nil
        tags["a"] = nil
        #expect(tags.isEmpty && tags.count == 0 && tags["a"] == nil && tags["c"] == nil)
        tags["zz"] = nil
        #expect(tags.isEmpty)
    }
}
