// The settings roles and databases give their sessions (ALTER ROLE/DATABASE ... SET), as a session starts with them.

/// Rows of `pg_db_role_setting` that routing depends on: a setting for a role in a database, for
/// a role, for a database, or for every session (a nil role or database stands for all).
public struct RoleSettings: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var role: String?
        public var database: String?
        /// Lower-cased, as the router looks settings up.
        public var name: String
        public var value: String

        public init(role: String?, database: String?, name: String, value: String) {
            self.role = role
            self.database = database
            self.name = name.lowercased()
            self.value = value
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry] = []) {
        self.entries = entries
    }

    /// What a session of `role` in `database` starts with, by setting: PostgreSQL applies the
    /// role's setting in that database over the role's, over the database's, over every session's.
    public func settings(role: String, database: String) -> [String: String] {
        guard !entries.isEmpty else { return [:] }
        var found: [String: (rank: Int, value: String)] = [:]
        for e in entries {
            let rank: Int
            switch (e.role, e.database) {
            case let (r?, d?) where r == role && d == database: rank = 4
            case let (r?, nil) where r == role: rank = 3
            case let (nil, d?) where d == database: rank = 2
            case (nil, nil): rank = 1
            default: continue
            }
            if let kept = found[e.name], kept.rank >= rank { continue }
            found[e.name] = (rank, e.value)
        }
        return found.mapValues(\.value)
    }
}
