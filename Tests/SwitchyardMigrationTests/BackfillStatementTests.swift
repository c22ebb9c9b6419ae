// The batch statement: key order, checkpoint predicate, forward and extra expressions, quoting and the checkpoint CTE.

import SwitchyardConfig
import SwitchyardMigration
import Testing

@Suite("Backfill batch statement")
struct BackfillStatementTests {
    @Test("the first batch of a composite key: no predicate, forward and extra expressions over the old row")
    func firstBatch() {
        let statement = BackfillStatement(Fixtures.orders, progressTable: nil).batch(after: nil, limit: 500)
        #expect(statement.text == """
            WITH batch AS (
                SELECT region AS sy_k1, id AS sy_k2, (region) AS sy_f1, (id) AS sy_f2, ((amount * 100)::bigint) AS sy_f3, ("Note") AS sy_f4, ('legacy') AS sy_x1
                FROM public.orders
                ORDER BY 1, 2
                LIMIT $1::integer
                FOR SHARE
            ), inserted AS (
                INSERT INTO public.orders_v2 (region, order_id, amount_cents, note, source)
                SELECT sy_f1, sy_f2, sy_f3, sy_f4, sy_x1 FROM batch
                ON CONFLICT (region, order_id) DO NOTHING
                RETURNING 1
            ), counts AS (
                SELECT (SELECT count(*) FROM batch) AS rows_read, (SELECT count(*) FROM inserted) AS rows_inserted
            ), last AS (
                SELECT ARRAY[sy_k1::text, sy_k2::text] AS key
                FROM batch ORDER BY sy_k1 DESC, sy_k2 DESC LIMIT 1
            )
            SELECT counts.rows_read, counts.rows_inserted, last.key[1], last.key[2]
            FROM counts LEFT JOIN last ON true
            """)
        #expect(statement.parameters == ["500"])
    }

    @Test("a later batch compares the key as one row value with the checkpoint, cast to the old key's types")
    func afterCheckpoint() {
        let statement = BackfillStatement(Fixtures.orders, progressTable: nil).batch(after: ["eu", "17"], limit: 1000)
        #expect(statement.text.contains("    WHERE (region, id) > ($1::text, $2::integer)\n    ORDER BY 1, 2\n    LIMIT $3::integer\n"))
        #expect(statement.parameters == ["eu", "17", "1000"])
    }

    @Test("with the checkpoint table in the same database, the batch updates its checkpoint row in the same statement")
    func checkpointInTransaction() {
        let table = RelationName(schema: "switchyard", name: "backfill_progress")
        let statement = BackfillStatement(Fixtures.orders, progressTable: table).batch(after: ["eu", "17"], limit: 1000)
        #expect(statement.text.contains("""
            ), checkpoint AS (
                UPDATE switchyard.backfill_progress SET
                    last_key = coalesce((SELECT key FROM last), last_key),
                    rows_read = rows_read + (SELECT rows_read FROM counts),
                    rows_inserted = rows_inserted + (SELECT rows_inserted FROM counts),
                    batches = batches + 1,
                    updated_at = clock_timestamp(),
                    finished_at = CASE WHEN (SELECT rows_read FROM counts) < $3::integer THEN clock_timestamp() END
                WHERE migration = $4::text
                RETURNING 1
            )
            SELECT counts.rows_read, counts.rows_inserted, last.key[1], last.key[2], (SELECT count(*) FROM checkpoint)
            """))
        #expect(statement.parameters == ["eu", "17", "1000", "orders_v2"])
    }

    @Test("odd identifiers are quoted everywhere: relations, key, conflict target and insert columns")
    func quoting() {
        let statement = BackfillStatement(Fixtures.awkward, progressTable: RelationName(schema: "Ctl", name: "backfill_progress"))
            .batch(after: ["bob"], limit: 10)
        let text = statement.text
        #expect(text.contains("SELECT \"user\" AS sy_k1, (\"user\") AS sy_f1, (\"select\") AS sy_f2\n"))
        #expect(text.contains("FROM \"My Schema\".\"Order Lines\"\n"))
        #expect(text.contains("WHERE \"user\" > $1::character varying(20)\n"))
        #expect(text.contains("INSERT INTO \"My Schema\".\"order\"\"lines\" (\"User ID\", choice)\n"))
        #expect(text.contains("ON CONFLICT (\"User ID\") DO NOTHING\n"))
        #expect(text.contains("UPDATE \"Ctl\".backfill_progress SET"))
        #expect(text.contains("SELECT counts.rows_read, counts.rows_inserted, last.key[1], (SELECT count(*) FROM checkpoint)"))
        #expect(statement.parameters == ["bob", "10", "lines_v2"])
    }
}

@Suite("Key ranges")
struct KeyRangeTests {
    @Test("descriptions name the bounds as row values")
    func descriptions() {
        #expect(KeyRange.all.description == "from the first key to the last key")
        #expect(KeyRange(lower: ["eu", "5"], upper: ["us", "9"]).description == "after (eu, 5) up to (us, 9)")
        #expect(KeyRange(lower: nil, upper: ["12"]).description == "from the first key up to 12")
        #expect(KeyRange(lower: ["12"], upper: nil).description == "after 12 to the last key")
    }

    @Test("each bound becomes one row comparison; the verify statements show both", arguments: [
        (KeyRange.all, "SELECT count(*) AS row_count", [String?]()),
        (KeyRange(lower: ["eu", "5"], upper: nil), "FROM public.orders WHERE (region, id) > ($1::text, $2::integer))",
         ["eu", "5", "eu", "5"]),
        (KeyRange(lower: nil, upper: ["us", "9"]), "FROM public.orders WHERE (region, id) <= ($1::text, $2::integer))",
         ["us", "9", "us", "9"]),
        (KeyRange(lower: ["eu", "5"], upper: ["us", "9"]),
         "FROM public.orders WHERE (region, id) > ($1::text, $2::integer) AND (region, id) <= ($3::text, $4::integer))",
         ["eu", "5", "us", "9", "eu", "5", "us", "9"]),
    ])
    func predicates(range: KeyRange, expectedFragment: String, parameters: [String?]) {
        let statement = VerifyStatements(Fixtures.orders).summary(range)
        #expect(statement.text.contains(expectedFragment), "\(statement.text)")
        #expect(statement.parameters == parameters)
        if range == .all { #expect(!statement.text.contains("WHERE")) }
    }
}
