// `switchyard check` validates a config's migrations against the live database, in words a DBA acts on.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite("switchyard check", .serialized)
struct CheckCommandTests {
    /// A database of this suite's own: the routing suite runs in parallel and recreates its tables.
    static let database = "sy_check"

    static func run(_ yaml: String, cluster: PostgresCluster) throws -> ProcessResult {
        let path = NSTemporaryDirectory() + "switchyard-check-\(UUID().uuidString).yaml"
        try yaml.replacingOccurrences(of: "127.0.0.1:5432/postgres", with: "127.0.0.1:\(cluster.port)/\(Self.database)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        return try runProcess(try switchyardBinaryPath, ["check", "--config", path], timeout: .seconds(60))
    }

    /// public.TABLE (aid, abalance) and public.TABLE_v2 (aid, balance), made anew in this suite's
    /// database, then `sql` run there.
    static func accountsTables(_ table: String, then sql: String) throws -> PostgresCluster {
        let cluster = try PostgresCluster.shared()
        _ = try? cluster.psql("create database \(Self.database)")
        _ = try cluster.psql("""
            drop table if exists \(table), \(table)_v2;
            create table \(table) (aid int primary key, abalance int);
            create table \(table)_v2 (aid int primary key, balance int);
            \(sql)
            """, database: Self.database)
        return cluster
    }

    /// Migration accounts_v2 from public.TABLE (aid, abalance) to public.TABLE_v2 (aid, balance).
    static func accountsYAML(_ table: String) -> String {
        """
        upstream: postgresql://switchyard@127.0.0.1:5432/postgres
        migrations:
          - name: accounts_v2
            old: public.\(table)
            new: public.\(table)_v2
            key: [aid]
            columns: { aid: aid, abalance: balance }

        """
    }

    @Test("a correct migration passes, with a warning where a cast brings the type back")
    func good() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        let result = try Self.run(RoutingTests.yaml, cluster: cluster)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("OK  users_v2: public.users -> public.users_v2: 3 columns mapped"))
        #expect(result.stdout.contains("OK  users_v2: reads on the new path go through a projection of public.users_v2 (public.users_v2 has 4 columns, 3 are mapped)"),
                "\(result.stdout)")
        #expect(result.stdout.contains("0 error(s)"))
    }

    @Test("the form reads take is named: the new table directly when it has the old row shape, else a projection and why")
    func readForm() throws {
        let cluster = try PostgresCluster.shared()
        _ = try? cluster.psql("create database \(Self.database)")
        _ = try cluster.psql("""
            drop table if exists check_accounts, check_accounts_v2, check_branches, check_accounts_v3;
            create table check_accounts (aid int primary key, bid int, abalance int, filler char(84));
            create table check_branches (aid int primary key, bid int, abalance int, filler char(84));
            create table check_accounts_v2 (aid int primary key, bid int, balance int, filler char(84));
            create table check_accounts_v3 (aid int primary key, bid int, balance bigint, filler char(84));
            """, database: Self.database)
        let yaml = """
            upstream: postgresql://switchyard@127.0.0.1:5432/postgres
            migrations:
              - name: accounts_v2
                old: public.check_accounts
                new: public.check_accounts_v2
                key: [aid]
                columns:
                  aid: aid
                  bid: bid
                  abalance: balance
                  filler: filler
              - name: accounts_v3
                old: public.check_branches
                new: public.check_accounts_v3
                key: [aid]
                columns:
                  aid: aid
                  bid: bid
                  abalance: balance
                  filler: filler
            """
        let result = try Self.run(yaml, cluster: cluster)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("OK  accounts_v2: reads on the new path reference public.check_accounts_v2 directly (same row shape)"),
                "\(result.stdout)")
        #expect(result.stdout.contains("OK  accounts_v3: reads on the new path go through a projection of public.check_accounts_v3 "
                                       + "(column 3 (abalance) is integer, balance is bigint)"), "\(result.stdout)")
    }

    @Test("mistakes are named: unknown column, unmapped column, wrong key, broken expression")
    func bad() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        let yaml = RoutingTests.yaml
            .replacingOccurrences(of: "    key: [id]", with: "    key: [name]")
            .replacingOccurrences(of: "created: { new: created_at, forward: \"created AT TIME ZONE 'UTC'\", inverse: \"created_at AT TIME ZONE 'UTC'\" }",
                                  with: "nickname: { new: created_at, inverse: \"created_at + 'nope'\" }")
        let result = try Self.run(yaml, cluster: cluster)
        #expect(result.status == 1)
        let out = result.stdout
        #expect(out.contains("public.users has no column nickname"), "\(out)")
        #expect(out.contains("created of public.users are not mapped"), "\(out)")
        #expect(out.contains("the primary key of public.users is (id), not (name)"), "\(out)")
        #expect(out.contains("columns.nickname.inverse `created_at + 'nope'` does not work on public.users_v2"), "\(out)")
    }

    @Test("BEFORE ROW triggers on either table are named, with what they do to mirrored writes; other triggers are not")
    func beforeTriggers() throws {
        let cluster = try Self.accountsTables("trig_accounts", then: """
            create or replace function trig_keep() returns trigger language plpgsql as $$ begin return new; end $$;
            create trigger skip_some before insert or update on trig_accounts_v2 for each row execute function trig_keep();
            create trigger stamp before update on trig_accounts for each row execute function trig_keep();
            create trigger audit after insert on trig_accounts_v2 for each row execute function trig_keep();
            create trigger off_one before insert on trig_accounts_v2 for each row execute function trig_keep();
            alter table trig_accounts_v2 disable trigger off_one;
            """)
        let result = try Self.run(Self.accountsYAML("trig_accounts"), cluster: cluster)
        let out = result.stdout
        #expect(result.status == 0, "\(out)\(result.stderr)")
        #expect(out.contains("WARNING  accounts_v2: trigger skip_some on public.trig_accounts_v2 runs BEFORE INSERT OR UPDATE FOR EACH ROW"), "\(out)")
        #expect(out.contains("a mirrored INSERT or UPDATE reports the rows it upserted into public.trig_accounts_v2"), "\(out)")
        #expect(out.contains("WARNING  accounts_v2: trigger stamp on public.trig_accounts runs BEFORE UPDATE FOR EACH ROW: at live"), "\(out)")
        #expect(!out.contains("audit"), "an AFTER trigger changes nothing mirrored: \(out)")
        #expect(!out.contains("off_one"), "a disabled trigger does not run: \(out)")
        #expect(out.contains("0 error(s)"))
    }

    @Test("another relation of the old relation's name is a warning; the search_path and cohort settings roles and databases give their sessions are named with what routing does with them")
    func unseenResolution() throws {
        let cluster = try Self.accountsTables("chk_accounts", then: """
            drop schema if exists chk_other cascade;
            drop role if exists chk_app;
            create schema chk_other;
            create table chk_other.chk_accounts (aid int);
            create role chk_app;
            alter role chk_app in database \(Self.database) set search_path = chk_other, public;
            alter database \(Self.database) set switchyard.cohort = 'everyone';
            alter database \(Self.database) set work_mem = '8MB';
            """)
        defer {
            _ = try? cluster.psql("""
                alter database \(Self.database) reset switchyard.cohort;
                alter database \(Self.database) reset work_mem;
                drop role if exists chk_app;
                drop schema if exists chk_other cascade;
                """, database: Self.database)
        }
        let yaml = Self.accountsYAML("chk_accounts") + """
            flags:
              - name: accounts_v2
                migration: accounts_v2

            """
        let result = try Self.run(yaml, cluster: cluster)
        let out = result.stdout
        #expect(result.status == 0, "\(out)\(result.stderr)")
        #expect(out.contains("WARNING  accounts_v2: chk_other.chk_accounts has the name of public.chk_accounts: Switchyard follows the search_path"), "\(out)")
        #expect(out.contains("OK  -: ALTER ROLE chk_app IN DATABASE sy_check SET search_path = chk_other, public: Switchyard resolves their unqualified table names with it"), "\(out)")
        #expect(out.contains("OK  -: ALTER DATABASE sy_check SET switchyard.cohort = everyone: Switchyard takes their cohort key for setting:switchyard.cohort from it"), "\(out)")
        #expect(!out.contains("work_mem"), "a setting routing does not use is not named: \(out)")
        #expect(out.contains("0 error(s)"))

        // Without them, nothing is said.
        _ = try cluster.psql("""
            alter database \(Self.database) reset switchyard.cohort;
            drop role chk_app;
            drop schema chk_other cascade;
            """, database: Self.database)
        let clean = try Self.run(yaml, cluster: cluster).stdout
        // (Other suites running meanwhile may give roles settings of their own.)
        #expect(!clean.contains("has the name of") && !clean.contains("chk_app") && !clean.contains("ALTER DATABASE sy_check"), "\(clean)")
    }

    @Test("a missing new relation is an error that says to create it")
    func missingNew() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        let result = try Self.run(RoutingTests.yaml.replacingOccurrences(of: "new: public.users_v2", with: "new: public.users_v3"), cluster: cluster)
        #expect(result.status == 1)
        #expect(result.stdout.contains("new relation public.users_v3 does not exist"))
    }
}
