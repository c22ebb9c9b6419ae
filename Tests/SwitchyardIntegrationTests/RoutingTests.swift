// Reads of a migrated table are served from its new table for the canary cohort, with the SQL unchanged.
import Foundation
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardTestSupport
import Testing

@Suite("Read routing through the proxy", .serialized)
struct RoutingTests {
    static let database = "sy_routing"

    /// The users tables in `database` (this suite's by default; suites running in parallel use their own).
    static func prepare(_ cluster: PostgresCluster, database: String = RoutingTests.database) throws {
        _ = try? cluster.psql("create database \(database)")
        _ = try cluster.psql("""
            drop table if exists users, users_v2;
            create table users (id int primary key, name text not null, created timestamp not null);
            create table users_v2 (id int primary key, full_name text not null, created_at timestamptz not null, tenant_id int not null default 0);
            insert into users select g, 'old-' || g, timestamp '2024-01-01' + g * interval '1 hour' from generate_series(1, 50) g;
            insert into users_v2 select g, 'new-' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', 0 from generate_series(1, 50) g;
            """, database: database)
    }

    static let yaml = """
        upstream: postgresql://switchyard@127.0.0.1:5432/postgres
        migrations:
          - name: users_v2
            old: public.users
            new: public.users_v2
            key: [id]
            columns:
              id: id
              name: full_name
              created: { new: created_at, forward: "created AT TIME ZONE 'UTC'", inverse: "created_at AT TIME ZONE 'UTC'" }
        flags:
          - name: users_v2
            migration: users_v2
            stage: canary
            percent: 50
            cohort_key: [comment:cohort, setting:switchyard.cohort, application_name]
        """

    /// A proxy with the users_v2 migration and flag, and a control schema of the test's own
    /// (flag state persists there, so tests must not share one unless they mean to).
    static func withProxy(controlSchema: String = "sy_ctl_\(UInt32.random(in: 0...UInt32.max))", _ body: (ProxyFixture) throws -> Void) throws {
        try ProxyFixture.with(configure: { configure(&$0, controlSchema: controlSchema) }, body)
    }

