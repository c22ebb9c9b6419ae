// The backfill's batch statement: copy the next rows of the old relation into the new one, in one round trip.

import SwitchyardConfig

/// Builds the statement that copies one batch. It is a single statement, run in autocommit, so the batch is
/// one short transaction:
///
/// ```sql
/// WITH batch AS (            -- the next rows after the checkpoint, in key order, locked FOR SHARE
///     SELECT <old key>, (<forward>)..., (<extra>)... FROM old
///     WHERE (<old key>) > (<checkpoint>) ORDER BY <old key> LIMIT n FOR SHARE
/// ), inserted AS (           -- each through the forward mapping into the new relation
///     INSERT INTO new (<mapped new columns>, <extra columns>) SELECT ... FROM batch
///     ON CONFLICT (<new key>) DO NOTHING RETURNING 1
/// ), counts AS (...), last AS (...),
/// checkpoint AS (            -- the checkpoint, committed with the rows it describes
///     UPDATE <control schema>.backfill_progress SET last_key = ..., rows_read = rows_read + ... WHERE migration = ...
/// )
/// SELECT rows_read, rows_inserted, <last key as text>..., checkpoint rows
/// ```
///
/// ## Why this is correct while the proxy dual-writes
///
/// From `dual_write` on, every INSERT or UPDATE of an old row is mirrored, in the client's own transaction
/// and after the client's change, by an upsert of the new row (`INSERT ... ON CONFLICT (key) DO UPDATE`
/// with every mapped column), and every DELETE by a delete of the new row. The backfill only has to bring
/// across the rows that no write has touched since; for the others it must never overwrite a newer value
/// nor bring back a deleted row. Take any old row R that a batch reaches, and a client transaction W
/// that changes R:
///
/// - **W committed before the batch's snapshot.** The batch reads W's version of R. W's mirror already
///   wrote the new row (or deleted it, and then the batch does not see R at all). The insert conflicts and
///   DO NOTHING keeps the mirrored row, which holds the same values.
/// - **W commits after the snapshot, before the batch locks R** (or is still running when the batch
///   reaches R: FOR SHARE then waits for it). Locking R finds it changed by a committed transaction, and
///   READ COMMITTED re-checks the newest version (EvalPlanQual). After an UPDATE the batch copies that
///   version, but W's mirror has already upserted it, so DO NOTHING keeps W's row, the same values. After
///   a DELETE the re-check finds no row and the batch skips R: no deleted row is resurrected. If W rolls
///   back, nothing changed.
/// - **W tries to change R after the batch locked it.** W's UPDATE or DELETE of R waits for the batch to
///   commit (a share lock blocks writers of the row). The batch's copy of R commits first. W's upsert then
///   overwrites it: ON CONFLICT sees and updates a conflicting row committed after its snapshot, so no
///   update is lost. W's delete by key may miss it (below), and the orphan cleanup removes it.
/// - **W inserts a new key.** The batch's snapshot cannot see an uncommitted row, and a row committed after
///   the snapshot was mirrored by W itself; if W's mirror and the batch insert the same new key at once,
///   the unique index makes one wait for the other and DO NOTHING keeps W's version.
///
/// In the third case the proxy's mirror of a DELETE, a data-modifying CTE in the client's own statement,
/// scans the new relation with the statement's snapshot, taken before the wait, and misses the copy,
/// which would outlive the deleted old row (`switchyard verify` reports it as extra in new). A delete
/// that reaches R just after the batch committed, with a snapshot from before, misses it the same way.
/// Such a row is left in the batch's key range, and only by a transaction that was running when the batch
/// committed; once all of those have ended the backfill deletes every new row of the range that has no
/// old row (`OrphanCleanupPlan`, which also says why that never takes a legitimate row).
///
/// W never waits on the batch while the batch waits on W for the same key: the batch inserts the new row
/// of R only after it holds the lock on old R, which W's change of R must take first. So single-row writes
/// cannot deadlock with a batch; a client transaction that touches several rows out of key order can, and
/// PostgreSQL then aborts one of the two (the client's transaction, or the batch, which is retried).
///
/// Rows are only ever added with DO NOTHING, so running a batch again (after a crash between batches,
/// or from the first key with `--restart`) changes nothing that is already there.
public struct BackfillStatement: Sendable, Equatable {
    public let migration: ResolvedMigration
    /// The checkpoint table, when it is in the same database as the relations and can share the batch's
    /// transaction; nil when the runner writes the checkpoint itself after each batch.
    public let progressTable: RelationName?

