// Runs psql scenarios directly against PostgreSQL and through Switchyard and requires the same stdout, stderr and exit status.
import COpenSSL
import Foundation
import Glibc
import SwitchyardTestSupport
import Synchronization
import Testing

@Suite(.serialized, .timeLimit(.minutes(10)))
struct PsqlClientTests {
    let cluster: PostgresCluster
    let database: String

    init() throws {
        cluster = try PostgresCluster.shared()
        database = try psqlSuiteDatabase(cluster)
    }

    // MARK: - Scripts

    @Test func multiStatementStrings() throws {
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, ["-c", "select 1; select 2;"])
            expectIdentical(both, "select 1; select 2;")
            #expect(both.direct.status == 0)
            #expect(both.direct.stdout.contains("        1\n(1 row)") && both.direct.stdout.contains("        2\n(1 row)"))

            let transaction = try runBothWays(
                proxy,
                ["-c", "begin; create temp table psql_multi (a int); insert into psql_multi values (1), (2), (39); "
                    + "select sum(a) from psql_multi; commit;"])
            expectIdentical(transaction, "multi-statement transaction")
            #expect(transaction.direct.stdout.contains("42"))

            let failing = try runBothWays(proxy, ["-c", "select 1; select 1/0; select 3"])
            expectIdentical(failing, "multi-statement string with an error")
            #expect(failing.direct.status == 1)
            #expect(failing.direct.stderr.contains("ERROR:  division by zero"))
            #expect(!failing.direct.stdout.contains("3\n(1 row)"), "nothing runs after the error")

