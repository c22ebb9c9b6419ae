// The control schema's backfill checkpoints and verify results: their tables and every query on them.
import Foundation
import SwitchyardConfig
import SwitchyardMigration

/// A backfill's checkpoint as stored: the last key copied, the last key the orphan cleanup has checked
/// up to, and the counts since the backfill began.
struct BackfillCheckpoint: Equatable {
    var lastKey: [String]?
    /// Every copied key up to this one has been through the orphan cleanup; nil when none has. The keys
    /// after it up to `lastKey` are still to check.
    var cleanedThrough: [String]?
    var counts: BackfillCounts
    var startedAt: String
    var finishedAt: String?
}

/// What a verify run found, as recorded for the cutover report.
struct VerifyRunRecord: Equatable {
    var migration: String
    var startedAt: String
    var tally: VerifyTally
}

/// Reads and writes `<schema>.backfill_progress` and `<schema>.verify_runs`, next to the flag tables.
struct MigrationStore {
    let schema: String
    private var q: String { RelationName.quotedIdentifier(schema) }

    /// The checkpoint table, one row per migration.
    var progressTable: RelationName { RelationName(schema: schema, name: "backfill_progress") }
    /// One row per verify run.
    var verifyRunsTable: RelationName { RelationName(schema: schema, name: "verify_runs") }

    init(schema: String) {
        self.schema = schema
    }

    func ensureSchema(_ c: ControlConnection) throws(ControlError) {
        // The same advisory lock as the flag tables' DDL, so concurrent starts never race on CREATE SCHEMA.
        try ControlStore.ensureSchema(c, schema: schema, tables: """
            CREATE TABLE IF NOT EXISTS \(progressTable) (
                migration text PRIMARY KEY,
                last_key text[],
                rows_read bigint NOT NULL DEFAULT 0,
                rows_inserted bigint NOT NULL DEFAULT 0,
                batches bigint NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz
            );
            CREATE TABLE IF NOT EXISTS \(verifyRunsTable) (
                id bigserial PRIMARY KEY,
                migration text NOT NULL,
                started_at timestamptz NOT NULL,
                finished_at timestamptz NOT NULL DEFAULT now(),
                chunks bigint NOT NULL,
                rows_old bigint NOT NULL,
                rows_new bigint NOT NULL,
                differing_chunks bigint NOT NULL,
                differing_keys bigint NOT NULL,
                sample_keys jsonb NOT NULL DEFAULT '[]',
                equal boolean NOT NULL
            );
            CREATE INDEX IF NOT EXISTS verify_runs_migration_idx ON \(verifyRunsTable) (migration, id);
            ALTER TABLE \(progressTable)
                ADD COLUMN IF NOT EXISTS orphans_removed bigint NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS cleaned_through text[];
            """)
    }


    // MARK: - Backfill checkpoints

    /// Takes the session-level lock that keeps two backfills of one migration from running at once;
    /// false when another session holds it. Released when the connection closes.
    func tryLockBackfill(_ c: ControlConnection, migration: String) throws(ControlError) -> Bool {
        try c.execute("SELECT pg_try_advisory_lock(hashtext($1))", ["switchyard backfill \(schema).\(migration)"])
            .first?.first == "t"
    }

    /// The migration's checkpoint, creating an empty one when there is none; `restart` empties it first,
    /// so the backfill begins again at the first key.
    func beginBackfill(_ c: ControlConnection, migration: String, restart: Bool) throws(ControlError) -> BackfillCheckpoint {
        try c.execute("INSERT INTO \(progressTable) (migration) VALUES ($1) ON CONFLICT (migration) DO NOTHING", [migration])
        if restart {
            try c.execute("""
                UPDATE \(progressTable) SET last_key = NULL, rows_read = 0, rows_inserted = 0, batches = 0,
                    orphans_removed = 0, cleaned_through = NULL, started_at = now(), updated_at = now(), finished_at = NULL
                WHERE migration = $1
                """, [migration])
        }
        guard let checkpoint = try checkpoint(c, migration: migration) else {
            throw ControlError(message: "the backfill checkpoint of \(migration) vanished as it was created")
        }
        return checkpoint
    }

