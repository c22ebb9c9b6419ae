// Tests proving the test harness itself: the real PostgreSQL cluster, its auth methods, and the process helpers.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite(.timeLimit(.minutes(3)))
struct HarnessTests {
    @Test func sharedClusterAnswersSelectOne() throws {
        let cluster = try PostgresCluster.shared()
        #expect(try cluster.psql("select 1") == "1")
        #expect(try PostgresCluster.shared() === cluster, "one cluster per test process")
        #expect(try cluster.psql("select current_database()", database: "app") == "app")
        #expect(try cluster.psql("select rolsuper from pg_roles where rolname = 'switchyard'") == "t")
        #expect(try cluster.psql("show max_connections") == "1200")
        try waitForTCPPort(cluster.port, timeout: .seconds(5))
    }

    struct Login: Sendable, CustomTestStringConvertible {
        let user: String
        let password: String
        /// How the password must be stored: md5 for md5_user, a SCRAM verifier for the others.
        let storedPrefix: String
        var testDescription: String { user }
    }

    @Test(arguments: [
        Login(user: "md5_user", password: "md5_pass", storedPrefix: "md5"),
        Login(user: "scram_user", password: "scram_pass", storedPrefix: "SCRAM-SHA-256$"),
        Login(user: "clear_user", password: "clear_pass", storedPrefix: "SCRAM-SHA-256$"),
    ])
    func passwordLoginOverTCP(_ login: Login) throws {
        let cluster = try PostgresCluster.shared()
        let good = try psqlOverTCP(cluster, user: login.user, password: login.password)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == login.user)

        let bad = try psqlOverTCP(cluster, user: login.user, password: "wrong-" + login.password)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("password authentication failed for user \"\(login.user)\""), "\(bad.stderr)")

        let stored = try cluster.psql("select rolpassword from pg_authid where rolname = '\(login.user)'")
        #expect(stored.hasPrefix(login.storedPrefix), "\(login.user) stored as \(stored.prefix(16))…")
    }

    @Test func runProcessTimesOut() throws {
        let started = ContinuousClock.now
        #expect(throws: HarnessError.self) {
            try runProcess("sleep", ["30"], timeout: .seconds(1))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func runProcessCapturesLargeOutputAndStdin() throws {
        // 1 MiB on each stream, more than a pipe buffer, written stderr first: reading only
        // stdout until its end would deadlock.
        let big = try runProcess(
            "sh", ["-c", "head -c 1048576 /dev/zero | tr '\\0' e >&2; head -c 1048576 /dev/zero | tr '\\0' o; exit 3"])
        #expect(big.status == 3)
        #expect(big.stdout.utf8.count == 1_048_576)
        #expect(big.stderr.utf8.count == 1_048_576)

        let echoed = try runProcess("cat", [], stdin: "hello\nworld\n")
        #expect(echoed.status == 0)
        #expect(echoed.stdout == "hello\nworld\n")

        let environment = try runProcess("sh", ["-c", "echo \"$SWITCHYARD_PROBE\""], environment: ["SWITCHYARD_PROBE": "42"])
        #expect(environment.stdout == "42\n")
    }

    @Test func childProcessSignalsAndTerminates() throws {
        let log = NSTemporaryDirectory() + "/switchyard-harness-child-\(getpid()).log"
        defer { unlink(log) }
        let child = try ChildProcess.start(
            executable: "sh", arguments: ["-c", "echo started; trap 'echo got-usr1' USR1; while :; do sleep 0.05; done"],
            stdoutPath: log)
        #expect(child.waitForExit(timeout: .milliseconds(200)) == nil)
        #expect(child.isRunning)
        #expect(child.sendSignal(SIGUSR1))
        // The trap runs between sleeps.
        let deadline = ContinuousClock.now + .seconds(5)
        while !child.outputTail().contains("got-usr1"), ContinuousClock.now < deadline {
            usleep(20_000)
        }
        #expect(child.outputTail().contains("started\ngot-usr1"))
        #expect(child.terminate() == 128 + SIGTERM)
        #expect(!child.isRunning)
        #expect(!child.sendSignal(SIGTERM), "a reaped child is never signalled")
    }

    @Test func waitForTCPPortGivesUpOnAClosedPort() {
        let port = freeTCPPort()
        #expect(port > 0 && port < 65_536)
        #expect(freeTCPPort() != port)
        let started = ContinuousClock.now
        #expect(throws: HarnessError.self) {
            try waitForTCPPort(port, timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func ownClusterRestartsOnTheSamePortAndStops() throws {
        let cluster = try PostgresCluster.start(extraConf: ["work_mem": "8MB"])
        defer { cluster.stop() }
        #expect(try cluster.psql("show work_mem") == "8MB")
        _ = try cluster.psql("create table survives (x int); insert into survives values (7)", database: "app")
        let firstPID = try #require(cluster.postmasterPID)

        try cluster.restart()
        let secondPID = try #require(cluster.postmasterPID)
        #expect(secondPID != firstPID)
        #expect(kill(firstPID, 0) != 0, "the first postmaster is gone")
        #expect(try cluster.psql("select x from survives", database: "app") == "7")

        cluster.stopServer()
        #expect(cluster.postmasterPID == nil)
        #expect(kill(secondPID, 0) != 0, "the second postmaster is gone")
        #expect(throws: HarnessError.self) { try cluster.psql("select 1") }
        try cluster.startServer()
        #expect(try cluster.psql("select 1") == "1")

        cluster.stop()
        #expect(!FileManager.default.fileExists(atPath: cluster.baseDirectory))
    }

    @Test func pathsPointIntoThisPackage() throws {
        #expect(FileManager.default.fileExists(atPath: packageRootDirectory + "/Package.swift"))
        #expect(try findExecutable("sh").hasSuffix("/sh"))
        #expect(throws: HarnessError.self) { try findExecutable("switchyard-no-such-tool") }
    }

    /// What `make test` provides before the tests run: the switchyard binary next to the test
    /// bundle, and the virtualenv with psycopg for the Python client tests.
    @Test func prerequisitesFromMakeArePresent() throws {
        let binary = try switchyardBinaryPath
        #expect(access(binary, X_OK) == 0)
        let python = try pythonForTests
        let check = try runProcess(python, ["-c", "import psycopg; print(psycopg.__version__)"], timeout: .seconds(60))
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.hasPrefix("3."))
    }

    private func psqlOverTCP(_ cluster: PostgresCluster, user: String, password: String) throws -> ProcessResult {
        try runProcess(
            cluster.psqlPath,
            ["-X", "-A", "-t", "-w", "-h", cluster.host, "-p", String(cluster.port), "-U", user, "-d", "postgres",
             "-c", "select current_user"],
            environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"], timeout: .seconds(30))
    }
}
