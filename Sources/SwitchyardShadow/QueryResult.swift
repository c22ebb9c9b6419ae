// One statement's answer as a client sees it: its columns with their types, its rows as text, its command tag.

/// A result column as a RowDescription message describes it to the client.
/// https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION
public struct ResultColumn: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// The column's type (`pg_type.oid`).
    public var typeOID: UInt32
    /// The type modifier (the 10,2 of `numeric(10,2)`, the 20 of `varchar(20)`); -1 when there is none.
    public var typmod: Int32

    public init(name: String, typeOID: UInt32, typmod: Int32 = -1) {
        self.name = name
        self.typeOID = typeOID
        self.typmod = typmod
    }

    /// `name (oid 23)`, or `amount (oid 1700, typmod 655366)`.
    public var description: String {
        typmod == -1 ? "\(name) (oid \(typeOID))" : "\(name) (oid \(typeOID), typmod \(typmod))"
    }
}

/// Everything a read answered, in text format: what the comparison looks at. Text is what the type's
/// output function prints, so two equal values of one type always have the same text.
public struct QueryResult: Sendable, Equatable {
    public var columns: [ResultColumn]
    /// One array per row, one value per column; nil is SQL NULL (never the same as an empty string).
    public var rows: [[String?]]
    /// The CommandComplete tag (`SELECT 3`); shown, not compared, since the row count says the same.
    public var commandTag: String

    public init(columns: [ResultColumn], rows: [[String?]], commandTag: String = "") {
        self.columns = columns
        self.rows = rows
        self.commandTag = commandTag
    }

    public var rowCount: Int { rows.count }
}
