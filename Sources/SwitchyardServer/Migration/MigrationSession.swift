// The connections and catalog facts that backfill and verify share: control schema, data database, key types.
import SwitchyardConfig
import SwitchyardMigration
import SwitchyardRouting

/// Why `switchyard backfill` or `switchyard verify` could not do its work. Each kind maps to an exit status
/// in the command line; the message names the migration and says what to do.
public struct MigrationToolError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The configuration or the catalog does not allow the run (unknown migration, missing relation or column).
        case usage
        /// A precondition of a safe run is not met (the flag is before dual_write).
        case refused
        /// PostgreSQL returned an error or the connection failed.
        case database
        /// The load stayed too high for longer than the pause limit.
        case gaveUp
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// One migration ready to be worked on: the control connection with its stores, the connection to the
/// database holding the relations (the same one when the control schema lives there), and the key and
/// column types from the catalog.
struct MigrationSession {
    let migration: MigrationConfig
    let control: ControlConnection
    let data: ControlConnection
    /// Whether the control schema is in the relations' database, so a batch and its checkpoint can share
    /// one transaction.
    let sharesDatabase: Bool
    let flags: ControlStore
    let store: MigrationStore
    let resolved: ResolvedMigration

    /// Finds the migration, connects, creates the control tables if needed (seeding the flags as every
    /// command does) and reads the catalog.
    static func open(_ config: SwitchyardConfiguration, migration name: String, applicationName: String)
        throws(MigrationToolError) -> MigrationSession
    {
        guard let migration = config.migrations.first(where: { $0.name == name }) else {
            let names = config.migrations.map(\.name)
            throw MigrationToolError(.usage, "unknown migration \(name); "
                + (names.isEmpty ? "the configuration defines none" : "the configuration defines \(names.joined(separator: ", "))"))
        }
        let controlURI = config.control.database ?? config.upstream
        let sharesDatabase = Self.sameDatabase(controlURI, config.upstream)
        let flags = ControlStore(schema: config.control.schema)
        let store = MigrationStore(schema: config.control.schema)
        let control: ControlConnection
        let data: ControlConnection
        do throws(ControlError) {
            control = try ControlConnection(controlURI, applicationName: applicationName)
            try flags.ensureSchema(control)
            try flags.seed(control, flags: config.flags)
            try store.ensureSchema(control)
            data = sharesDatabase
                ? control
                : try ControlConnection(config.upstream, applicationName: applicationName, purpose: "the upstream database")
        } catch {
            throw MigrationToolError(.database, "\(name): \(error)")
        }
        let resolved = try resolve(migration, data)
        return MigrationSession(migration: migration, control: control, data: data, sharesDatabase: sharesDatabase,
                                flags: flags, store: store, resolved: resolved)
    }

    /// Same server, database and user: then one connection reaches both the control schema and the relations.
    /// (libpq's default database is the user's name.)
    static func sameDatabase(_ a: UpstreamURI, _ b: UpstreamURI) -> Bool {
        a.host == b.host && a.port == b.port && a.user == b.user && (a.database ?? a.user) == (b.database ?? b.user)
    }

    /// The migration's flag as stored in the control schema, if it has one.
    func flag() throws(ControlError) -> StoredFlag? {
        try flags.load(control).first { $0.migration == migration.name }
    }

    /// The key and column types both relations have today. A missing relation or column is a usage error,
    /// worded as `switchyard check` words it.
    private static func resolve(_ m: MigrationConfig, _ c: ControlConnection) throws(MigrationToolError) -> ResolvedMigration {
        let old: [CatalogColumn]
        let new: [CatalogColumn]
        do throws(ControlError) {
            old = try MigrationCheck.columnsOf(m.old, c)
            new = try MigrationCheck.columnsOf(m.new, c)
        } catch {
            throw MigrationToolError(.database, "\(m.name): cannot read the catalog: \(error)")
        }
        var problems: [String] = []
        if old.isEmpty { problems.append("old relation \(m.old) does not exist (or this user cannot see it)") }
        if new.isEmpty { problems.append("new relation \(m.new) does not exist (or this user cannot see it)") }
        func type(_ column: String, in columns: [CatalogColumn], of relation: RelationName) -> String {
            if let found = columns.first(where: { $0.name == column }) { return found.type }
            if !columns.isEmpty { problems.append("\(relation) has no column \(RelationName.quotedIdentifier(column))") }
            return "text"
        }
        let oldKeyTypes = m.key.map { type($0, in: old, of: m.old) }
        let newKeyTypes = m.key.map { type(m.column(old: $0)?.newColumn ?? $0, in: new, of: m.new) }
        let newColumnTypes = m.columns.map { type($0.newColumn, in: new, of: m.new) }
        for extra in m.extraNewColumns { _ = type(extra.column, in: new, of: m.new) }
        guard problems.isEmpty else {
            throw MigrationToolError(.usage, "\(m.name): " + problems.joined(separator: "; ")
                + " (switchyard check validates the whole mapping)")
        }
        return ResolvedMigration(m, oldKeyTypes: oldKeyTypes, newKeyTypes: newKeyTypes, newColumnTypes: newColumnTypes)
    }
}
