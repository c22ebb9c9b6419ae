// The verify statements: chunk bounds, checksums through the forward mapping, split keys and the row diff.

import SwitchyardConfig
import SwitchyardMigration
import Testing

@Suite("Verify statements")
struct VerifyStatementsTests {
    let statements = VerifyStatements(Fixtures.orders)

    @Test("a chunk bound reads the keys at offsets size - 1 and size, in key order")
    func chunkBound() {
        let first = statements.chunkBound(after: nil, size: 1000)
        #expect(first.text == "SELECT region, id FROM public.orders ORDER BY 1, 2 OFFSET $1::bigint LIMIT 2")
        #expect(first.parameters == ["999"])
        let next = statements.chunkBound(after: ["eu", "17"], size: 1)
        #expect(next.text == "SELECT region, id FROM public.orders WHERE (region, id) > ($1::text, $2::integer) "
            + "ORDER BY 1, 2 OFFSET $3::bigint LIMIT 2")
        #expect(next.parameters == ["eu", "17", "0"])
    }

    @Test("the checksum maps old rows through the forward expressions, cast to the new types; the new side reads the mapped columns")
    func summary() {
        let statement = statements.summary(KeyRange(lower: ["eu", "17"], upper: ["us", "40"]))
        #expect(statement.text == """
            SELECT sy_old.row_count, sy_old.checksum, sy_new.row_count, sy_new.checksum
            FROM (SELECT count(*) AS row_count, md5(string_agg(ROW((region)::text, (id)::bigint, ((amount * 100)::bigint)::bigint, ("Note")::text)::text, ',' ORDER BY region, id)) AS checksum
                  FROM public.orders WHERE (region, id) > ($1::text, $2::integer) AND (region, id) <= ($3::text, $4::integer)) AS sy_old,
                 (SELECT count(*) AS row_count, md5(string_agg(ROW(region, order_id, amount_cents, note)::text, ',' ORDER BY region, order_id)) AS checksum
                  FROM public.orders_v2 WHERE (region, order_id) > ($5::text, $6::bigint) AND (region, order_id) <= ($7::text, $8::bigint)) AS sy_new
            """)
        #expect(statement.parameters == ["eu", "17", "us", "40", "eu", "17", "us", "40"])
        // Extra new columns are not compared.
        #expect(!statement.text.contains("source"))
    }

    @Test("a split key is read from the chosen side with its own key columns")
    func splitKey() {
        let range = KeyRange(lower: nil, upper: ["us", "40"])
        let old = statements.key(at: 31, of: .old, in: range)
        #expect(old.text == "SELECT region, id FROM public.orders WHERE (region, id) <= ($1::text, $2::integer) "
            + "ORDER BY 1, 2 OFFSET $3::bigint LIMIT 1")
        #expect(old.parameters == ["us", "40", "31"])
        let new = statements.key(at: 0, of: .new, in: range)
        #expect(new.text == "SELECT region, order_id FROM public.orders_v2 WHERE (region, order_id) <= ($1::text, $2::bigint) "
            + "ORDER BY 1, 2 OFFSET $3::bigint LIMIT 1")
    }

    @Test("the row diff joins on the key, the new key cast to the old key's types, and labels each difference")
    func differences() {
        let statement = statements.differences(KeyRange(lower: ["eu", "17"], upper: nil), limit: 7)
        #expect(statement.text == """
            SELECT sy_k1, sy_k2,
                   CASE WHEN sy_new.sy_row IS NULL THEN 'missing_in_new'
                        WHEN sy_old.sy_row IS NULL THEN 'extra_in_new'
                        ELSE 'different' END,
                   count(*) OVER ()
            FROM (SELECT region AS sy_k1, id AS sy_k2, ROW((region)::text, (id)::bigint, ((amount * 100)::bigint)::bigint, ("Note")::text)::text AS sy_row FROM public.orders WHERE (region, id) > ($1::text, $2::integer)) AS sy_old
            FULL JOIN (SELECT (region)::text AS sy_k1, (order_id)::integer AS sy_k2, ROW(region, order_id, amount_cents, note)::text AS sy_row FROM public.orders_v2 WHERE (region, order_id) > ($3::text, $4::bigint)) AS sy_new
                USING (sy_k1, sy_k2)
            WHERE sy_old.sy_row IS DISTINCT FROM sy_new.sy_row
            ORDER BY 1, 2
            LIMIT $5::bigint
            """)
        #expect(statement.parameters == ["eu", "17", "eu", "17", "7"])
    }

    @Test("odd identifiers and type names are quoted as the catalog prints them")
    func quoting() {
        let statement = VerifyStatements(Fixtures.awkward).summary(KeyRange(lower: ["a"], upper: nil))
        #expect(statement.text.contains("string_agg(ROW((\"user\")::character varying(20), (\"select\")::\"MyEnum\")::text, ',' ORDER BY \"user\")"))
        #expect(statement.text.contains("FROM \"My Schema\".\"Order Lines\" WHERE \"user\" > $1::character varying(20)"))
        #expect(statement.text.contains("string_agg(ROW(\"User ID\", choice)::text, ',' ORDER BY \"User ID\")"))
        #expect(statement.text.contains("FROM \"My Schema\".\"order\"\"lines\" WHERE \"User ID\" > $2::character varying(20)"))
    }
}
