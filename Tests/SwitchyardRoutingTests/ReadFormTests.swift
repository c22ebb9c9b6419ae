// Reads name the new relation directly only when the catalog shows it has the old row shape.
import SwitchyardConfig
import SwitchyardRouting
import Testing

@Suite("Read form")
struct ReadFormTests {
    /// pgbench_accounts with abalance renamed to balance, as `abalance: balance` configures it.
    static let migration = MigrationConfig(
        name: "accounts_v2", old: RelationName(name: "pgbench_accounts"), new: RelationName(name: "pgbench_accounts_v2"),
        key: ["aid"],
        columns: [
            ColumnMapping(oldColumn: "aid", newColumn: "aid"),
            ColumnMapping(oldColumn: "bid", newColumn: "bid"),
            ColumnMapping(oldColumn: "abalance", newColumn: "balance"),
            ColumnMapping(oldColumn: "filler", newColumn: "filler"),
        ])
    static let old = [
        RelationColumn(name: "aid", type: "integer", collation: 0),
        RelationColumn(name: "bid", type: "integer", collation: 0),
        RelationColumn(name: "abalance", type: "integer", collation: 0),
        RelationColumn(name: "filler", type: "character(84)", collation: 100),
    ]
    static let new = [
        RelationColumn(name: "aid", type: "integer", collation: 0),
        RelationColumn(name: "bid", type: "integer", collation: 0),
        RelationColumn(name: "balance", type: "integer", collation: 0),
        RelationColumn(name: "filler", type: "character(84)", collation: 100),
    ]

    static func with(inverse: String, newName: String = "balance") -> (MigrationConfig, [RelationColumn]) {
        var m = migration
        m.columns[2] = ColumnMapping(oldColumn: "abalance", newColumn: newName, inverse: inverse)
        var n = new
        n[2].name = newName
        return (m, n)
    }

    @Test("same row shape, plain renames: the new relation is read directly under the old names, listed up to the last renamed column")
    func direct() {
        #expect(ReadForm.decide(Self.migration, old: Self.old, new: Self.new) == .direct(columns: ["aid", "bid", "abalance"]))
        #expect(ReadForm.decide(Self.migration, old: Self.old, new: Self.new).directColumns == ["aid", "bid", "abalance"])
        // The last column renamed: every name listed.
        var m = Self.migration
        m.columns[3] = ColumnMapping(oldColumn: "filler", newColumn: "pad")
        var n = Self.new
        n[3].name = "pad"
        var o = Self.old
        #expect(ReadForm.decide(m, old: o, new: n) == .direct(columns: ["aid", "bid", "abalance", "filler"]))
        // The first column renamed alone: one name.
        m = Self.migration
        m.columns[0] = ColumnMapping(oldColumn: "aid", newColumn: "account_id")
        m.columns[2] = ColumnMapping(oldColumn: "abalance", newColumn: "abalance")
        n = Self.new
        n[0].name = "account_id"
        n[2].name = "abalance"
        #expect(ReadForm.decide(m, old: o, new: n) == .direct(columns: ["aid"]))
        // Nothing renamed: no list, the new relation only takes the old name.
        m.columns[0] = ColumnMapping(oldColumn: "aid", newColumn: "aid")
        n[0].name = "aid"
        o[3].collation = 100
        #expect(ReadForm.decide(m, old: o, new: n) == .direct(columns: []))
        #expect(ReadForm.decide(m, old: o, new: n).directColumns == [])
    }

    @Test("an inverse that is the new column's name, quoted or not, is a plain reference", arguments: [
        ("balance", "balance"), ("\"balance\"", "balance"), ("  balance ", "balance"), ("BALANCE", "balance"),
        ("\"Balance\"", "Balance"), ("\"user\"", "user"), ("\"a\"\"b\"", "a\"b"),
    ])
    func plainInverse(inverse: String, newName: String) {
        let (m, n) = Self.with(inverse: inverse, newName: newName)
        #expect(ReadForm.decide(m, old: Self.old, new: n).directColumns != nil, "\(inverse) on \(newName)")
    }

    @Test("any other inverse needs the projection", arguments: [
        ("balance + 0", "balance"), ("(balance)", "balance"), ("balance::integer", "balance"), ("bid", "balance"),
        ("Balance", "Balance"), ("user", "user"), ("\"BALANCE\"", "balance"), ("t.balance", "balance"), ("", "balance"),
    ])
    func expressionInverse(inverse: String, newName: String) {
        let (m, n) = Self.with(inverse: inverse, newName: newName)
        guard case let .projection(reason) = ReadForm.decide(m, old: Self.old, new: n) else {
            Issue.record("expected the projection for \(inverse) on \(newName)")
            return
        }
        #expect(reason.contains("column 3 (abalance) is read as"), "\(reason)")
    }

    @Test("another column count, order, type or collation, or an unknown catalog, needs the projection")
    func projection() {
        func reason(_ m: MigrationConfig = Self.migration, old: [RelationColumn] = Self.old, new: [RelationColumn]) -> String? {
            if case let .projection(reason) = ReadForm.decide(m, old: old, new: new) { return reason }
            return nil
        }
        #expect(reason(new: Self.new + [RelationColumn(name: "tenant_id", type: "integer", collation: 0)])
            == "public.pgbench_accounts_v2 has 5 columns, 4 are mapped")
        #expect(reason(new: Array(Self.new.dropLast())) == "public.pgbench_accounts_v2 has 3 columns, 4 are mapped")
        let swapped = [Self.new[1], Self.new[0], Self.new[2], Self.new[3]]
        #expect(reason(new: swapped)?.contains("column 1 (aid) is read as `aid`, not as public.pgbench_accounts_v2.bid") == true)
        var widened = Self.new
        widened[2].type = "bigint"
        #expect(reason(new: widened) == "column 3 (abalance) is integer, balance is bigint")
        var padded = Self.new
        padded[3].type = "character(100)"
        #expect(reason(new: padded) == "column 4 (filler) is character(84), filler is character(100)")
        var collated = Self.new
        collated[3].collation = 950
        #expect(reason(new: collated) == "column 4 (filler) and filler have different collations")
        #expect(reason(new: []) == "the columns of public.pgbench_accounts_v2 are not known")
        #expect(reason(old: [], new: Self.new) == "the columns of public.pgbench_accounts are not known")
        var unmapped = Self.migration
        unmapped.columns[0] = ColumnMapping(oldColumn: "account", newColumn: "aid")
        #expect(reason(unmapped, new: Self.new) == "public.pgbench_accounts has no column account")
    }

    @Test("the route catalog carries the old types in mapping order and the form into the flag's route")
    func routeCatalog() {
        let catalog = RouteCatalog(migration: Self.migration, old: Self.old, new: Self.new)
        #expect(catalog.oldColumnTypes == ["integer", "integer", "integer", "character(84)"])
        let flag = FlagState(flag: FlagConfig(name: "accounts_v2", migration: "accounts_v2"), migration: Self.migration, catalog: catalog)
        #expect(flag.route.directColumns == ["aid", "bid", "abalance"])
        let unread = FlagState(flag: FlagConfig(name: "accounts_v2", migration: "accounts_v2"), migration: Self.migration)
        #expect(unread.route.directColumns == nil)
        // The form is part of the route's identity: plans cached for one never serve the other.
        #expect(flag.route != unread.route)
        #expect(flag.route.hashValue != unread.route.hashValue)

        let partial = RouteCatalog(migration: Self.migration, old: Array(Self.old.prefix(2)), new: [])
        #expect(partial.oldColumnTypes == ["integer", "integer", nil, nil])
        #expect(partial.form.directColumns == nil)
    }
}