            let several = try runBothWays(proxy, ["-c", "select 'first'", "-c", "select 'second'", "-A", "-t"])
            expectIdentical(several, "several -c options")
            #expect(several.direct.stdout == "first\nsecond\n")
        }
    }

    @Test func transactionWithAnErrorAndRollback() throws {
        let script = """
            create table psql_tx (id int primary key, note text);
            \\set ON_ERROR_STOP off
            begin;
            insert into psql_tx values (1, 'kept until rollback');
            insert into psql_tx values (1, 'duplicate');
            \\echo sqlstate :SQLSTATE error :ERROR
            select 'ignored';
            \\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
            rollback;
            select count(*) as rows_after_rollback from psql_tx;
            begin;
            insert into psql_tx values (2, 'savepoint base');
            savepoint s1;
            insert into psql_tx values (2, 'duplicate');
            rollback to savepoint s1;
            insert into psql_tx values (3, 'after savepoint');
            commit;
            select id, note from psql_tx order by id;
            drop table psql_tx;

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, [], stdin: script)
            expectIdentical(both, "transaction script")
            #expect(both.direct.status == 0)
            #expect(both.direct.stderr.contains("duplicate key value violates unique constraint \"psql_tx_pkey\""))
            #expect(both.direct.stderr.contains("current transaction is aborted, commands ignored until end of transaction block"))
            #expect(both.direct.stdout.contains("sqlstate 23505 error true"))
            #expect(both.direct.stdout.contains("ROLLBACK\n rows_after_rollback \n---------------------\n                   0\n"))
            #expect(both.direct.stdout.contains("  2 | savepoint base\n  3 | after savepoint\n(2 rows)"))

            // With ON_ERROR_STOP psql gives up at the first error and exits 3.
            let stopped = try runBothWays(proxy, [], stdin: "select 1;\nselect 1/0;\nselect 'never';\n")
            expectIdentical(stopped, "ON_ERROR_STOP script")
            #expect(stopped.direct.status == 3)
            #expect(stopped.direct.stderr == "ERROR:  division by zero\n")
            #expect(!stopped.direct.stdout.contains("never"))
        }
    }

    @Test func gsetVariables() throws {
        let script = """
            select 21 as half, 'switch' as tag \\gset
            select :half * 2 as answer, :'tag' || 'yard' as name;
            \\echo half=:half tag=:tag
            select 1 as a, 'two' as b \\gset pre_
            \\echo :pre_a :pre_b
            select :pre_a + :half as sum \\gset
            \\echo sum=:sum

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, [], stdin: script)
            expectIdentical(both, "\\gset script")
            #expect(both.direct.status == 0)
            #expect(both.direct.stdout.contains("     42 | switchyard"))
            #expect(both.direct.stdout.contains("half=21 tag=switch\n1 two\nsum=22\n"))
        }
    }

    @Test func copyBothWays() throws {
        let script = """
            create table psql_copy (id int primary key, name text, note text);
            \\copy psql_copy from stdin
            1\tone\t\\N
            2\ttwo\ttab\\there
            3\tthree\tback\\\\slash
            \\.
            copy psql_copy from stdin with (format csv);
            4,four,"comma, inside"
            5,five,
            \\.
            \\copy psql_copy to stdout
            \\copy (select id, name from psql_copy order by id) to stdout with (format csv, header)
            copy (select * from psql_copy order by id) to stdout with (format csv, force_quote *);
            copy (select id, upper(name) from psql_copy where id > 3 order by id) to stdout;
            select count(*) from psql_copy;
            \\set ON_ERROR_STOP off
            \\copy psql_copy from stdin
            6\tsix\tx
            not-a-number\tseven\ty
            \\.
            copy psql_copy from stdin;
            4\tduplicate\tz
            \\.
            \\set ON_ERROR_STOP on
            select count(*) as after_errors from psql_copy;
            drop table psql_copy;

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, [], stdin: script)
            expectIdentical(both, "COPY script")
            #expect(both.direct.status == 0)
            let out = both.direct.stdout
            #expect(out.contains("COPY 3\nCOPY 2\n"))
            #expect(out.contains("1\tone\t\\N\n2\ttwo\ttab\\there\n3\tthree\tback\\\\slash\n4\tfour\tcomma, inside\n5\tfive\t\\N\n"))
            #expect(out.contains("id,name\n1,one\n2,two\n3,three\n4,four\n5,five\n"))
            #expect(out.contains("\"1\",\"one\",\n\"2\",\"two\",\"tab\there\"\n"))
            #expect(out.contains("4\tFOUR\n5\tFIVE\n"))
            #expect(both.direct.stderr.contains("invalid input syntax for type integer: \"not-a-number\""))
            #expect(both.direct.stderr.contains("duplicate key value violates unique constraint \"psql_copy_pkey\""))
            #expect(out.contains(" after_errors \n--------------\n            5\n"))
        }
    }

    @Test func hundredThousandRowResult() throws {
        let query = "select g, md5(g::text) from generate_series(1,100000) g"
        #expect(sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, ["-A", "-t", "-c", query], timeout: .seconds(120))
            #expect(both.direct.status == 0 && both.proxied.status == 0, "\(both.direct.stderr)\(both.proxied.stderr)")
            #expect(both.direct.stderr == both.proxied.stderr)
            let directLines = both.direct.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let proxiedLines = both.proxied.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            // 100000 rows, each ending in a newline.
            #expect(directLines.count == 100_001)
            #expect(proxiedLines.count == directLines.count, "rows through switchyard: \(proxiedLines.count - 1)")
            #expect(directLines.first == "1|c4ca4238a0b923820dcc509a6f75849b")
            #expect(proxiedLines.dropLast().last?.hasPrefix("100000|") == true)
            let directDigest = sha256Hex(Array(both.direct.stdout.utf8))
            let proxiedDigest = sha256Hex(Array(both.proxied.stdout.utf8))
            #expect(directDigest == proxiedDigest, "sha256 of the 100k-row output differs")
            if directDigest != proxiedDigest {
                let firstDifference = zip(directLines, proxiedLines).enumerated().first { $0.element.0 != $0.element.1 }
                Issue.record("first differing line \(firstDifference.map { "\($0.offset + 1): direct \($0.element.0) / through switchyard \($0.element.1)" } ?? "none (one is a prefix of the other)")")
            }

            // The same rows fetched with a cursor, 1000 at a time (FETCH_COUNT), in aligned format.
            let fetched = try runBothWays(proxy, ["-v", "FETCH_COUNT=1000", "-c", query], timeout: .seconds(120))
            #expect(fetched.direct.status == 0 && fetched.proxied.status == 0, "\(fetched.direct.stderr)\(fetched.proxied.stderr)")
            #expect(fetched.direct.stdout.hasSuffix("(100000 rows)\n\n"))
            #expect(sha256Hex(Array(fetched.direct.stdout.utf8)) == sha256Hex(Array(fetched.proxied.stdout.utf8)))
            #expect(fetched.direct.stderr == fetched.proxied.stderr)
        }
    }

    @Test func catalogQueries() throws {
        let script = """
            create table psql_catalog (
                id serial primary key,
                name text not null default 'x' unique,
                amount numeric(10, 2) check (amount >= 0),
                created timestamptz default now()
            );
            create index psql_catalog_created on psql_catalog (created);
            create view psql_catalog_view as select id, name from psql_catalog;
            comment on table psql_catalog is 'catalog test table';
            \\d psql_catalog
            \\d+ psql_catalog
            \\dt+ psql_catalog*
            \\dv psql_catalog*
            \\di psql_catalog*
            \\ds psql_catalog*
            \\df pg_sleep
            \\dT int4
            \\dn public
            \\dp psql_catalog
            select relname, relkind from pg_class where relname like 'psql_catalog%' order by relname;
            drop view psql_catalog_view;
            drop table psql_catalog;

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, [], stdin: script)
            expectIdentical(both, "catalog script")
            #expect(both.direct.status == 0)
            #expect(both.direct.stdout.contains("Table \"public.psql_catalog\""))
            #expect(both.direct.stdout.contains("\"psql_catalog_pkey\" PRIMARY KEY, btree (id)"))
            #expect(both.direct.stdout.contains("catalog test table"))
            #expect(both.direct.stdout.contains("psql_catalog_id_seq"))
        }
    }

    @Test func preparedStatementsAndDescribe() throws {
        let script = """
            prepare psql_double(int) as select $1 * 2 as doubled;
            execute psql_double(21);
            execute psql_double(-1);
            prepare psql_text(text, int) as select repeat($1, $2) as repeated;
            execute psql_text('ab', 3);
            select name, statement, parameter_types from pg_prepared_statements order by name;
            deallocate psql_double;
            execute psql_double(1);
            deallocate all;
            select count(*) as remaining from pg_prepared_statements;
            select 1 as a, 'x'::text as b, now() as c \\gdesc

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, ["-v", "ON_ERROR_STOP=0"], stdin: script)
            expectIdentical(both, "PREPARE/EXECUTE script")
            #expect(both.direct.stdout.contains("      42\n(1 row)"))
            #expect(both.direct.stdout.contains(" ababab\n"))
            #expect(both.direct.stdout.contains("{text,integer}"))
            #expect(both.direct.stderr.contains("prepared statement \"psql_double\" does not exist"))
            #expect(both.direct.stdout.contains(" c      | timestamp with time zone"))
        }
    }

    @Test func noticesAndWarnings() throws {
        let script = """
            DO $$ begin raise notice 'hello %', 1; end $$;
            DO $$ begin raise warning 'careful: %', 'two'; raise info 'info line'; end $$;
            set client_min_messages = warning;
            DO $$ begin raise notice 'suppressed'; raise warning 'still shown'; end $$;
            reset client_min_messages;
            \\set VERBOSITY verbose
            DO $$ begin raise notice using message = 'verbose notice', detail = 'some detail', hint = 'a hint', errcode = '01000'; end $$;
            \\set VERBOSITY default
            \\set ON_ERROR_STOP off
            DO $$ begin raise exception 'boom %', 42 using detail = 'the detail', hint = 'the hint'; end $$;
            select 'after the exception' as still_running;

            """
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, [], stdin: script)
            expectIdentical(both, "notices script")
            let err = both.direct.stderr
            #expect(err.hasPrefix("NOTICE:  hello 1\n"))
            #expect(err.contains("WARNING:  careful: two\n"))
            #expect(err.contains("INFO:  info line\n"))
            #expect(!err.contains("suppressed"))
            #expect(err.contains("WARNING:  still shown\n"))
            #expect(err.contains("NOTICE:  01000: verbose notice\nDETAIL:  some detail\nHINT:  a hint\n"))
            #expect(err.contains("ERROR:  boom 42\nDETAIL:  the detail\nHINT:  the hint\n"))
            #expect(both.direct.stdout.contains("after the exception"))
        }
    }

    // MARK: - LISTEN/NOTIFY

    @Test func listenNotifyPrintsTheAsynchronousNotification() throws {
        try ProxyFixture.with { proxy in
            let both = try runBothWays(proxy, ["-c", "LISTEN ch; NOTIFY ch, 'payload';", "-c", "select 1;"])
            expectIdentical(both, "LISTEN/NOTIFY")
            let line = "Asynchronous notification \"ch\" with payload \"payload\" received from server process with PID <pid>."
            #expect(both.direct.stdout.contains(line), "direct: \(both.direct.stdout)")
            #expect(both.proxied.stdout.contains(line), "through switchyard: \(both.proxied.stdout)")
            // The PID is the proxied session's real backend, not a made-up one.
            #expect(both.proxied.rawStdout.firstMatch(of: #/with PID [1-9][0-9]*\./#) != nil)

            // pg_notify() inside a script: psql reports the notification after the query's result.
            let script = """
                LISTEN ch2;
                select pg_notify('ch2', 'from psql itself');
                select 'polled';

                """
            let own = try runBothWays(proxy, [], stdin: script)
            expectIdentical(own, "pg_notify from a script")
            #expect(own.direct.stdout.contains(
                "Asynchronous notification \"ch2\" with payload \"from psql itself\" received from server process with PID <pid>."))
        }
    }

    // MARK: - Cancel

    @Test func sigintCancelsARunningQuery() throws {
        try ProxyFixture.with { proxy in
            let direct = try cancelledSleep(port: cluster.port, applicationName: "psql_cancel_direct")
            let proxied = try cancelledSleep(port: proxy.port, applicationName: "psql_cancel_proxied")
            for (label, run) in [("direct", direct), ("through switchyard", proxied)] {
                #expect(run.status == 1, "psql \(label) exited \(run.status.map(String.init) ?? "not at all within 10 s"): \(run.output)")
                #expect(run.output.contains("canceling statement due to user request"), "\(label): \(run.output)")
                #expect(run.elapsed < .seconds(10), "\(label): \(run.elapsed)")
            }
            #expect(direct.output == proxied.output)
            // The proxy is still usable and the cancelled backend is idle or gone.
            #expect(try proxy.psql("select 'alive'", database: database) == "alive")
            let leftovers = try cluster.psql(
                "select count(*) from pg_stat_activity where application_name like 'psql_cancel_%' and state = 'active'")
            #expect(leftovers == "0")
        }
    }

    private struct CancelRun {
        var status: Int32?
        var output: String
        var elapsed: Duration
    }

    /// Starts `psql -c "select pg_sleep(60)"`, waits until the backend sleeps, sends psql SIGINT.
    private func cancelledSleep(port: Int, applicationName: String) throws -> CancelRun {
        let log = NSTemporaryDirectory() + "/switchyard-psql-cancel-\(getpid())-\(applicationName).log"
        unlink(log)
        defer { unlink(log) }
        let child = try ChildProcess.start(
            executable: cluster.psqlPath,
            arguments: baseArguments(port: port) + ["-c", "select pg_sleep(60)"],
            environment: ["PGCONNECT_TIMEOUT": "10", "PGAPPNAME": applicationName],
            stdoutPath: log)
        defer {
            if child.isRunning { child.terminate(gracePeriod: .seconds(2)) }
        }
        let sleeping = try waitUntilSleeping(applicationName: applicationName)
        try #require(sleeping, "psql (\(applicationName)) never reached pg_sleep: \(child.outputTail())")
        let started = ContinuousClock.now
        #expect(child.sendSignal(SIGINT))
        let status = child.waitForExit(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - started
        return CancelRun(status: status, output: child.outputTail(), elapsed: elapsed)
    }

    private func waitUntilSleeping(applicationName: String) throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let active = try cluster.psql(
                "select count(*) from pg_stat_activity where application_name = '\(applicationName)' "
                    + "and state = 'active' and wait_event = 'PgSleep'")
            if active == "1" {
                return true
            }
            usleep(50_000)
        }
        return false
    }

    // MARK: - Authentication and SSL negotiation

    struct Login: Sendable, CustomTestStringConvertible {
        let user: String
        let password: String
        var testDescription: String { user }
    }

    @Test(arguments: [
        Login(user: "md5_user", password: "md5_pass"),
        Login(user: "scram_user", password: "scram_pass"),
        Login(user: "clear_user", password: "clear_pass"),
    ])
    func passwordAuthenticationPassesThrough(_ login: Login) throws {
        try ProxyFixture.with { proxy in
            let good = try runBothWays(
                proxy, ["-A", "-t", "-c", "select current_user"], user: login.user,
                environment: ["PGPASSWORD": login.password])
            expectIdentical(good, "\(login.user) with the right password")
            #expect(good.direct.status == 0, "\(good.direct.stderr)")
            #expect(good.proxied.status == 0, "\(good.proxied.stderr)")
            #expect(good.proxied.stdout == login.user + "\n")

            let bad = try runBothWays(
                proxy, ["-A", "-t", "-c", "select current_user"], user: login.user,
                environment: ["PGPASSWORD": "wrong-" + login.password])
            expectIdentical(bad, "\(login.user) with a wrong password")
            #expect(bad.proxied.status == 2)
            #expect(bad.proxied.stderr.contains("password authentication failed for user \"\(login.user)\""), "\(bad.proxied.stderr)")

            let none = try runBothWays(proxy, ["-A", "-t", "-c", "select current_user"], user: login.user)
            expectIdentical(none, "\(login.user) without a password")
            #expect(none.proxied.status == 2)
            #expect(none.proxied.stderr.contains("no password supplied"), "\(none.proxied.stderr)")
        }
    }

    @Test func sslModesBehaveAsDirectly() throws {
        try ProxyFixture.with { proxy in
            for mode in ["disable", "allow", "prefer"] {
                let both = try runBothWays(proxy, ["-A", "-t", "-c", "select 'connected'"], environment: ["PGSSLMODE": mode])
                expectIdentical(both, "sslmode=\(mode)")
                #expect(both.proxied.status == 0, "sslmode=\(mode): \(both.proxied.stderr)")
                #expect(both.proxied.stdout == "connected\n")
            }
            let required = try runBothWays(proxy, ["-A", "-t", "-c", "select 'connected'"], environment: ["PGSSLMODE": "require"])
            expectIdentical(required, "sslmode=require")
            #expect(required.proxied.status == 2)
            #expect(required.proxied.stderr.contains("SSL"), "\(required.proxied.stderr)")
            #expect(required.proxied.stderr.contains("server does not support SSL, but SSL was required"))
        }
    }

    // MARK: - Running psql both ways

    /// One psql run with its output normalised; `rawStdout` keeps the original.
    struct PsqlResult {
        var status: Int32
        var stdout: String
        var stderr: String
        var rawStdout: String
    }

    struct BothWays {
        var direct: PsqlResult
        var proxied: PsqlResult
    }

    private func baseArguments(port: Int, user: String = "postgres") -> [String] {
        ["-X", "-w", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database]
    }

    private func runPsql(
        port: Int, _ arguments: [String], stdin: String?, user: String, environment: [String: String], timeout: Duration
    ) throws -> PsqlResult {
        var env = ["PGCONNECT_TIMEOUT": "10"]
        env.merge(environment) { $1 }
        let result = try runProcess(
            cluster.psqlPath, baseArguments(port: port, user: user) + arguments, environment: env, stdin: stdin,
            timeout: timeout)
        return PsqlResult(
            status: result.status, stdout: normalise(result.stdout, port: port), stderr: normalise(result.stderr, port: port),
            rawStdout: result.stdout)
    }

    /// Runs the same psql command directly, then through the proxy.
    private func runBothWays(
        _ proxy: ProxyFixture, _ arguments: [String], stdin: String? = nil, user: String = "postgres",
        environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) throws -> BothWays {
        let direct = try runPsql(
            port: cluster.port, arguments, stdin: stdin, user: user, environment: environment, timeout: timeout)
        let proxied = try runPsql(
            port: proxy.port, arguments, stdin: stdin, user: user, environment: environment, timeout: timeout)
        return BothWays(direct: direct, proxied: proxied)
    }

    /// Only what legitimately differs: the port psql names in errors, and backend PIDs.
    private func normalise(_ text: String, port: Int) -> String {
        text.replacingOccurrences(of: "port \(port) ", with: "port <port> ")
            .replacing(#/server process with PID [0-9]+/#, with: "server process with PID <pid>")
    }

    private func expectIdentical(_ both: BothWays, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            both.direct.status == both.proxied.status,
            """
            \(label): exit status \(both.direct.status) directly, \(both.proxied.status) through switchyard
            stderr directly: \(both.direct.stderr)
            stderr through switchyard: \(both.proxied.stderr)
            """,
            sourceLocation: sourceLocation)
        for (stream, a, b) in [("stdout", both.direct.stdout, both.proxied.stdout), ("stderr", both.direct.stderr, both.proxied.stderr)]
        where a != b {
            Issue.record(
                Comment(rawValue: "\(label): \(stream) differs (direct vs through switchyard)\n\(lineDiff(a, b))"),
                sourceLocation: sourceLocation)
        }
    }
}

/// The suite's database, created once per test process (dropped first if a crashed run left it).
private let psqlSuiteDatabaseCreated = Mutex<Bool>(false)

private func psqlSuiteDatabase(_ cluster: PostgresCluster) throws -> String {
    let name = "sy_psql_clients"
    try psqlSuiteDatabaseCreated.withLock { created in
        guard !created else { return }
        _ = try cluster.psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        _ = try cluster.psql("CREATE DATABASE \(name)")
        created = true
    }
    return name
}

/// The first lines where two outputs differ, for failure messages.
private func lineDiff(_ a: String, _ b: String, context: Int = 3, maxLines: Int = 30) -> String {
    let left = a.split(separator: "\n", omittingEmptySubsequences: false)
    let right = b.split(separator: "\n", omittingEmptySubsequences: false)
    guard let first = zip(left, right).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
        ?? (left.count != right.count ? min(left.count, right.count) : nil)
    else { return "(identical)" }
    let start = max(0, first - context)
    var lines = ["first difference at line \(first + 1) (direct \(left.count) lines, through switchyard \(right.count) lines)"]
    for index in start..<min(max(left.count, right.count), start + maxLines) {
        let l = index < left.count ? String(left[index]) : "<none>"
        let r = index < right.count ? String(right[index]) : "<none>"
        lines.append(l == r ? "  \(l)" : "- \(l)\n+ \(r)")
    }
    return lines.joined(separator: "\n")
}

// MARK: - SHA-256

/// SHA-256 of `bytes` as lower-case hex, by OpenSSL, to compare large outputs compactly.
private func sha256Hex(_ bytes: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    bytes.withUnsafeBytes { raw in
        _ = EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_sha256(), nil)
    }
    return digest.map { b in
        let hex = String(b, radix: 16)
        return hex.count == 1 ? "0" + hex : hex
    }.joined()
}
