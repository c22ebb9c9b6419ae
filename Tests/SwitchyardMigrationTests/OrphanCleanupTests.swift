// The orphan cleanup: its statements over a copied key range, and which ranges are ready to be cleaned.

import SwitchyardConfig
import SwitchyardMigration
import Testing

@Suite("Orphan cleanup statements")
struct OrphanCleanupStatementTests {
    @Test("a composite key: the new key ranged with the new types, each new key value cast to the old key's type")
    func compositeKey() {
        let plan = BackfillStatement(Fixtures.orders, progressTable: nil).orphanCleanup(KeyRange(lower: ["eu", "17"], upper: ["us", "40"]))
        #expect(plan.delete.text == """
            WITH removed AS (
                DELETE FROM public.orders_v2 AS sy_n
                WHERE (sy_n.region, sy_n.order_id) > ($1::text, $2::bigint) AND (sy_n.region, sy_n.order_id) <= ($3::text, $4::bigint)
                  AND NOT EXISTS (SELECT 1 FROM public.orders AS sy_o WHERE sy_o.region = (sy_n.region)::text AND sy_o.id = (sy_n.order_id)::integer)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM removed)
            """)
        #expect(plan.delete.parameters == ["eu", "17", "us", "40"])
        #expect(plan.range == KeyRange(lower: ["eu", "17"], upper: ["us", "40"]))
        // The mirror upsert of this mapping updates a conflicting row, so no probe and no table lock.
        #expect(plan.probe == nil)
        #expect(plan.lock == nil)
    }

    @Test("the first batch's range has no lower bound")
    func firstBatch() {
        let plan = BackfillStatement(Fixtures.orders, progressTable: nil).orphanCleanup(KeyRange(lower: nil, upper: ["ap", "600"]))
        #expect(plan.delete.text.contains("""
                WHERE (sy_n.region, sy_n.order_id) <= ($1::text, $2::bigint)
                  AND NOT EXISTS (
            """))
        #expect(!plan.delete.text.contains(" > "))
        #expect(plan.delete.parameters == ["ap", "600"])
    }

    @Test("with the checkpoint table in the same database, the cleanup records how far it got and what it removed")
    func checkpointInTransaction() {
        let table = RelationName(schema: "switchyard", name: "backfill_progress")
        let plan = BackfillStatement(Fixtures.orders, progressTable: table).orphanCleanup(KeyRange(lower: ["eu", "17"], upper: ["us", "40"]))
        #expect(plan.delete.text.hasSuffix("""
                RETURNING 1
            ), checkpoint AS (
                UPDATE switchyard.backfill_progress SET
                    orphans_removed = orphans_removed + (SELECT count(*) FROM removed),
                    cleaned_through = ARRAY[$5::text, $6::text],
                    updated_at = clock_timestamp()
                WHERE migration = $7::text
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM checkpoint)
            """))
        #expect(plan.delete.parameters == ["eu", "17", "us", "40", "us", "40", "orders_v2"])
    }

    @Test("a single-column key with awkward names; every mapped column a key, so a probe decides on the table lock")
    func singleKeyOnlyKeyColumns() {
        let keyOnly = ResolvedMigration(
            MigrationConfig(
                name: "members_v2", old: RelationName(schema: "My Schema", name: "Members"),
                new: RelationName(schema: "My Schema", name: "members\"v2"),
                key: ["user"],
                columns: [ColumnMapping(oldColumn: "user", newColumn: "User ID")],
                extraNewColumns: [ExtraNewColumn(column: "source", expression: "'legacy'")]),
            oldKeyTypes: ["character varying(20)"], newKeyTypes: ["text"], newColumnTypes: ["text"])
        let table = RelationName(schema: "Ctl", name: "backfill_progress")
        let plan = BackfillStatement(keyOnly, progressTable: table).orphanCleanup(KeyRange(lower: ["bob"], upper: ["dan"]))
        #expect(plan.delete.text.hasPrefix("""
            WITH removed AS (
                DELETE FROM "My Schema"."members""v2" AS sy_n
                WHERE sy_n."User ID" > $1::text AND sy_n."User ID" <= $2::text
                  AND NOT EXISTS (SELECT 1 FROM "My Schema"."Members" AS sy_o WHERE sy_o."user" = (sy_n."User ID")::character varying(20))
                RETURNING 1
            ), checkpoint AS (
                UPDATE "Ctl".backfill_progress SET
            """))
        #expect(plan.delete.text.contains("        cleaned_through = ARRAY[$3::text],\n"))
        #expect(plan.delete.parameters == ["bob", "dan", "dan", "members_v2"])
        #expect(plan.probe == SQLStatement("""
            SELECT EXISTS (SELECT 1 FROM "My Schema"."members""v2" AS sy_n WHERE sy_n."User ID" > $1::text AND sy_n."User ID" <= $2::text \
            AND NOT EXISTS (SELECT 1 FROM "My Schema"."Members" AS sy_o WHERE sy_o."user" = (sy_n."User ID")::character varying(20)))
            """, parameters: ["bob", "dan"]))
        #expect(plan.lock == "SET LOCAL lock_timeout = '100ms'; LOCK TABLE \"My Schema\".\"Members\" IN SHARE MODE")
    }
}

@Suite("Orphan cleanup queue")
struct OrphanCleanupQueueTests {
    static let first = KeyRange(lower: nil, upper: ["100"])
    static let second = KeyRange(lower: ["100"], upper: ["200"])
    static let third = KeyRange(lower: ["200"], upper: ["300"])

    @Test("with no transaction open, a range is ready at the first sample after its batch")
    func quietDatabase() {
        var queue = OrphanCleanupQueue()
        #expect(queue.isEmpty)
        #expect(queue.takeReady(at: TransactionHorizon(now: 1_000, oldestStart: nil)) == nil)
        queue.copied(Self.first)
        #expect(queue.waiting == Self.first)
        #expect(queue.takeReady(at: TransactionHorizon(now: 1_010, oldestStart: nil)) == Self.first)
        #expect(queue.isEmpty)
        #expect(queue.waiting == nil)
    }

    @Test("a range waits while a transaction that began before its sample is open, and only that long")
    func waitsForOlderTransactions() {
        var queue = OrphanCleanupQueue()
        queue.copied(Self.first)
        // Sampled at 1,000 with a transaction open since 900: it may have missed the copies.
        #expect(queue.takeReady(at: TransactionHorizon(now: 1_000, oldestStart: 900)) == nil)
        queue.copied(Self.second)
        // Still open at the next sample, which stamps the second range at 2,000.
        #expect(queue.takeReady(at: TransactionHorizon(now: 2_000, oldestStart: 900)) == nil)
        // A transaction that began exactly at the stamp might still have begun before the commit.
        #expect(queue.takeReady(at: TransactionHorizon(now: 2_500, oldestStart: 1_000)) == nil)
        // The oldest open one began after the first stamp but before the second: only the first is ready.
        #expect(queue.takeReady(at: TransactionHorizon(now: 3_000, oldestStart: 1_500)) == Self.first)
        #expect(queue.waiting == Self.second)
        #expect(queue.takeReady(at: TransactionHorizon(now: 4_000, oldestStart: 2_001)) == Self.second)
        #expect(queue.isEmpty)
    }

    @Test("ranges ready together come out as one range, in key order")
    func merged() {
        var queue = OrphanCleanupQueue()
        queue.copied(Self.first)
        queue.copied(Self.second)
        #expect(queue.takeReady(at: TransactionHorizon(now: 1_000, oldestStart: 500)) == nil)
        queue.copied(Self.third)
        #expect(queue.waiting == KeyRange(lower: nil, upper: ["300"]))
        // The third was stamped now, with an older transaction still open.
        #expect(queue.takeReady(at: TransactionHorizon(now: 2_000, oldestStart: 1_500)) == KeyRange(lower: nil, upper: ["200"]))
        #expect(queue.takeReady(at: TransactionHorizon(now: 3_000, oldestStart: nil)) == Self.third)
    }

    @Test("while a prepared transaction is open nothing is ready: when it began cannot be seen")
    func preparedTransactions() {
        var queue = OrphanCleanupQueue()
        queue.copied(Self.first)
        #expect(queue.takeReady(at: TransactionHorizon(now: 1_000, oldestStart: nil, preparedTransactions: 1)) == nil)
        #expect(queue.takeReady(at: TransactionHorizon(now: 2_000, oldestStart: 5_000, preparedTransactions: 2)) == nil)
        #expect(queue.takeReady(at: TransactionHorizon(now: 3_000, oldestStart: 2_500)) == Self.first)
    }

    @Test("a range put back after its cleanup gave way is ready again first, merged with what followed")
    func putBack() {
        var queue = OrphanCleanupQueue()
        queue.copied(Self.first)
        let taken = queue.takeReady(at: TransactionHorizon(now: 1_000, oldestStart: nil))
        #expect(taken == Self.first)
        queue.putBack(Self.first)
        queue.copied(Self.second)
        #expect(queue.waiting == KeyRange(lower: nil, upper: ["200"]))
        // The second was copied after this sample's transactions began; the first is ready regardless.
        #expect(queue.takeReady(at: TransactionHorizon(now: 2_000, oldestStart: 1_900)) == Self.first)
        #expect(queue.takeReady(at: TransactionHorizon(now: 3_000, oldestStart: 2_100)) == Self.second)
    }
}
