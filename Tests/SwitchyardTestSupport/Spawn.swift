// Starting child processes with posix_spawn: clean signal state, only stdio inherited, every pid recorded.
import Foundation
import Glibc
import Synchronization

// glibc has these file actions (2.29 and 2.34) but Swift's Glibc module does not export them,
// so they are looked up at run time; both are optional refinements.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32

private let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
    .map { unsafeBitCast($0, to: AddCloseFrom.self) }
private let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np")
    .map { unsafeBitCast($0, to: AddChdir.self) }

/// Signals reset to their default action in the child: a test process (or the proxy code running
/// inside it) may ignore SIGPIPE or SIGCHLD, and ignored dispositions survive exec.
private let signalsResetInChild: [Int32] = [
    SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGTTIN, SIGTTOU, SIGTSTP, SIGXFSZ,
]

/// The environment a harness child gets: this process's environment without any `PG*` variable
/// (a developer's PGHOST, PGPASSWORD or PGSSLMODE must not leak into a test), plus `extra`.
func childEnvironment(_ extra: [String: String]?) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
    for (key, value) in extra ?? [:] {
        environment[key] = value
    }
    return environment
}

/// Starts `executable` with the given descriptors as its stdin, stdout and stderr. The child has an
/// empty signal mask, default dispositions, and no other descriptor of ours (closefrom 3).
func spawnProcess(
    executable: String,
    arguments: [String],
    environment: [String: String],
    stdin: Int32,
    stdout: Int32,
    stderr: Int32,
    workingDirectory: String? = nil,
    tracked: Bool = true
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    if let addCloseFrom {
        _ = addCloseFrom(&actions, 3)
    }
    if let workingDirectory, let addChdir {
        _ = workingDirectory.withCString { addChdir(&actions, $0) }
    }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in signalsResetInChild {
        sigaddset(&defaults, signal)
    }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }

    if tracked {
        ExitCleanup.ensureRegistered()
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard rc == 0 else {
        throw HarnessError("could not start \(executable): \(String(cString: strerror(rc)))")
    }
    if tracked {
        LiveChildren.insert(pid)
        PidRegistry.record(pid, name: (executable as NSString).lastPathComponent)
    }
    return pid
}

/// Decodes a waitpid status: the exit code, or 128 + the signal number for a killed process
/// (the shell's convention), since WIFEXITED and friends are macros Swift cannot see.
func decodeWaitStatus(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// Status reported when another part of the process reaped our child first (SIGCHLD ignored, or
/// someone's waitpid(-1)): the child is gone but its exit status is lost.
public let unknownExitStatus: Int32 = -1

/// Non-blocking reap of a direct child: its decoded status once it has exited, nil while it runs.
func reapIfExited(_ pid: pid_t) -> Int32? {
    var raw: Int32 = 0
    while true {
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid {
            LiveChildren.remove(pid)
            return decodeWaitStatus(raw)
        }
        if result == 0 {
            return nil
        }
        if errno == EINTR {
            continue
        }
        LiveChildren.remove(pid)
        return unknownExitStatus
    }
}

/// Polls `reapIfExited` until the deadline, sleeping a little longer each round (1 ms up to 20 ms)
/// so a fast child is noticed quickly and a slow one costs little CPU.
func waitForChild(_ pid: pid_t, until deadline: ContinuousClock.Instant) -> Int32? {
    var pause = 1_000
    while true {
        if let status = reapIfExited(pid) {
            return status
        }
        if ContinuousClock.now >= deadline {
            return nil
        }
        usleep(UInt32(pause))
        pause = min(pause * 2, 20_000)
    }
}

/// A pipe whose both ends are close-on-exec, so no unrelated child (started by another thread in
/// the meantime) keeps our write end open and hides the end of the output.
func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else {
        throw HarnessError("pipe() failed: \(String(cString: strerror(errno)))")
    }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return (fds[0], fds[1])
}

/// Opens a file close-on-exec, with a readable error.
func openFile(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
    let fd = open(path, flags | O_CLOEXEC, mode)
    guard fd >= 0 else {
        throw HarnessError("cannot open \(path): \(String(cString: strerror(errno)))")
    }
    return fd
}

