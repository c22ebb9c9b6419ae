// Tests of statement classification (read/write/ddl/transaction control/utility) for every statement family.
import SwitchyardSQL
import Testing

struct KindCase: Sendable, CustomTestStringConvertible {
    var sql: String
    var kind: StatementKind
    var lockingRead = false
    var testDescription: String { sql }
}

@Suite("Statement kinds")
struct StatementKindTests {
    static let cases: [KindCase] = [
        // Reads.
        KindCase(sql: "SELECT 1", kind: .read),
        KindCase(sql: "VALUES (1), (2)", kind: .read),
        KindCase(sql: "TABLE users", kind: .read),
        KindCase(sql: "SHOW search_path", kind: .read),
        KindCase(sql: "EXPLAIN SELECT * FROM t", kind: .read),
        KindCase(sql: "EXPLAIN DELETE FROM t", kind: .read),
        KindCase(sql: "EXPLAIN (ANALYZE false) DELETE FROM t", kind: .read),
        KindCase(sql: "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t", kind: .read),
        KindCase(sql: "SELECT * FROM t FOR UPDATE", kind: .read, lockingRead: true),
        KindCase(sql: "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", kind: .read, lockingRead: true),
        KindCase(sql: "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)", kind: .read, lockingRead: true),
        KindCase(sql: "COPY t TO STDOUT", kind: .read),
        KindCase(sql: "COPY (SELECT * FROM t) TO STDOUT", kind: .read),
        KindCase(sql: "DECLARE c CURSOR FOR SELECT * FROM t", kind: .read),
        // Writes.
        KindCase(sql: "INSERT INTO t VALUES (1)", kind: .write),
        KindCase(sql: "UPDATE t SET a = 1", kind: .write),
        KindCase(sql: "DELETE FROM t", kind: .write),
        KindCase(sql: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", kind: .write),
        KindCase(sql: "COPY t FROM STDIN", kind: .write),
        KindCase(sql: "COPY (DELETE FROM t RETURNING *) TO STDOUT", kind: .write),
        KindCase(sql: "SELECT * INTO n FROM t", kind: .write),
        KindCase(sql: "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", kind: .write),
        KindCase(sql: "EXPLAIN ANALYZE DELETE FROM t", kind: .write),
        KindCase(sql: "EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)", kind: .write),
        KindCase(sql: "TRUNCATE t", kind: .write),
        KindCase(sql: "REFRESH MATERIALIZED VIEW mv", kind: .write),
        KindCase(sql: "CALL do_things(1)", kind: .write),
        KindCase(sql: "DO $$ BEGIN PERFORM 1; END $$", kind: .write),
        // DDL.
        KindCase(sql: "CREATE TABLE t (id int PRIMARY KEY)", kind: .ddl),
        KindCase(sql: "ALTER TABLE t ADD COLUMN b text", kind: .ddl),
        KindCase(sql: "DROP TABLE t", kind: .ddl),
        KindCase(sql: "CREATE INDEX CONCURRENTLY i ON t (b)", kind: .ddl),
        KindCase(sql: "CREATE TABLE n AS SELECT * FROM t", kind: .ddl),
        KindCase(sql: "CREATE VIEW v AS SELECT 1", kind: .ddl),
        KindCase(sql: "CREATE SCHEMA s", kind: .ddl),
        KindCase(sql: "CREATE SEQUENCE s", kind: .ddl),
        KindCase(sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", kind: .ddl),
        KindCase(sql: "CREATE EXTENSION IF NOT EXISTS pgcrypto", kind: .ddl),
        KindCase(sql: "COMMENT ON TABLE t IS 'x'", kind: .ddl),
        KindCase(sql: "GRANT SELECT ON t TO r", kind: .ddl),
        KindCase(sql: "REVOKE ALL ON t FROM r", kind: .ddl),
        KindCase(sql: "CREATE ROLE r", kind: .ddl),
        KindCase(sql: "ALTER TYPE mood ADD VALUE 'meh'", kind: .ddl),
        // Transaction control.
        KindCase(sql: "BEGIN", kind: .transactionControl),
        KindCase(sql: "BEGIN ISOLATION LEVEL SERIALIZABLE", kind: .transactionControl),
        KindCase(sql: "START TRANSACTION READ ONLY", kind: .transactionControl),
        KindCase(sql: "COMMIT", kind: .transactionControl),
        KindCase(sql: "END", kind: .transactionControl),
        KindCase(sql: "ROLLBACK", kind: .transactionControl),
        KindCase(sql: "ABORT", kind: .transactionControl),
        KindCase(sql: "SAVEPOINT s1", kind: .transactionControl),
        KindCase(sql: "RELEASE SAVEPOINT s1", kind: .transactionControl),
        KindCase(sql: "ROLLBACK TO SAVEPOINT s1", kind: .transactionControl),
        KindCase(sql: "PREPARE TRANSACTION 'tx1'", kind: .transactionControl),
        KindCase(sql: "COMMIT PREPARED 'tx1'", kind: .transactionControl),
        KindCase(sql: "ROLLBACK PREPARED 'tx1'", kind: .transactionControl),
        // Utility.
        KindCase(sql: "SET search_path TO app", kind: .utility),
        KindCase(sql: "SET LOCAL statement_timeout = '5s'", kind: .utility),
        KindCase(sql: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", kind: .utility),
        KindCase(sql: "SET CONSTRAINTS ALL DEFERRED", kind: .utility),
        KindCase(sql: "RESET ALL", kind: .utility),
        KindCase(sql: "DISCARD ALL", kind: .utility),
        KindCase(sql: "LISTEN events", kind: .utility),
        KindCase(sql: "UNLISTEN *", kind: .utility),
        KindCase(sql: "NOTIFY events, 'payload'", kind: .utility),
        KindCase(sql: "PREPARE q (int) AS SELECT $1", kind: .utility),
        KindCase(sql: "EXECUTE q (1)", kind: .utility),
        KindCase(sql: "DEALLOCATE ALL", kind: .utility),
        KindCase(sql: "FETCH 10 FROM c", kind: .utility),
        KindCase(sql: "MOVE NEXT IN c", kind: .utility),
        KindCase(sql: "CLOSE c", kind: .utility),
        KindCase(sql: "VACUUM (VERBOSE) t", kind: .utility),
        KindCase(sql: "ANALYZE t", kind: .utility),
        KindCase(sql: "CLUSTER t USING i", kind: .utility),
        KindCase(sql: "REINDEX TABLE t", kind: .utility),
        KindCase(sql: "CHECKPOINT", kind: .utility),
        KindCase(sql: "LOAD 'auto_explain'", kind: .utility),
        KindCase(sql: "LOCK TABLE t", kind: .utility),
        KindCase(sql: "ALTER SYSTEM SET work_mem = '64MB'", kind: .utility),
        // Not understood.
        KindCase(sql: "SELEC 1", kind: .unknown),
    ]

    @Test(arguments: cases)
    func kind(_ testCase: KindCase) throws {
        let analysis = try #require(SQLAnalyzer.analyze(testCase.sql).first)
        #expect(analysis.kind == testCase.kind)
        #expect(analysis.lockingRead == testCase.lockingRead)
        #expect(analysis.isParseError == (testCase.kind == .unknown))
    }

    @Test("statement types name libpg_query's nodes")
    func statementTypes() {
        let types = SQLAnalyzer.analyze("SELECT 1; INSERT INTO t VALUES (1); CREATE TABLE x (a int); BEGIN")
            .map(\.statementType)
        #expect(types == ["SelectStmt", "InsertStmt", "CreateStmt", "TransactionStmt"])
    }

    @Test("ORDER BY is reported for the top-level query only")
    func orderBy() {
        func hasOrderBy(_ sql: String) -> Bool? { SQLAnalyzer.analyze(sql).first?.hasOrderBy }
        #expect(hasOrderBy("SELECT * FROM t ORDER BY a") == true)
        #expect(hasOrderBy("SELECT a FROM t UNION SELECT a FROM u ORDER BY 1") == true)
        #expect(hasOrderBy("SELECT * FROM (SELECT * FROM t ORDER BY a) s") == false)
        #expect(hasOrderBy("SELECT * FROM t") == false)
        #expect(hasOrderBy("DELETE FROM t") == false)
    }
}