    public init(_ migration: ResolvedMigration, progressTable: RelationName?) {
        self.migration = migration
        self.progressTable = progressTable
    }

    /// The statement for the batch after `checkpoint` (nil: from the first key), of at most `limit` rows.
    /// Its one result row: rows read, rows inserted, the batch's last key column values as text (NULL when
    /// it read nothing), then, with a progress table, how many checkpoint rows it updated (1, or 0 when the
    /// row is missing). With a progress table the checkpoint row is marked finished when the batch reads
    /// fewer rows than `limit`: the scan reached the end of the old relation.
    public func batch(after checkpoint: [String]?, limit: Int) -> SQLStatement {
        precondition(limit > 0, "a batch reads at least one row")
        let m = migration.migration
        var parameters = ParameterList()
        let keyCount = m.key.count
        let keyAliases = (1...keyCount).map { "sy_k\($0)" }
        let forwardAliases = (1...m.columns.count).map { "sy_f\($0)" }
        let extraAliases = m.extraNewColumns.indices.map { "sy_x\($0 + 1)" }

        var select = zip(migration.oldKeyColumns, keyAliases).map { "\($0) AS \($1)" }
        select += zip(m.columns, forwardAliases).map { "(\($0.forward)) AS \($1)" }
        select += zip(m.extraNewColumns, extraAliases).map { "(\($0.expression)) AS \($1)" }
        let range = KeyRange(lower: checkpoint, upper: nil)
        let predicate = range.predicate(columns: migration.oldKeyColumns, types: migration.oldKeyTypes, parameters: &parameters)
        let limitParameter = parameters.add(String(limit), as: "integer")

        var text = "WITH batch AS (\n"
        text += "    SELECT \(select.joined(separator: ", "))\n"
        text += "    FROM \(m.old)\n"
        if let predicate { text += "    WHERE \(predicate)\n" }
        // Ordinal positions: the key columns come first, and an output name could shadow a column name.
        text += "    ORDER BY \((1...keyCount).map(String.init).joined(separator: ", "))\n"
        text += "    LIMIT \(limitParameter)\n"
        text += "    FOR SHARE\n"
        text += "), inserted AS (\n"
        let targets = migration.newMappedColumns + m.extraNewColumns.map { RelationName.quotedIdentifier($0.column) }
        text += "    INSERT INTO \(m.new) (\(targets.joined(separator: ", ")))\n"
        text += "    SELECT \((forwardAliases + extraAliases).joined(separator: ", ")) FROM batch\n"
        text += "    ON CONFLICT (\(migration.newKeyColumns.joined(separator: ", "))) DO NOTHING\n"
        text += "    RETURNING 1\n"
        text += "), counts AS (\n"
        text += "    SELECT (SELECT count(*) FROM batch) AS rows_read, (SELECT count(*) FROM inserted) AS rows_inserted\n"
        text += "), last AS (\n"
        text += "    SELECT ARRAY[\(keyAliases.map { "\($0)::text" }.joined(separator: ", "))] AS key\n"
        text += "    FROM batch ORDER BY \(keyAliases.map { "\($0) DESC" }.joined(separator: ", ")) LIMIT 1\n"
        text += ")"
        if let progressTable {
            let migrationParameter = parameters.add(m.name, as: "text")
            text += ", checkpoint AS (\n"
            text += "    UPDATE \(progressTable) SET\n"
            text += "        last_key = coalesce((SELECT key FROM last), last_key),\n"
            text += "        rows_read = rows_read + (SELECT rows_read FROM counts),\n"
            text += "        rows_inserted = rows_inserted + (SELECT rows_inserted FROM counts),\n"
            text += "        batches = batches + 1,\n"
            text += "        updated_at = clock_timestamp(),\n"
            text += "        finished_at = CASE WHEN (SELECT rows_read FROM counts) < \(limitParameter) THEN clock_timestamp() END\n"
            text += "    WHERE migration = \(migrationParameter)\n"
            text += "    RETURNING 1\n"
            text += ")"
        }
        let lastKey = (1...keyCount).map { "last.key[\($0)]" }
        let checkpointCount = progressTable == nil ? [] : ["(SELECT count(*) FROM checkpoint)"]
        text += "\nSELECT " + (["counts.rows_read", "counts.rows_inserted"] + lastKey + checkpointCount).joined(separator: ", ")
        text += "\nFROM counts LEFT JOIN last ON true"
        return SQLStatement(text, parameters: parameters.values)
    }
}