/// The children of this process that have not been reaped yet, so that the exit handler can end
/// any a test forgot.
enum LiveChildren {
    private static let pids = Mutex<Set<pid_t>>([])

    static func insert(_ pid: pid_t) {
        pids.withLock { _ = $0.insert(pid) }
    }

    static func remove(_ pid: pid_t) {
        pids.withLock { _ = $0.remove(pid) }
    }

    /// SIGTERM to every child still alive, up to 5 s for them to go, then SIGKILL. Never blocks on
    /// the lock: exit can happen while another thread holds it.
    static func endAllForExit() {
        guard let remaining = pids.withLockIfAvailable({ $0 }), !remaining.isEmpty else {
            return
        }
        for pid in remaining {
            kill(pid, SIGTERM)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        for pid in remaining where waitForChild(pid, until: deadline) == nil {
            kill(pid, SIGKILL)
            _ = waitForChild(pid, until: ContinuousClock.now + .seconds(2))
        }
    }
}

/// The exit handler: stop every PostgreSQL cluster (their postmasters are not our direct children
/// when run through runuser), then any child process still running. Registered with the first
/// process the harness starts, together with the crash watchdog.
enum ExitCleanup {
    private static let registered = Mutex<Bool>(false)

    static func ensureRegistered() {
        let first = registered.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        atexit {
            PostgresCluster.stopAllForExit()
            LiveChildren.endAllForExit()
        }
        CrashWatchdog.start()
    }
}

/// atexit does not run when a test process crashes or is killed, and its servers would run on.
/// So a watchdog shell waits for end of file on a pipe whose only write end this process holds
/// (close-on-exec, never inherited): the kernel closes it however the process ends, and the
/// watchdog then runs scripts/kill-test-leftovers.sh for this process's pids and directories.
/// After a normal exit there is nothing left to end, and the script only prunes the registry.
enum CrashWatchdog {
    /// The write end, open for the life of the process.
    private static let pipeWriteEnd = Mutex<Int32?>(nil)

    static func start() {
        let script = packageRootDirectory + "/scripts/kill-test-leftovers.sh"
        guard access(script, R_OK) == 0, let bash = try? findExecutable("bash"), let shell = try? findExecutable("sh"),
              let pipe = try? makePipe()
        else { return }  // the script, run by `make test`, remains the fallback
        defer { close(pipe.read) }
        guard let devNull = try? openFile("/dev/null", O_WRONLY) else {
            close(pipe.write)
            return
        }
        defer { close(devNull) }
        // Ignoring INT/HUP/TERM: Ctrl-C, a closed terminal and GNU timeout signal the whole process
        // group, and the watchdog must outlive the test process to do its work (it ends by itself,
        // at end of file, with bounded waits). Its output goes to /dev/null so that it never holds
        // open the pipe `swift test` reads the test's output from.
        let program = "trap '' INT HUP TERM; cat >/dev/null; exec \"$0\" \"$1\" --owner \"$2\""
        do {
            _ = try spawnProcess(
                executable: shell, arguments: ["-c", program, bash, script, String(getpid())],
                environment: childEnvironment(nil), stdin: pipe.read, stdout: devNull, stderr: devNull,
                tracked: false)
            pipeWriteEnd.withLock { $0 = pipe.write }
        } catch {
            close(pipe.write)
        }
    }
}

/// Appends every pid the harness starts to /tmp/switchyard-test-pids, with the pid and start time of
/// this test process, so that scripts/kill-test-leftovers.sh can end what a crashed run left behind
/// (and only that: entries whose owner still runs belong to a test run in progress).
enum PidRegistry {
    static let path = "/tmp/switchyard-test-pids"

    /// This process's start time in clock ticks since boot (field 22 of /proc/self/stat): with the pid,
    /// it tells the cleanup script whether the owner is still this process or a reused pid.
    private static let ownerStartTime: String = {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return "0" }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : "0"
    }()

    static func record(_ pid: pid_t, name: String) {
        let line = "\(pid) \(getpid()) \(ownerStartTime) \(name)\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else { return }  // the registry only helps cleanup; tests go on without it
        defer { close(fd) }
        // The cleanup script rewrites the file under the same lock.
        flock(fd, LOCK_EX)
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }
}
