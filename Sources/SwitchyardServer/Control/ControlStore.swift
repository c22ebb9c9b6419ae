// The control schema: flag state shared by every Switchyard instance, and the history of every flip.
import Foundation
import SwitchyardConfig
import SwitchyardRouting

/// One flag's state as stored in the control schema.
public struct StoredFlag: Sendable, Equatable {
    public var name: String
    public var migration: String
    public var stage: FlagStage
    public var percentBasisPoints: Int
    public var updatedAt: String
    public var updatedBy: String?
    /// Why the flag is where it is: the latest flip's reason (a guardrail's breach, an operator's note).
    public var updatedWhy: String = ""

    /// "switchyard guardrail: guardrail: 5 of 205 shadow reads diverged …", or "" before any flip.
    public var lastChange: String {
        guard let by = updatedBy, !by.isEmpty else { return updatedWhy }
        return updatedWhy.isEmpty ? by : "\(by): \(updatedWhy)"
    }
}

/// One recorded flip.
public struct FlagFlip: Sendable, Equatable {
    public var flag: String
    public var at: String
    public var from: String
    public var to: String
    public var by: String
    public var why: String
}

/// Reads and writes the control schema. The config file only seeds it: a flag that
/// already has a row keeps its stored stage, so a restart keeps the last flip.
struct ControlStore {
    let schema: String
    /// The NOTIFY channel instances listen on.
    var channel: String { "\(schema)_flags" }
    private var q: String { RelationName.quotedIdentifier(schema) }

    init(schema: String) {
        self.schema = schema
    }

    func ensureSchema(_ c: ControlConnection) throws(ControlError) {
        try Self.ensureSchema(c, schema: schema, tables: """
            CREATE TABLE IF NOT EXISTS \(q).flags (
                name text PRIMARY KEY,
                migration text NOT NULL,
                stage text NOT NULL,
                percent_bp integer NOT NULL CHECK (percent_bp BETWEEN 0 AND 10000),
                updated_at timestamptz NOT NULL DEFAULT now(),
                updated_by text
            );
            CREATE TABLE IF NOT EXISTS \(q).flag_history (
                id bigserial PRIMARY KEY,
                flag text NOT NULL,
                at timestamptz NOT NULL DEFAULT now(),
                from_stage text,
                from_percent_bp integer,
                to_stage text NOT NULL,
                to_percent_bp integer NOT NULL,
                changed_by text NOT NULL,
                why text NOT NULL DEFAULT ''
            );
            CREATE TABLE IF NOT EXISTS \(q).write_divergences (
                migration text NOT NULL,
                fingerprint text NOT NULL,
                reason text NOT NULL,
                query text NOT NULL,
                count bigint NOT NULL,
                first_seen timestamptz NOT NULL DEFAULT now(),
                last_seen timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (migration, fingerprint, reason)
            );
            CREATE TABLE IF NOT EXISTS \(q).evidence (
                instance text NOT NULL,
                flag text NOT NULL,
                kind text NOT NULL,
                key text NOT NULL,
                data jsonb NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (instance, flag, kind, key)
            );
            """)
    }

    /// Creates the control schema and `tables` (DDL with IF NOT EXISTS) in one transaction, under
    /// the advisory lock every instance and command takes: instances may start together, and the
    /// lock makes the IF NOT EXISTS checks race-free.
    static func ensureSchema(_ c: ControlConnection, schema: String, tables: String) throws(ControlError) {
        let literal = "'" + schema.replacingOccurrences(of: "'", with: "''") + "'"
        do throws(ControlError) { try c.executeScript("""
            BEGIN;
            SET LOCAL client_min_messages = warning;
            SELECT pg_advisory_xact_lock(hashtext('switchyard control schema ' || \(literal)));
            CREATE SCHEMA IF NOT EXISTS \(RelationName.quotedIdentifier(schema));
            \(tables)
            COMMIT;
            """) } catch {
            try? c.executeScript("ROLLBACK")
            throw error
        }
    }


    /// Inserts flags the schema does not know yet, with the config's stage.
    func seed(_ c: ControlConnection, flags: [FlagConfig]) throws(ControlError) {
        for f in flags {
            let inserted = try c.execute("""
                INSERT INTO \(q).flags (name, migration, stage, percent_bp, updated_by)
                VALUES ($1, $2, $3, $4, 'config') ON CONFLICT (name) DO NOTHING RETURNING name
                """, [f.name, f.migration, f.stage.rawValue, String(f.percentBasisPoints)])
            if !inserted.isEmpty {
                try c.execute("""
                    INSERT INTO \(q).flag_history (flag, to_stage, to_percent_bp, changed_by, why)
                    VALUES ($1, $2, $3, 'config', 'seeded from the configuration file')
                    """, [f.name, f.stage.rawValue, String(f.percentBasisPoints)])
            }
        }
    }

    func load(_ c: ControlConnection) throws(ControlError) -> [StoredFlag] {
        try c.execute("""
            SELECT name, migration, stage, percent_bp, updated_at::text, updated_by,
                   (SELECT why FROM \(q).flag_history h WHERE h.flag = f.name ORDER BY id DESC LIMIT 1)
            FROM \(q).flags f ORDER BY name
            """).compactMap { row in
            guard let name = row[0], let migration = row[1], let stageText = row[2], let stage = FlagStage(rawValue: stageText),
                  let bp = row[3].flatMap({ Int($0) }) else { return nil }
            return StoredFlag(name: name, migration: migration, stage: stage, percentBasisPoints: bp, updatedAt: row[4] ?? "", updatedBy: row[5],
                              updatedWhy: row[6] ?? "")
        }
    }

