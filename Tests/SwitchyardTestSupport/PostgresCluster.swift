// A real, throwaway PostgreSQL server in a temporary directory, with the roles and auth methods the tests need.
import Foundation
import Glibc
import Synchronization

/// A PostgreSQL cluster created with initdb in a fresh directory under /tmp and run as a child
/// of the test process on a free loopback port.
///
/// `shared()` gives the one cluster of the test process; `start()` gives a private one (for tests
/// that restart or stop the server, which would disturb every other test on the shared one).
/// Both are stopped and removed when the process exits.
///
/// Authentication (pg_hba.conf): Unix socket trust; over TCP `md5_user` (password `md5_pass`,
/// stored as md5) by md5, `scram_user` (`scram_pass`) by scram-sha-256, `clear_user`
/// (`clear_pass`) by cleartext password, everyone else trust. `switchyard` is a superuser;
/// database `app` exists besides `postgres`.
public final class PostgresCluster: Sendable {
    public let host = "127.0.0.1"
    public let port: Int
    /// The temporary directory holding everything below; removed by `stop()`.
    public let baseDirectory: String
    public let dataDirectory: String
    /// Where the Unix socket `.s.PGSQL.<port>` lives (the base directory).
    public let socketDirectory: String
    public let binDirectory: String
    /// The server's log (its stdout and stderr), appended across restarts.
    public let logPath: String
    public let superuser = "postgres"
    /// The psql binary of the same PostgreSQL version as the server.
    public let psqlPath: String
    public let extraConf: [String: String]

    /// Set when running as root, since PostgreSQL refuses to: initdb and postgres then run as the
    /// `postgres` OS user through runuser.
    private let runAs: RunAs?
    private let server = Mutex<ServerState>(ServerState())

    private struct ServerState {
        /// The process we started: postgres itself, or the runuser wrapping it.
        var child: ChildProcess?
        /// The postmaster's own pid, from postmaster.pid: the process to signal.
        var postmasterPID: pid_t?
        var removed = false
    }

    public enum ShutdownMode: Sendable {
        /// SIGTERM: waits for clients to disconnect.
        case smart
        /// SIGINT: disconnects clients, shuts down cleanly.
        case fast
        /// SIGQUIT: exits at once, as after a crash; the next start runs crash recovery.
        case immediate

        var signal: Int32 {
            switch self {
            case .smart: SIGTERM
            case .fast: SIGINT
            case .immediate: SIGQUIT
            }
        }
    }

    private init(
        port: Int, baseDirectory: String, binDirectory: String, psqlPath: String,
        extraConf: [String: String], runAs: RunAs?
    ) {
        self.port = port
        self.baseDirectory = baseDirectory
        self.dataDirectory = baseDirectory + "/data"
        self.socketDirectory = baseDirectory
        self.binDirectory = binDirectory
        self.logPath = baseDirectory + "/server.log"
        self.psqlPath = psqlPath
        self.extraConf = extraConf
        self.runAs = runAs
    }

    // MARK: - Process-wide clusters

    /// The shared cluster, or the error its start failed with (not retried: every test would
    /// otherwise wait for the same failure again).
    private static let sharedCluster = Mutex<Result<PostgresCluster, HarnessError>?>(nil)
    /// Every cluster not yet stopped, for the exit handler.
    private static let liveClusters = Mutex<[ObjectIdentifier: PostgresCluster]>([:])

    /// The cluster shared by all tests of this process, started on first use. Do not stop or
    /// restart it: other tests are using it; use `start()` for a cluster of your own.
    public static func shared() throws -> PostgresCluster {
        try sharedCluster.withLock { slot in
            if let slot {
                return try slot.get()
            }
            do {
                let cluster = try start()
                slot = .success(cluster)
                return cluster
            } catch {
                let failure = error as? HarnessError ?? HarnessError("\(error)")
                slot = .failure(failure)
                throw failure
            }
        }
    }

    /// Creates and starts a new cluster; `extraConf` adds `-c name=value` server settings.
    /// Call `stop()` when done (the exit handler does it otherwise).
    public static func start(extraConf: [String: String] = [:]) throws -> PostgresCluster {
        ExitCleanup.ensureRegistered()
        let binDirectory = try findPostgresBinDirectory()
        let psqlPath = access(binDirectory + "/psql", X_OK) == 0 ? binDirectory + "/psql" : try findExecutable("psql")
        let runAs = try RunAs.detect()
        let base = try makeTemporaryDirectory()
        do {
            try prepare(base: base, binDirectory: binDirectory, runAs: runAs)
            // The port is free only until someone else binds it: retry with another on EADDRINUSE.
            for attempt in 1...3 {
                let cluster = PostgresCluster(
                    port: freeTCPPort(), baseDirectory: base, binDirectory: binDirectory, psqlPath: psqlPath,
                    extraConf: extraConf, runAs: runAs)
                let logOffset = fileSize(cluster.logPath)
                do {
                    try cluster.startServer()
                } catch {
                    let log = FileManager.default.contents(atPath: cluster.logPath)?.dropFirst(Int(logOffset)) ?? Data()
                    if attempt < 3, String(decoding: log, as: UTF8.self).contains("Address already in use") {
                        continue
                    }
                    throw error
                }
                liveClusters.withLock { $0[ObjectIdentifier(cluster)] = cluster }
                do {
                    try cluster.createRolesAndDatabases()
                } catch {
                    cluster.stop()
                    throw error
                }
                return cluster
            }
            throw HarnessError("unreachable: PostgreSQL start attempts exhausted")
        } catch {
            try? FileManager.default.removeItem(atPath: base)
            throw error
        }
    }