    func checkpoint(_ c: ControlConnection, migration: String) throws(ControlError) -> BackfillCheckpoint? {
        let rows = try c.execute("""
            SELECT rows_read, rows_inserted, batches, orphans_removed, started_at::text, finished_at::text,
                   last_key IS NULL, cleaned_through IS NULL
            FROM \(progressTable) WHERE migration = $1
            """, [migration])
        guard let row = rows.first else { return nil }
        func key(_ column: String, isNull: String?) throws(ControlError) -> [String]? {
            guard isNull == "f" else { return nil }
            return try c.execute("""
                SELECT k FROM \(progressTable), unnest(\(column)) WITH ORDINALITY AS u(k, i) WHERE migration = $1 ORDER BY i
                """, [migration]).map { $0[0] ?? "" }
        }
        return BackfillCheckpoint(
            lastKey: try key("last_key", isNull: row[6]),
            cleanedThrough: try key("cleaned_through", isNull: row[7]),
            counts: BackfillCounts(rowsRead: Int(row[0] ?? "") ?? 0, rowsInserted: Int(row[1] ?? "") ?? 0,
                                   batches: Int(row[2] ?? "") ?? 0, orphansRemoved: Int(row[3] ?? "") ?? 0),
            startedAt: row[4] ?? "", finishedAt: row[5])
    }

    /// Records a batch when the checkpoint lives in another database than the relations and so cannot
    /// share the batch's transaction. Written right after the batch commits; a crash in between leaves the
    /// checkpoint one batch behind, and copying that batch again changes nothing (ON CONFLICT DO NOTHING).
    func recordBatch(
        _ c: ControlConnection, migration: String, lastKey: [String]?, rowsRead: Int, rowsInserted: Int, finished: Bool
    ) throws(ControlError) {
        var parameters: [String?] = [migration, String(rowsRead), String(rowsInserted), finished ? "t" : "f"]
        var keyArray = "last_key"
        if let lastKey {
            keyArray = "ARRAY[" + lastKey.indices.map { "$\($0 + 5)::text" }.joined(separator: ", ") + "]"
            parameters += lastKey.map { Optional($0) }
        }
        try c.execute("""
            UPDATE \(progressTable) SET last_key = \(keyArray), rows_read = rows_read + $2::bigint,
                rows_inserted = rows_inserted + $3::bigint, batches = batches + 1, updated_at = clock_timestamp(),
                finished_at = CASE WHEN $4::boolean THEN clock_timestamp() END
            WHERE migration = $1
            """, parameters)
    }

    /// Records an orphan cleanup when the checkpoint lives in another database than the relations: every
    /// copied key up to `through` is checked, and `removed` more rows were deleted. Written right after the
    /// cleanup commits; a crash in between leaves the range to check again, which deletes nothing more.
    func recordCleanup(_ c: ControlConnection, migration: String, through: [String], removed: Int) throws(ControlError) {
        let keyArray = "ARRAY[" + through.indices.map { "$\($0 + 3)::text" }.joined(separator: ", ") + "]"
        try c.execute("""
            UPDATE \(progressTable) SET cleaned_through = \(keyArray), orphans_removed = orphans_removed + $2::bigint,
                updated_at = clock_timestamp()
            WHERE migration = $1
            """, [migration, String(removed)] + through.map { Optional($0) })
    }

    // MARK: - Verify runs

    /// The control database's clock, for a run's started_at.
    func now(_ c: ControlConnection) throws(ControlError) -> String {
        try c.execute("SELECT clock_timestamp()::text").first?.first.flatMap { $0 } ?? ""
    }

    /// Inserts a verify run's result and returns its id.
    @discardableResult
    func recordVerify(_ c: ControlConnection, _ run: VerifyRunRecord) throws(ControlError) -> Int64 {
        let t = run.tally
        let rows = try c.execute("""
            INSERT INTO \(verifyRunsTable)
                (migration, started_at, finished_at, chunks, rows_old, rows_new, differing_chunks, differing_keys, sample_keys, equal)
            VALUES ($1, $2::timestamptz, clock_timestamp(), $3, $4, $5, $6, $7, $8::jsonb, $9)
            RETURNING id
            """, [run.migration, run.startedAt, String(t.chunks), String(t.rowsOld), String(t.rowsNew),
                  String(t.differingChunks), String(t.differingKeys), t.sampleKeysJSON, t.equal ? "t" : "f"])
        return Int64(rows.first?.first.flatMap { $0 } ?? "") ?? 0
    }
}