    /// Adds this instance's new write divergences to the shared counts.
    func addDivergences(_ c: ControlConnection, _ divergences: [WriteDivergence]) throws(ControlError) {
        for d in divergences {
            _ = try c.execute("""
                INSERT INTO \(q).write_divergences (migration, fingerprint, reason, query, count) VALUES ($1, $2, $3, $4, $5::bigint)
                ON CONFLICT (migration, fingerprint, reason)
                DO UPDATE SET count = \(q).write_divergences.count + EXCLUDED.count, last_seen = now(), query = EXCLUDED.query
                """, [d.migration, d.fingerprint, d.reason, d.query, String(d.count)])
        }
    }

    /// Replaces this instance's evidence rows (shadow tallies, latency, read divergences) in one transaction.
    func putEvidence(_ c: ControlConnection, instance: String, rows: [EvidenceRow]) throws(ControlError) {
        try c.executeScript("BEGIN")
        do throws(ControlError) {
            for r in rows {
                _ = try c.execute("""
                    INSERT INTO \(q).evidence (instance, flag, kind, key, data) VALUES ($1, $2, $3, $4, $5::jsonb)
                    ON CONFLICT (instance, flag, kind, key) DO UPDATE SET data = EXCLUDED.data, updated_at = now()
                    """, [instance, r.flag, r.kind, r.key, r.json])
            }
            try c.executeScript("COMMIT")
        } catch {
            try? c.executeScript("ROLLBACK")
            throw error
        }
    }

    /// Every instance's evidence for `flag`.
    func evidence(_ c: ControlConnection, flag: String) throws(ControlError) -> [(instance: String, row: EvidenceRow)] {
        try c.execute("SELECT instance, kind, key, data::text FROM \(q).evidence WHERE flag = $1 ORDER BY instance, kind, key", [flag]).map { r in
            (r[0] ?? "", EvidenceRow(flag: flag, kind: r[1] ?? "", key: r[2] ?? "", json: r[3] ?? "{}"))
        }
    }

    /// Write divergences of every instance, the most recent first.
    func divergences(_ c: ControlConnection, limit: Int = 200) throws(ControlError) -> [WriteDivergence] {
        try c.execute("""
            SELECT migration, fingerprint, reason, query, count, first_seen::text, last_seen::text
            FROM \(q).write_divergences ORDER BY last_seen DESC LIMIT \(limit)
            """).map { row in
            WriteDivergence(migration: row[0] ?? "", fingerprint: row[1] ?? "", reason: row[2] ?? "", query: row[3] ?? "",
                            count: row[4].flatMap { UInt64($0) } ?? 0, firstSeen: row[5] ?? "", lastSeen: row[6] ?? "")
        }
    }

    /// Moves a flag, records the flip and notifies every instance, in one transaction.
    func setFlag(_ c: ControlConnection, name: String, stage: FlagStage, percentBasisPoints: Int?, by: String, why: String) throws(ControlError) -> StoredFlag {
        try c.executeScript("BEGIN")
        do throws(ControlError) {
            let current = try c.execute("SELECT stage, percent_bp FROM \(q).flags WHERE name = $1 FOR UPDATE", [name])
            guard let row = current.first else {
                let known = try c.execute("SELECT name FROM \(q).flags ORDER BY name").compactMap { $0[0] }
                throw ControlError(message: "unknown flag \"\(name)\"" + (known.isEmpty ? "" : "; known flags: \(known.joined(separator: ", "))"))
            }
            let percent = percentBasisPoints ?? Int(row[1] ?? "0") ?? 0
            try c.execute("UPDATE \(q).flags SET stage = $2, percent_bp = $3, updated_at = now(), updated_by = $4 WHERE name = $1",
                          [name, stage.rawValue, String(percent), by])
            try c.execute("""
                INSERT INTO \(q).flag_history (flag, from_stage, from_percent_bp, to_stage, to_percent_bp, changed_by, why)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """, [name, row[0], row[1], stage.rawValue, String(percent), by, why])
            try c.execute("SELECT pg_notify($1, $2)", [channel, name])
            try c.executeScript("COMMIT")
        } catch {
            try? c.executeScript("ROLLBACK")
            throw error
        }
        guard let stored = try load(c).first(where: { $0.name == name }) else {
            throw ControlError(message: "flag \"\(name)\" vanished after the update")
        }
        return stored
    }

    func history(_ c: ControlConnection, limit: Int = 100) throws(ControlError) -> [FlagFlip] {
        try c.execute("""
            SELECT flag, at::text, coalesce(from_stage || ' ' || to_char(from_percent_bp / 100.0, 'FM990.00') || '%', ''), to_stage || ' ' || to_char(to_percent_bp / 100.0, 'FM990.00') || '%', changed_by, why
            FROM \(q).flag_history ORDER BY id DESC LIMIT \(limit)
            """).map { r in
            FlagFlip(flag: r[0] ?? "", at: r[1] ?? "", from: r[2] ?? "", to: r[3] ?? "", by: r[4] ?? "", why: r[5] ?? "")
        }
    }
}

/// Writes to a migrated table that were not mirrored (or whose mirror failed): the new table
/// may have drifted from the old one on these rows.
public struct WriteDivergence: Sendable, Equatable {
    public var migration: String
    public var fingerprint: String
    public var reason: String
    public var query: String
    public var count: UInt64
    public var firstSeen: String = ""
    public var lastSeen: String = ""
}

/// One piece of an instance's evidence about a flag, as stored for the cutover report: `kind` is
/// `shadow` (the flag's shadow-read tally), `latency` (one cohort, path and query) or
/// `read_divergence` (one aggregated divergence); `json` its figures.
public struct EvidenceRow: Sendable, Equatable {
    public var flag: String
    public var kind: String
    public var key: String
    public var json: String
}
