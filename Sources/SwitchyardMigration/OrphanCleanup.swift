// The backfill's deferred orphan cleanup: which copied key ranges are ready, and the statements that clean one.

import SwitchyardConfig

/// Removes the rows a batch copied that a concurrent DELETE was meant to remove and missed.
///
/// ## How such an orphan arises
///
/// The proxy mirrors a client's DELETE inside the client's own statement:
///
/// ```sql
/// WITH switchyard_rows AS (DELETE FROM old ... RETURNING key),
///      switchyard_mirror AS (DELETE FROM new WHERE (key) IN (SELECT key FROM switchyard_rows)) SELECT ...
/// ```
///
/// A batch locks the old row R `FOR SHARE` and inserts its copy R' into the new relation. A client DELETE
/// of R that took its statement snapshot before the batch committed deletes R once the batch's lock is
/// gone (READ COMMITTED re-checks the row), but its mirror scans the new relation with that same older
/// snapshot, does not see R', and leaves it: a row in new whose key is absent from old. The same happens
/// without any wait when the DELETE's snapshot is older than the batch's commit and it reaches R just after.
/// At `live`, a DELETE of new rows mirrored back to old leaves the same row: its scan of the new relation
/// cannot see the batch's uncommitted copy, and its mirror deletes R once the batch lets go of it.
///
/// ## When a range can be cleaned
///
/// Only a transaction that was already running when a batch committed can hold a snapshot that misses
/// the batch's copies, and its DELETE is not final before it ends. So each batch's key range (after the
/// previous checkpoint, up to the batch's last key) waits in an ``OrphanCleanupQueue`` until every
/// transaction of the database that began before the batch committed has ended: the oldest `xact_start`
/// in `pg_stat_activity` is later than a server clock reading taken after the commit (the same test the
/// backfill's wait for `dual_write` makes). Transaction ids would not do: a transaction that deletes
/// without having waited may get its id only after the commit, and one that got its id before the commit
/// can hold an id at or above the snapshot xmax read right after it (xmax is the latest completed id plus
/// one, not the next id), so `pg_snapshot_xmin >= xmax` can hold while it is still open. A prepared
/// (two-phase) transaction does not show when it began, so while any is open nothing is ready.
///
/// ## Why it never deletes a legitimate row
///
/// The cleanup deletes, over one ready range, each new row whose key no old row has:
/// `DELETE FROM new n WHERE <n's key in the range> AND NOT EXISTS (SELECT 1 FROM old o WHERE o.key = n.key)`.
/// Dual-write changes both relations in one statement, so in any committed state the new relation's keys
/// are a subset of the old one's, orphans apart. A key inserted concurrently is invisible to the cleanup
/// while uncommitted, and once committed its old row is there too. Two ways a statement snapshot could
/// still be wrong are closed:
///
/// - **An orphan adopted meanwhile.** A client that inserts the orphan's key into old again mirrors it with
///   an upsert that finds the orphan and updates it in place, possibly after the cleanup took its
///   snapshot. Under READ COMMITTED the DELETE would re-check only the updated row against its old
///   snapshot (EvalPlanQual) and delete it. The cleanup therefore runs in a REPEATABLE READ transaction,
///   where a row changed after the snapshot fails the DELETE with a serialization error instead; the
///   runner retries it with a new snapshot, which sees the new old row.
/// - **Adopted without a trace.** When every mapped column is a key column, the mirror upsert has nothing
///   to update and keeps a conflicting row with `DO NOTHING`, leaving no change a snapshot could detect.
///   For such mappings, when a probe finds candidates, the transaction first locks the old relation in
///   SHARE mode (briefly, with a short lock timeout), which waits for writes in flight and holds off new
///   ones, and only then takes its snapshot.
///
/// Keys are compared as the verify compares them: the new key columns ranged with the new key types, and
/// each new key value cast to the old key column's type to look up the old row (so old's key index is used).
public struct OrphanCleanupPlan: Sendable, Equatable {
    /// The keys whose copies are checked.
    public var range: KeyRange
    /// Only for mappings whose mirror keeps a conflicting row untouched: one row, true when the range has a
    /// candidate at all. The table lock is taken only then.
    public var probe: SQLStatement?
    /// Run at the start of the transaction, before its snapshot, when the probe found candidates.
    public var lock: String?
    /// The DELETE, with the checkpoint update when the progress table shares the transaction. Its one result
    /// row: the rows deleted, then, with a progress table, how many checkpoint rows it updated (1, or 0 when
    /// the row is missing).
    public var delete: SQLStatement

    /// How long the lock waits for writes in flight before the cleanup gives way and is retried.
    public static let lockTimeout = "100ms"
}