    /// Called by the exit handler: stops every live cluster without ever blocking on a lock
    /// another thread might hold while the process exits.
    static func stopAllForExit() {
        guard let clusters = liveClusters.withLockIfAvailable({ Array($0.values) }) else { return }
        for cluster in clusters {
            cluster.stopForExit()
        }
    }

    /// `stop()`, unless another thread is in the middle of a start or restart: then only a fast
    /// shutdown signal to the postmaster, since waiting for that thread could hang the exit.
    private func stopForExit() {
        let stopped: Void? = server.withLockIfAvailable { state in
            stopLocked(&state, mode: .fast)
            if !state.removed {
                state.removed = true
                try? FileManager.default.removeItem(atPath: baseDirectory)
            }
        }
        if stopped == nil, let postmaster = readAnyPostmasterPID(), isPostgresProcess(postmaster) {
            kill(postmaster, SIGINT)
        }
    }

    // MARK: - Creating the cluster

    /// The newest /usr/lib/postgresql/<version>/bin holding postgres and initdb, else the
    /// directory of `postgres` on PATH.
    private static func findPostgresBinDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Double(name).map { (version: $0, name: name) } }
            .sorted { $0.version > $1.version }
        for entry in versions {
            let bin = "\(root)/\(entry.name)/bin"
            if access(bin + "/postgres", X_OK) == 0, access(bin + "/initdb", X_OK) == 0 {
                return bin
            }
        }
        if let postgres = try? findExecutable("postgres") {
            let bin = (postgres as NSString).deletingLastPathComponent
            if access(bin + "/initdb", X_OK) == 0 {
                return bin
            }
        }
        throw HarnessError(
            "PostgreSQL server binaries (postgres, initdb) not found in /usr/lib/postgresql/*/bin or on PATH: "
                + "install them with scripts/install-deps.sh (Debian package `postgresql`), or run `make test`")
    }

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/switchyard-pg-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else {
            throw HarnessError("mkdtemp under /tmp failed: \(String(cString: strerror(errno)))")
        }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Tells scripts/kill-test-leftovers.sh which process the directory belongs to.
        try? "\(getpid())\n".write(toFile: path + "/owner.pid", atomically: false, encoding: .utf8)
        return path
    }

    /// initdb and pg_hba.conf.
    private static func prepare(base: String, binDirectory: String, runAs: RunAs?) throws {
        if let runAs {
            try runAs.chown(base)
        }
        let (executable, arguments) = RunAs.wrap(
            runAs, binDirectory + "/initdb",
            ["-D", base + "/data", "-U", "postgres", "-A", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync"])
        let result = try runProcess(executable, arguments, environment: ["LC_ALL": "C"], timeout: .seconds(120))
        guard result.status == 0 else {
            throw HarnessError("initdb failed (status \(result.status)):\n\(result.stdout)\n\(result.stderr)")
        }
        let hba = """
            # Written by the Switchyard test harness: one auth method per test role.
            local all all trust
            host all md5_user 127.0.0.1/32 md5
            host all scram_user 127.0.0.1/32 scram-sha-256
            host all clear_user 127.0.0.1/32 password
            host all all 127.0.0.1/32 trust
            host replication all 127.0.0.1/32 trust

            """
        let hbaPath = base + "/data/pg_hba.conf"
        do {
            try hba.write(toFile: hbaPath, atomically: false, encoding: .utf8)
        } catch {
            throw HarnessError("cannot write \(hbaPath): \(error)")
        }
        if let runAs {
            try runAs.chown(hbaPath)
        }
    }

    private func createRolesAndDatabases() throws {
        _ = try psql(
            """
            SET password_encryption = 'md5';
            CREATE ROLE md5_user LOGIN PASSWORD 'md5_pass';
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE scram_user LOGIN PASSWORD 'scram_pass';
            CREATE ROLE clear_user LOGIN PASSWORD 'clear_pass';
            CREATE ROLE switchyard LOGIN SUPERUSER;
            """)
        // CREATE DATABASE cannot share a multi-statement query (it refuses transaction blocks).
        _ = try psql("CREATE DATABASE app OWNER postgres")
    }

    // MARK: - Running the server

    /// Starts the server again on the same port after `stopServer()`.
    public func startServer() throws {
        try server.withLock { state in
            guard !state.removed else {
                throw HarnessError("this PostgreSQL cluster was stopped and removed")
            }
            guard state.child == nil else { return }
            try startLocked(&state)
        }
    }

    /// Stops the server (by signalling the postmaster's own pid; SIGKILL if it is not gone in
    /// 10 s) and keeps the data directory, so `startServer()` can bring it back.
    public func stopServer(mode: ShutdownMode = .fast) {
        server.withLock { state in
            stopLocked(&state, mode: mode)
        }
    }

    /// Stops the server and starts it again on the same port, with the same data.
    public func restart(mode: ShutdownMode = .fast) throws {
        try server.withLock { state in
            guard !state.removed else {
                throw HarnessError("this PostgreSQL cluster was stopped and removed")
            }
            stopLocked(&state, mode: mode)
            try startLocked(&state)
        }
    }

    /// Stops the server and removes its directory. The cluster cannot be used afterwards.
    /// Fast shutdown (SIGINT) rather than smart (SIGTERM): smart waits for every client to
    /// disconnect, and a proxy's pooled connections would hold it for the whole grace period.
    public func stop() {
        server.withLock { state in
            stopLocked(&state, mode: .fast)
            if !state.removed {
                state.removed = true
                try? FileManager.default.removeItem(atPath: baseDirectory)
            }
        }
        Self.liveClusters.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
    }

    /// The postmaster's pid while the server runs.
    public var postmasterPID: Int32? {
        server.withLock { $0.postmasterPID }
    }

    private var serverArguments: [String] {
        var arguments = [
            "-D", dataDirectory, "-p", String(port), "-k", socketDirectory,
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=1200",
            "-c", "shared_buffers=128MB",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]
        for (name, value) in extraConf.sorted(by: { $0.key < $1.key }) {
            arguments += ["-c", "\(name)=\(value)"]
        }
        return arguments
    }

    private func startLocked(_ state: inout ServerState) throws {
        let (executable, arguments) = RunAs.wrap(runAs, binDirectory + "/postgres", serverArguments)
        // A stale postmaster.pid would be read as the new server's before it rewrites the file.
        unlink(dataDirectory + "/postmaster.pid")
        let child = try ChildProcess.start(
            executable: executable, arguments: arguments, environment: ["LC_ALL": "C"],
            stdoutPath: logPath, workingDirectory: baseDirectory)
        state.child = child
        do {
            state.postmasterPID = try waitUntilReady(child)
        } catch {
            stopLocked(&state, mode: .immediate)
            throw error
        }
    }

    /// Waits (30 s at most) for postmaster.pid to say "ready", then for pg_isready to agree over
    /// TCP. Returns the postmaster's pid.
    private func waitUntilReady(_ child: ChildProcess) throws -> pid_t {
        let deadline = ContinuousClock.now + .seconds(30)
        var postmaster: pid_t?
        while ContinuousClock.now < deadline {
            if let status = child.status {
                throw HarnessError(
                    "PostgreSQL exited with status \(status) while starting on port \(port); log \(logPath):\n"
                        + fileTail(logPath, maxBytes: 3_000))
            }
            if postmaster == nil {
                postmaster = readReadyPostmasterPID()
            }
            if postmaster != nil {
                let check = try? runProcess(
                    binDirectory + "/pg_isready", ["-q", "-h", host, "-p", String(port), "-U", superuser, "-t", "2"],
                    timeout: .seconds(5))
                if let postmaster, check?.status == 0 {
                    PidRegistry.record(postmaster, name: "postgres")
                    return postmaster
                }
            }
            usleep(50_000)
        }
        throw HarnessError(
            "PostgreSQL did not become ready on port \(port) within 30 s; log \(logPath):\n"
                + fileTail(logPath, maxBytes: 3_000))
    }

    /// postmaster.pid: line 1 is the pid, line 8 the status, "ready" once connections are accepted.
    private func readReadyPostmasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) else {
            return nil
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 8, lines[7].trimmingCharacters(in: .whitespaces) == "ready" else { return nil }
        return pid_t(lines[0].trimmingCharacters(in: .whitespaces))
    }

    private func stopLocked(_ state: inout ServerState, mode: ShutdownMode) {
        guard let child = state.child else { return }
        let postmaster = state.postmasterPID ?? (runAs == nil ? child.pid : readAnyPostmasterPID())
        if let postmaster, isPostgresProcess(postmaster) {
            kill(postmaster, mode.signal)
        } else {
            child.sendSignal(mode.signal)
        }
        // The child (postgres, or runuser waiting for it) exits once the postmaster has.
        if child.waitForExit(timeout: .seconds(10)) == nil {
            if let postmaster, isPostgresProcess(postmaster) {
                kill(postmaster, SIGKILL)
            }
            child.sendSignal(SIGKILL)
            _ = child.waitForExit(timeout: .seconds(10))
        }
        state.child = nil
        state.postmasterPID = nil
    }

    /// The pid in postmaster.pid whatever the status (a server still starting up).
    private func readAnyPostmasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first
        else { return nil }
        return pid_t(first.trimmingCharacters(in: .whitespaces))
    }

    // MARK: - Using the server

    /// `postgresql://user[:password]@127.0.0.1:<port>/database`, user and password percent-encoded.
    public func connectionURI(user: String = "postgres", database: String = "postgres", password: String? = nil) -> String {
        let encodedUser = user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? user
        var userInfo = encodedUser
        if let password {
            userInfo += ":" + (password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password)
        }
        return "postgresql://\(userInfo)@\(host):\(port)/\(database)"
    }

    /// The libpq keyword form, `host=127.0.0.1 port=<port> user=... dbname=...`.
    public func connectionString(user: String = "postgres", database: String = "postgres", password: String? = nil) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var parts = ["host=\(host)", "port=\(port)", "user=\(quoted(user))", "dbname=\(quoted(database))"]
        if let password {
            parts.append("password=\(quoted(password))")
        }
        return parts.joined(separator: " ")
    }

    /// Runs `sql` with psql (`-X -A -t -q -v ON_ERROR_STOP=1 -c sql`) over TCP and returns its
    /// trimmed output: unaligned, tuples only, fields separated by `|`. `port` and `host` default
    /// to this cluster's (point them at a proxy to go through it). Throws with psql's stderr on
    /// failure; bounded at 60 s.
    public func psql(
        _ sql: String, database: String = "postgres", user: String = "postgres", port: Int? = nil,
        host: String? = nil, password: String? = nil
    ) throws -> String {
        var environment = ["PGCONNECT_TIMEOUT": "10"]
        if let password {
            environment["PGPASSWORD"] = password
        }
        let result = try runProcess(
            psqlPath,
            [
                "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1",
                "-h", host ?? self.host, "-p", String(port ?? self.port), "-U", user, "-d", database, "-c", sql,
            ],
            environment: environment, timeout: .seconds(60))
        guard result.status == 0 else {
            throw HarnessError("psql failed (status \(result.status)) running `\(sql)`: \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The last bytes of the server log, for failure messages.
    public func logTail(maxBytes: Int = 4_096) -> String {
        fileTail(logPath, maxBytes: maxBytes)
    }
}

/// The OS user PostgreSQL runs as when the tests run as root.
private struct RunAs: Sendable {
    let runuser: String
    let uid: uid_t
    let gid: gid_t
    static let user = "postgres"

    static func detect() throws -> RunAs? {
        guard geteuid() == 0 else { return nil }
        var entry = passwd()
        var buffer = [CChar](repeating: 0, count: 16_384)
        var found: UnsafeMutablePointer<passwd>?
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &found) == 0, found != nil else {
            throw HarnessError(
                "the tests run as root and PostgreSQL refuses to run as root, but there is no `postgres` OS user "
                    + "to run it as: install the Debian package `postgresql` (scripts/install-deps.sh) which creates it")
        }
        let runuser: String
        do {
            runuser = try findExecutable("runuser")
        } catch {
            throw HarnessError("the tests run as root and need `runuser` (util-linux) to start PostgreSQL as `postgres`: \(error)")
        }
        return RunAs(runuser: runuser, uid: entry.pw_uid, gid: entry.pw_gid)
    }

    /// The command line running `executable` as the postgres user when needed.
    static func wrap(_ runAs: RunAs?, _ executable: String, _ arguments: [String]) -> (String, [String]) {
        guard let runAs else { return (executable, arguments) }
        return (runAs.runuser, ["-u", user, "--", executable] + arguments)
    }

    func chown(_ path: String) throws {
        guard Glibc.chown(path, uid, gid) == 0 else {
            throw HarnessError("cannot chown \(path) to \(Self.user): \(String(cString: strerror(errno)))")
        }
    }
}

/// Whether `pid` is (still) a PostgreSQL process, read from /proc, so a pid reused by something
/// else is never signalled.
func isPostgresProcess(_ pid: pid_t) -> Bool {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
    return String(decoding: data, as: UTF8.self).contains("postgres")
}

private func fileSize(_ path: String) -> UInt64 {
    var info = stat()
    return stat(path, &info) == 0 ? UInt64(info.st_size) : 0
}