    /// A proxy configured by `yaml` whose upstream is `upstreamDatabase`: the control thread
    /// reads the catalog of the upstream database, so it must be the one holding the tables.
    static func withProxy(
        yaml: String, upstreamDatabase: String, cluster: PostgresCluster,
        controlSchema: String = "sy_ctl_\(UInt32.random(in: 0...UInt32.max))", controlDatabase: String? = nil,
        _ body: (ProxyFixture) throws -> Void
    ) throws {
        let parsed = try ConfigLoader.parse(yaml: yaml)
        let upstream = try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(cluster.port)/\(upstreamDatabase)")
        let control = try controlDatabase.map { try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(cluster.port)/\($0)") }
        try ProxyFixture.with(configure: { c in
            c.upstream = upstream
            c.migrations = parsed.migrations
            c.flags = parsed.flags
            c.control.schema = controlSchema
            c.control.database = control
        }, body)
    }

    /// The routing configuration on a fixture's upstream, pointed at `database`: the migrations
    /// are the upstream database's, and sessions in other databases are not routed.
    static func configure(_ c: inout SwitchyardConfiguration, controlSchema: String, database: String = RoutingTests.database) {
        let parsed = try! ConfigLoader.parse(yaml: yaml)
        c.upstream = try! UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(c.upstream.port)/\(database)")
        c.migrations = parsed.migrations
        c.flags = parsed.flags
        c.control.schema = controlSchema
    }

    static let inside = (0..<1000).map { "tenant-\($0)" }.first { CohortBucketing.isInCanary(salt: "users_v2", key: $0, percentBasisPoints: 5000) }!
    static let outside = (0..<1000).map { "tenant-\($0)" }.first { !CohortBucketing.isInCanary(salt: "users_v2", key: $0, percentBasisPoints: 5000) }!

    @Test("a session in another database of the cluster than the upstream's is passed through, not routed")
    func otherDatabase() throws {
        let cluster = try PostgresCluster.shared()
        let other = "sy_routing_elsewhere"
        try Self.prepare(cluster)
        try Self.prepare(cluster, database: other)
        try Self.withProxy { proxy in
            let routed = "/*cohort='\(Self.inside)'*/ select name from users where id = 3"
            #expect(try PQConnection(proxy.connectionString(database: Self.database)).query(routed) == [["new-3"]])
            // Its users is another table: the upstream database's migrations say nothing of it.
            let elsewhere = try PQConnection(proxy.connectionString(database: other))
            #expect(try elsewhere.query(routed) == [["old-3"]])
            try elsewhere.query("update users set name = 'changed' where id = 3")
            #expect(try cluster.psql("select full_name from users_v2 where id = 3", database: other) == "new-3", "no write mirrored there")
        }
    }

    @Test("canary cohort reads the new table under the old names; the rest read the old table")
    func canaryReads() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try Self.withProxy { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            // No cohort key: application_name is unset by libpq here, so the old path.
            #expect(try conn.query("select name from users where id = 7") == [["old-7"]])
            #expect(try conn.query("/*cohort='\(Self.inside)'*/ select name from users where id = 7") == [["new-7"]])
            #expect(try conn.query("/*cohort='\(Self.outside)'*/ select name from users where id = 7") == [["old-7"]])
            // Column names, order and types are the old table's.
            #expect(try conn.query("/*cohort='\(Self.inside)'*/ select * from users where id = 2")
                == [["2", "new-2", "2024-01-01 02:00:00"]])
            #expect(try conn.query("/*cohort='\(Self.inside)'*/ select u.id, u.name from users u join users v on u.id = v.id where u.id < 3 order by 1")
                == [["1", "new-1"], ["2", "new-2"]])
            // A session setting selects the cohort for every later statement.
            try conn.query("set switchyard.cohort = '\(Self.inside)'")
            #expect(try conn.query("select name from users where id = 9") == [["new-9"]])
            // Writes still go to the old table.
            try conn.query("update users set name = 'changed' where id = 9")
            #expect(try cluster.psql("select name from users where id = 9", database: Self.database) == "changed")
            // A locking read stays on the old path and is reported.
            #expect(try conn.query("select name from users where id = 9 for update") == [["changed"]])
            // A transaction opened by a BEGIN (which concerns no flag) is counted for its cohort
            // at its first statement that does.
            try conn.query("begin")
            #expect(try conn.query("/*cohort='explicit-transaction'*/ select count(*) from users where id = 3") == [["1"]])
            try conn.query("commit")
            let cohorts = try proxy.psql("show cohorts", database: "switchyard")
            #expect(cohorts.contains("users_v2|explicit-transaction|"), "\(cohorts)")
            #expect(cohorts.contains("users_v2|\(Self.inside)|"), "\(cohorts)")
            #expect(cohorts.contains("|new|"))
            #expect(cohorts.contains("users_v2|\(Self.outside)|"))
            let routing = try proxy.psql("show routing", database: "switchyard")
            #expect(routing.contains("locking read"))
            let metrics = try httpGet(port: try #require(proxy.adminPort), path: "/metrics").body
            #expect(metrics.contains("switchyard_flag_stage{flag=\"users_v2\",stage=\"canary\"} 1"))
            #expect(metrics.contains("switchyard_routing_fallbacks_total 1"))
            let routedLine = metrics.split(separator: "\n").first { $0.hasPrefix("switchyard_routed_reads_total{flag=\"users_v2\"}") }
            #expect((routedLine?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 4)
        }
    }

    /// The answer to `sql` in a new session of `user`, asked until it is `expected` or 15 s have
    /// passed: the control thread reads role settings and the catalog at start, and a session
    /// that began before it did has neither.
    static func answerOnceRead(_ proxy: ProxyFixture, user: String, database: String, _ sql: String,
                               expected: [[String?]]) throws -> [[String?]] {
        let deadline = ContinuousClock.now + .seconds(15)
        var answer: [[String?]] = []
        while ContinuousClock.now < deadline {
            answer = try PQConnection(proxy.connectionString(user: user, database: database)).query(sql)
            if answer == expected { break }
            usleep(50_000)
        }
        return answer
    }

    /// `body` against a proxy in front of `database`, prepared, where `sql` has made `schema` and
    /// `roles` (dropped before it runs, and again after `body`).
    static func withSchemaAndRoles(database: String, schema: String, roles: [String], _ sql: String,
                                   _ body: (ProxyFixture) throws -> Void) throws {
        let cluster = try PostgresCluster.shared()
        try prepare(cluster, database: database)
        let drop = "drop schema if exists \(schema) cascade; " + roles.map { "drop role if exists \($0);" }.joined(separator: " ")
        _ = try cluster.psql(drop + "\n" + sql, database: database)
        defer { _ = try? cluster.psql(drop, database: database) }
        try withProxy(yaml: yaml, upstreamDatabase: database, cluster: cluster, body)
    }

    @Test("a session starts with the search_path and the cohort setting its role and database give it; its own SET wins")
    func roleSettings() throws {
        let database = "sy_role_settings"
        try Self.withSchemaAndRoles(database: database, schema: "rs_other", roles: ["sy_rs_inside", "sy_rs_other"], """
            create schema rs_other;
            create table rs_other.users (id int primary key, name text not null, created timestamp not null);
            insert into rs_other.users values (3, 'other-3', timestamp '2024-01-01');
            create role sy_rs_inside login;
            create role sy_rs_other login;
            grant select on users, users_v2 to sy_rs_inside, sy_rs_other;
            grant usage on schema rs_other to sy_rs_other;
            grant select on rs_other.users to sy_rs_other;
            alter role sy_rs_inside in database \(database) set switchyard.cohort = '\(Self.inside)';
            alter role sy_rs_other set search_path = rs_other, public;
            alter role sy_rs_other set switchyard.cohort = '\(Self.inside)';
            """) { proxy in
            // The role's cohort is in the canary: its reads are served by the new table.
            #expect(try Self.answerOnceRead(proxy, user: "sy_rs_inside", database: database, "select name from users where id = 3",
                                            expected: [["new-3"]]) == [["new-3"]])
            let inside = try PQConnection(proxy.connectionString(user: "sy_rs_inside", database: database))
            try inside.query("set switchyard.cohort = '\(Self.outside)'")
            #expect(try inside.query("select name from users where id = 3") == [["old-3"]])
            // The role's search_path finds rs_other.users first: PostgreSQL reads it, and the
            // router, resolving `users` through the same search_path, leaves it alone. The statement
            // says its cohort is in the canary: taking the name for public.users would read users_v2.
            let other = try PQConnection(proxy.connectionString(user: "sy_rs_other", database: database))
            #expect(try other.query("/*cohort='\(Self.inside)'*/ select name from users where id = 3") == [["other-3"]])
            #expect(try other.query("select name from public.users where id = 3") == [["new-3"]])
            // A role with no settings: the default cohort key source is application_name.
            let plain = try PQConnection(proxy.connectionString(database: database))
            try plain.query("set switchyard.cohort = '\(Self.outside)'")
            #expect(try plain.query("select name from users where id = 3") == [["old-3"]])
        }
    }

    @Test("a role's own schema that holds an old relation's name is found through $user, as PostgreSQL finds it")
    func userSchema() throws {
        let database = "sy_user_schema"
        try Self.withSchemaAndRoles(database: database, schema: "sy_us_own", roles: ["sy_us_own", "sy_us_plain"], """
            create role sy_us_own login;
            create role sy_us_plain login;
            create schema sy_us_own authorization sy_us_own;
            create table sy_us_own.users (id int primary key, name text not null, created timestamp not null);
            insert into sy_us_own.users values (3, 'own-3', timestamp '2024-01-01');
            grant select on sy_us_own.users to sy_us_own;
            grant select on users, users_v2 to sy_us_own, sy_us_plain;
            """) { proxy in
            // PostgreSQL's default search_path, "$user", public, finds sy_us_own.users: taking the
            // name for public.users would read users_v2 for a statement in the canary.
            let routed = "/*cohort='\(Self.inside)'*/ select name from users where id = 3"
            #expect(try Self.answerOnceRead(proxy, user: "sy_us_own", database: database, routed, expected: [["own-3"]]) == [["own-3"]])
            let own = try PQConnection(proxy.connectionString(user: "sy_us_own", database: database))
            #expect(try own.query("/*cohort='\(Self.inside)'*/ select name from public.users where id = 3") == [["new-3"]])
            try own.query("set search_path = public")
            #expect(try own.query(routed) == [["new-3"]])
            // A role with no schema of its own: $user finds nothing, users is public.users, routed.
            let plain = try PQConnection(proxy.connectionString(user: "sy_us_plain", database: database))
            #expect(try plain.query(routed) == [["new-3"]])
        }
    }

    @Test("a new table with the old row shape is read directly once the catalog is read; another shape through the projection",
          arguments: [false, true])
    func directForm(separateControlDatabase: Bool) throws {
        let cluster = try PostgresCluster.shared()
        _ = try? cluster.psql("create database \(Self.database)")
        _ = try cluster.psql("""
            drop table if exists accounts, accounts_v2;
            create table accounts (aid int primary key, bid int, abalance int, filler char(20));
            create table accounts_v2 (aid int primary key, bid int, balance int, filler char(20));
            insert into accounts select g, g % 3, g * 10, 'old' from generate_series(1, 20) g;
            insert into accounts_v2 select g, g % 3, g * 100, 'new' from generate_series(1, 20) g;
            """, database: Self.database)
        let yaml = Self.yaml.replacingOccurrences(of: "\nflags:\n", with: """

              - name: accounts_v2
                old: public.accounts
                new: public.accounts_v2
                key: [aid]
                columns:
                  aid: aid
                  bid: bid
                  abalance: balance
                  filler: filler
            flags:
              - name: accounts_v2
                migration: accounts_v2
                stage: live

            """)
        try #require(yaml.contains("abalance: balance"))
        // With the control schema in another database, the catalog is still read in the upstream's.
        try Self.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster,
                           controlDatabase: separateControlDatabase ? "postgres" : nil) { proxy in
            // The control thread reads the catalog shortly after start.
            let deadline = ContinuousClock.now + .seconds(15)
            func route(_ flag: String) -> ReadRoute? { proxy.server.context.routing.current.flags.first { $0.name == flag }?.route }
            while route("accounts_v2")?.directColumns == nil, ContinuousClock.now < deadline { usleep(20_000) }
            #expect(route("accounts_v2")?.directColumns == ["aid", "bid", "abalance"])
            // users_v2 has an extra column and another type for created: the projection stays.
            #expect(route("users_v2")?.directColumns == nil)
            // SHOW FLAGS names the form reads take.
            let flags = try proxy.psql("show flags", database: "switchyard")
            #expect(flags.contains("public.accounts_v2 AS accounts(aid, bid, abalance)"), "\(flags)")
            #expect(flags.contains("(SELECT "), "\(flags)")

            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            #expect(try conn.query("select abalance from accounts where aid = 3") == [["300"]])
            #expect(try conn.query("select a.abalance, a.filler from accounts a where a.aid = $1", parameters: ["4"])
                == [["400", "new" + String(repeating: " ", count: 17)]])
            #expect(try conn.query("select * from accounts as x(k) where k = 5") == [["5", "2", "500", "new" + String(repeating: " ", count: 17)]])
            #expect(try conn.query("select x.bid, sum(x.abalance) from accounts x join accounts y using (aid) where y.aid <= 6 group by x.bid order by 1")
                == [["0", "900"], ["1", "500"], ["2", "700"]])
            // A locking read stays on the old table.
            #expect(try conn.query("select abalance from accounts where aid = 3 for share") == [["30"]])
        }
    }

    @Test("prepared statements are routed at Parse, and SET FLAG applies from the next transaction")
    func preparedAndFlip() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try Self.withProxy { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("set switchyard.cohort = '\(Self.outside)'")
            #expect(try conn.query("select name from users where id = 3") == [["old-3"]])
            try conn.query("begin")
            #expect(try proxy.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
            // Inside the open transaction the path does not change.
            #expect(try conn.query("select name from users where id = 3") == [["old-3"]])
            try conn.query("commit")
            #expect(try conn.query("select name from users where id = 3") == [["new-3"]])
            // The extended protocol (PQexecParams: Parse, Bind, Execute) is routed at Parse too.
            #expect(try conn.query("select name from users where id = $1", parameters: ["4"]) == [["new-4"]])
            let flags = try proxy.psql("show flags", database: "switchyard")
            #expect(flags.contains("live"))
            #expect(try proxy.psql("set flag users_v2 to shadow", database: "switchyard").isEmpty)
            #expect(try conn.query("select name from users where id = 3") == [["old-3"]])
            #expect(try conn.query("select name from users where id = $1", parameters: ["4"]) == [["old-4"]])
        }
    }
}