extension BackfillStatement {
    /// The cleanup of `range`, a range of keys copied by batches: `upper` is a batch's last key, `lower` the
    /// checkpoint before the first of them (nil from the first key). With a progress table, the checkpoint
    /// row records `upper` as cleaned through and adds the rows deleted, in the same transaction.
    public func orphanCleanup(_ range: KeyRange) -> OrphanCleanupPlan {
        guard let upper = range.upper else { preconditionFailure("a cleanup range ends at a batch's last key") }
        let m = migration.migration
        var parameters = ParameterList()
        let candidates = orphanCandidates(range, parameters: &parameters)
        var text = "WITH removed AS (\n"
        text += "    DELETE FROM \(m.new) AS sy_n\n"
        text += candidates.indented
        text += "    RETURNING 1\n"
        text += ")"
        var results = ["(SELECT count(*) FROM removed)"]
        if let progressTable {
            let through = upper.map { parameters.add($0, as: "text") }
            let migrationParameter = parameters.add(m.name, as: "text")
            text += ", checkpoint AS (\n"
            text += "    UPDATE \(progressTable) SET\n"
            text += "        orphans_removed = orphans_removed + (SELECT count(*) FROM removed),\n"
            text += "        cleaned_through = ARRAY[\(through.joined(separator: ", "))],\n"
            text += "        updated_at = clock_timestamp()\n"
            text += "    WHERE migration = \(migrationParameter)\n"
            text += "    RETURNING 1\n"
            text += ")"
            results.append("(SELECT count(*) FROM checkpoint)")
        }
        text += "\nSELECT " + results.joined(separator: ", ")
        let delete = SQLStatement(text, parameters: parameters.values)

        guard migration.mirrorKeepsConflictingRows else { return OrphanCleanupPlan(range: range, probe: nil, lock: nil, delete: delete) }
        var probeParameters = ParameterList()
        let probeCandidates = orphanCandidates(range, parameters: &probeParameters)
        let probe = SQLStatement("SELECT EXISTS (SELECT 1 FROM \(m.new) AS sy_n \(probeCandidates.inline))",
                                 parameters: probeParameters.values)
        let lock = "SET LOCAL lock_timeout = '\(OrphanCleanupPlan.lockTimeout)'; LOCK TABLE \(m.old) IN SHARE MODE"
        return OrphanCleanupPlan(range: range, probe: probe, lock: lock, delete: delete)
    }

    /// The WHERE clause over the new relation (aliased `sy_n`) that selects the rows in `range` without an
    /// old row (aliased `sy_o`), as indented lines and as one line.
    private func orphanCandidates(_ range: KeyRange, parameters: inout ParameterList) -> (indented: String, inline: String) {
        let newKeys = migration.newKeyColumns.map { "sy_n.\($0)" }
        let bounds = range.predicate(columns: newKeys, types: migration.newKeyTypes, parameters: &parameters)
        let lookup = zip(zip(migration.oldKeyColumns, newKeys), migration.oldKeyTypes)
            .map { "sy_o.\($0.0) = (\($0.1))::\($1)" }.joined(separator: " AND ")
        let missing = "NOT EXISTS (SELECT 1 FROM \(migration.migration.old) AS sy_o WHERE \(lookup))"
        guard let bounds else { return ("    WHERE \(missing)\n", "WHERE \(missing)") }
        return ("    WHERE \(bounds)\n      AND \(missing)\n", "WHERE \(bounds) AND \(missing)")
    }
}

/// What the database's open transactions look like at one moment, from the server's own clock: what an
/// ``OrphanCleanupQueue`` decides on. Times are microseconds since the Unix epoch.
public struct TransactionHorizon: Sendable, Equatable {
    /// The server's clock when sampled.
    public var now: Int64
    /// When the oldest transaction of the database still open began (other than the backfill's own); nil
    /// when none is open.
    public var oldestStart: Int64?
    /// Prepared (two-phase) transactions of the database, whose beginning cannot be seen.
    public var preparedTransactions: Int

    public init(now: Int64, oldestStart: Int64?, preparedTransactions: Int = 0) {
        self.now = now
        self.oldestStart = oldestStart
        self.preparedTransactions = preparedTransactions
    }
}

/// The key ranges copied and not yet cleaned, in key order, each with the first horizon sampled after its
/// batch committed. A range is ready once no transaction that began before that sample is still open:
/// every transaction then open began after the batch committed, and sees its copies.
public struct OrphanCleanupQueue: Sendable, Equatable {
    struct Pending: Sendable, Equatable {
        var range: KeyRange
        /// The server's clock at the first horizon sampled after the batch committed; nil until then.
        var committedBefore: Int64?
    }

    private var pending: [Pending] = []

    public init() {}

    public var isEmpty: Bool { pending.isEmpty }

    /// All the keys still waiting, as one range (nil when none is).
    public var waiting: KeyRange? {
        guard let first = pending.first, let last = pending.last else { return nil }
        return KeyRange(lower: first.range.lower, upper: last.range.upper)
    }

    /// Records a batch's range once the batch has committed.
    public mutating func copied(_ range: KeyRange) {
        pending.append(Pending(range: range, committedBefore: nil))
    }

    /// Takes the ranges ready at `horizon`, merged into one range (they follow each other in key order; a
    /// gap would only make the cleanup check more keys), or nil when none is ready. Ranges copied since the
    /// last sample are stamped with this one's clock first, so a range can be ready at the first sample
    /// after its batch when no transaction is open at all.
    public mutating func takeReady(at horizon: TransactionHorizon) -> KeyRange? {
        for index in pending.indices where pending[index].committedBefore == nil {
            pending[index].committedBefore = horizon.now
        }
        // Stamps only grow along the queue, so the ready ranges are a prefix.
        let ready = pending.prefix { item in
            guard horizon.preparedTransactions == 0, let stamp = item.committedBefore else { return false }
            return horizon.oldestStart.map { $0 > stamp } ?? true
        }
        guard let first = ready.first, let last = ready.last else { return nil }
        pending.removeFirst(ready.count)
        return KeyRange(lower: first.range.lower, upper: last.range.upper)
    }

    /// Puts back a range taken by `takeReady` whose cleanup could not run this time; it is ready again at
    /// the next sample.
    public mutating func putBack(_ range: KeyRange) {
        pending.insert(Pending(range: range, committedBefore: Int64.min), at: 0)
    }
}
