// The system C libraries link and work: libpg_query (used by routing) and libpq.
import CPgQuery
import Testing

@Suite("System libraries")
struct SystemLibraryTests {
    @Test("libpg_query parses SQL into PostgreSQL's own parse tree")
    func pgQueryParses() {
        let result = pg_query_parse("SELECT a FROM public.users WHERE id = $1")
        defer { pg_query_free_parse_result(result) }
        #expect(result.error == nil)
        let tree = result.parse_tree.map { String(cString: $0) } ?? ""
        #expect(tree.contains("\"relname\":\"users\""))
        let bad = pg_query_parse("SELEC 1")
        defer { pg_query_free_parse_result(bad) }
        #expect(bad.error != nil)
    }
}