extension RoutingTests {
    @Test("latency per flag, cohort and path: SHOW LATENCY and /metrics, in both protocols")
    func latencyPerCohort() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try Self.withProxy { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            for i in 1...6 {
                #expect(try conn.query("/*cohort='\(Self.inside)'*/ select name from users where id = \(i)") == [["new-\(i)"]])
                #expect(try conn.query("/*cohort='\(Self.outside)'*/ select name from users where id = \(i)") == [["old-\(i)"]])
            }
            try conn.prepare("canary_read", "/*cohort='\(Self.inside)'*/ select name from users where id = $1")
            for i in 1...4 { #expect(try conn.execute(prepared: "canary_read", parameters: ["\(i)"]) == [["new-\(i)"]]) }
            // A failed read counts as a request and as an error of its cohort and path.
            #expect(throws: PQConnection.Failure.self) { try conn.query("/*cohort='\(Self.inside)'*/ select name from users where id = 1 / (id - id)") }
            try conn.query("select 1")
            let shown = try proxy.psql("show latency", database: "switchyard")
            let rows = shown.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
            func sum(_ cohort: String, _ path: String, column: Int) -> Int {
                rows.filter { $0.count == 10 && $0[0] == "users_v2" && $0[1] == "served" && $0[2] == cohort && $0[3] == path }
                    .compactMap { Int($0[column]) }.reduce(0, +)
            }
            #expect(sum("canary", "new", column: 5) == 11, "\(shown)")
            #expect(sum("canary", "new", column: 6) == 1, "\(shown)")
            #expect(sum("control", "old", column: 5) == 6, "\(shown)")
            #expect(sum("control", "old", column: 6) == 0, "\(shown)")
            let port = try #require(proxy.adminPort)
            let (status, text) = try httpGet(port: port, path: "/metrics")
            #expect(status == 200)
            #expect(text.contains("switchyard_routed_read_duration_seconds_count{flag=\"users_v2\",cohort=\"canary\",path=\"new\"} 11"), "\(text)")
            #expect(text.contains("switchyard_routed_read_duration_seconds_count{flag=\"users_v2\",cohort=\"control\",path=\"old\"} 6"), "\(text)")
        }
    }

    @Test("named prepared statements follow flips from the next transaction, both ways, invisibly")
    func preparedStatementsFollowFlips() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try Self.withProxy { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("set switchyard.cohort = '\(Self.outside)'")
            try conn.prepare("by_id", "select name, created from users where id = $1")
            try conn.prepare("count_all", "select count(*) from users")
            func byID(_ id: Int) throws -> String? { try conn.execute(prepared: "by_id", parameters: ["\(id)"]).first?.first ?? nil }
            #expect(try byID(3) == "old-3")

            try conn.query("begin")
            #expect(try proxy.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
            // Inside the open transaction the statement keeps its path.
            #expect(try byID(3) == "old-3")
            try conn.query("commit")
            // From the next transaction it reads the new table, with the old columns and types.
            #expect(try byID(3) == "new-3")
            #expect(try conn.execute(prepared: "by_id", parameters: ["4"]) == [["new-4", "2024-01-01 04:00:00"]])
            #expect(try conn.execute(prepared: "count_all", parameters: []) == [["50"]])

            // A flip back (a guardrail's step back) reaches it too.
            #expect(try proxy.psql("set flag users_v2 to shadow", database: "switchyard").isEmpty)
            #expect(try byID(3) == "old-3")

            // DEALLOCATE is seen: the name can be prepared again, and the new statement is routed.
            try conn.query("deallocate by_id")
            try conn.prepare("by_id", "select name || '!' from users where id = $1")
            #expect(try proxy.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
            #expect(try byID(5) == "new-5!")
            #expect(try proxy.psql("set flag users_v2 to shadow", database: "switchyard").isEmpty)
            #expect(try byID(5) == "old-5!")

            // A cohort SET in a transaction that rolls back is undone, as PostgreSQL undoes it.
            try conn.query("begin")
            try conn.query("set switchyard.cohort = '\(Self.inside)'")
            try conn.query("rollback")
            #expect(try conn.query("show switchyard.cohort") == [[Self.outside]])
            #expect(try proxy.psql("set flag users_v2 to canary 50", database: "switchyard").isEmpty)
            #expect(try byID(5) == "old-5!")
            try conn.query("set switchyard.cohort = '\(Self.inside)'")
            #expect(try byID(5) == "new-5!")
            try conn.query("set switchyard.cohort = '\(Self.outside)'")
            #expect(try byID(5) == "old-5!")

            // When the new path cannot prepare (its table is gone), the statement keeps the old
            // path and the client sees no error.
            _ = try cluster.psql("alter table users_v2 rename to users_v2_away", database: Self.database)
            defer { _ = try? cluster.psql("alter table users_v2_away rename to users_v2", database: Self.database) }
            #expect(try proxy.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
            #expect(try byID(6) == "old-6!")
            #expect(try conn.execute(prepared: "count_all", parameters: []) == [["50"]])
        }
    }

    @Test("the cohort setting follows PostgreSQL's own: set_config with constants or bound values, savepoints, DISCARD ALL")
    func cohortSettingAsPostgresHasIt() throws {
        let cluster = try PostgresCluster.shared()
        try Self.prepare(cluster)
        try Self.withProxy { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            /// The path a read takes, checked against the setting PostgreSQL holds.
            func path(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
                let name = try conn.query("select name from users where id = 7")[0][0] ?? ""
                let setting = try conn.query("select coalesce(current_setting('switchyard.cohort', true), '')")[0][0] ?? ""
                let path = name.hasPrefix("new") ? "new" : "old"
                #expect(path == (setting == Self.inside ? "new" : "old"), "\(step): PostgreSQL has '\(setting)', the read went to the \(path) path",
                        sourceLocation: sourceLocation)
                return path
            }
            #expect(try path("start") == "old")
            // Constants, in the simple protocol.
            _ = try conn.query("select set_config('switchyard.cohort', '\(Self.inside)', false)")
            #expect(try path("set_config constant") == "new")
            // A bound value (Parse, Bind, Execute of an unnamed statement).
            _ = try conn.query("select set_config('switchyard.cohort', $1, false)", parameters: [Self.outside])
            #expect(try path("set_config bound") == "old")
            // A named statement executed with other values each time, name and is_local bound too.
            try conn.prepare("cohort", "select set_config($1, $2, $3)")
            _ = try conn.execute(prepared: "cohort", parameters: ["switchyard.cohort", Self.inside, "off"])
            #expect(try path("prepared set_config") == "new")
            // is_local: for the transaction only.
            try conn.query("begin")
            _ = try conn.execute(prepared: "cohort", parameters: ["Switchyard.Cohort", Self.outside, "true"])
            #expect(try path("set_config local") == "old")
            try conn.query("commit")
            #expect(try path("after the local one") == "new")

            // Savepoints: ROLLBACK TO undoes the SETs made after the savepoint, RELEASE keeps them.
            try conn.query("begin")
            try conn.query("savepoint before_any_set")
            try conn.query("set switchyard.cohort = '\(Self.outside)'")
            try conn.query("savepoint s1")
            try conn.query("set switchyard.cohort = '\(Self.inside)'")
            #expect(try path("in s1") == "new")
            try conn.query("rollback to savepoint s1")
            #expect(try path("rolled back to s1") == "old")
            _ = try conn.query("select set_config('switchyard.cohort', $1, false)", parameters: [Self.inside])
            try conn.query("release s1")
            #expect(try path("released s1") == "new")
            try conn.query("rollback to before_any_set")
            #expect(try path("rolled back to a savepoint made before any SET") == "new")
            try conn.query("set switchyard.cohort = '\(Self.outside)'")
            try conn.query("commit")
            #expect(try path("committed") == "old")

            // DISCARD ALL resets every setting (and closes the prepared statements).
            try conn.query("set switchyard.cohort = '\(Self.inside)'")
            #expect(try path("set again") == "new")
            try conn.query("discard all")
            #expect(try path("discarded") == "old")
            try conn.prepare("cohort", "select set_config('switchyard.cohort', $1, false)")
            _ = try conn.execute(prepared: "cohort", parameters: [Self.inside])
            #expect(try path("prepared again after DISCARD ALL") == "new")

            // A value given at startup (libpq's options, PGOPTIONS) holds until a SET, and again after RESET.
            let started = try PQConnection(proxy.connectionString(database: Self.database) + " options='-c switchyard.cohort=\(Self.inside)'")
            func startedPath() throws -> String { (try started.query("select name from users where id = 7")[0][0] ?? "").hasPrefix("new") ? "new" : "old" }
            #expect(try started.query("show switchyard.cohort") == [[Self.inside]])
            #expect(try startedPath() == "new")
            try started.query("set switchyard.cohort = '\(Self.outside)'")
            #expect(try startedPath() == "old")
            try started.query("reset switchyard.cohort")
            #expect(try started.query("show switchyard.cohort") == [[Self.inside]])
            #expect(try startedPath() == "new")
        }
    }
}

@Suite("search_path routing (versioned schemas)", .serialized)
struct SearchPathRoutingTests {
    static let database = "sy_searchpath"

    @Test("the canary cohort's session is moved to the new schema at a transaction boundary, invisibly")
    func searchPathFlag() throws {
        let cluster = try PostgresCluster.shared()
        _ = try? cluster.psql("create database \(Self.database)")
        _ = try cluster.psql("""
            drop schema if exists app_v1, app_v2 cascade;
            create schema app_v1; create schema app_v2;
            create table app_v1.users (id int primary key, name text);
            insert into app_v1.users values (1, 'one');
            create view app_v2.users as select id, upper(name) as name from app_v1.users;
            """, database: Self.database)
        let yaml = """
            upstream: postgresql://switchyard@127.0.0.1:5432/postgres
            migrations:
              - name: users_v2
                old: app_v1.users
                new: app_v2.users
                key: [id]
                columns: { id: id, name: name }
            flags:
              - name: users_v2
                migration: users_v2
                stage: canary
                percent: 50
                routing: { search_path: { old: app_v1, new: app_v2 } }
            """
        try RoutingTests.withProxy(yaml: yaml, upstreamDatabase: Self.database, cluster: cluster) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            try conn.query("set search_path to app_v1")
            #expect(try conn.query("/*cohort='\(RoutingTests.outside)'*/ select name from users") == [["one"]])
            // The SET Switchyard sends is invisible: one result, the client's.
            #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ select name from users") == [["ONE"]])
            #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ show search_path") == [["app_v2"]])
            // A statement without a cohort key belongs to no canary: back to the old schema.
            #expect(try conn.query("show search_path") == [["app_v1"]])
            #expect(try conn.query("/*cohort='\(RoutingTests.outside)'*/ select name, 2 from users") == [["one", "2"]])
            // Extended protocol and a pipeline of several statements still line up.
            #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ select name from users where id = $1", parameters: ["1"]) == [["ONE"]])
            #expect(try conn.query("select 1; select 2") == [["2"]])
            // DISCARD ALL (a pooler's reset) and RESET search_path put the default search_path
            // back: the session is moved again at its next statement of the canary cohort.
            for reset in ["discard all", "reset search_path", "set search_path to public"] {
                #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ select name from users") == [["ONE"]], "\(reset)")
                // In the cohort: no statement of Switchyard's runs before it.
                try conn.query("/*cohort='\(RoutingTests.inside)'*/ \(reset)")
                #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ select name from users") == [["ONE"]], "after \(reset)")
            }
        }
    }
}
