// A long-running child process (the switchyard binary, a server) that a test starts, signals and stops.
import Foundation
import Glibc
import Synchronization

/// A process started in the background, with stdout and stderr appended to one log file.
/// It is ended (SIGTERM, then SIGKILL) when the object goes away or the test process exits,
/// so a failing test cannot leave it running.
public final class ChildProcess: Sendable {
    public let pid: Int32
    public let executable: String
    public let arguments: [String]
    /// Where stdout and stderr go; nil means /dev/null.
    public let stdoutPath: String?
    /// The exit status once reaped (exit code, or 128 + signal); reaping happens only once.
    private let exitStatus = Mutex<Int32?>(nil)

    private init(pid: Int32, executable: String, arguments: [String], stdoutPath: String?) {
        self.pid = pid
        self.executable = executable
        self.arguments = arguments
        self.stdoutPath = stdoutPath
    }

    /// Starts `executable` (a path, or a name looked up on PATH) with stdin from /dev/null and
    /// stdout+stderr appended to `stdoutPath` (created if needed). `environment` is added to the
    /// inherited environment less its `PG*` variables, as for `runProcess`.
    public static func start(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        stdoutPath: String? = nil,
        workingDirectory: String? = nil
    ) throws -> ChildProcess {
        let path = try findExecutable(executable)
        let input = try openFile("/dev/null", O_RDONLY)
        defer { close(input) }
        let output = try openFile(stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND)
        defer { close(output) }
        let pid = try spawnProcess(
            executable: path, arguments: arguments, environment: childEnvironment(environment),
            stdin: input, stdout: output, stderr: output, workingDirectory: workingDirectory)
        return ChildProcess(pid: pid, executable: path, arguments: arguments, stdoutPath: stdoutPath)
    }

    deinit {
        if isRunning {
            terminate()
        }
    }

    /// The exit status if the process has ended, nil while it runs.
    public var status: Int32? {
        exitStatus.withLock { status in
            if status == nil {
                status = reapIfExited(pid)
            }
            return status
        }
    }

    public var isRunning: Bool { status == nil }

    /// Sends `signal` to the process, unless it has already been reaped (its pid may then belong
    /// to someone else). Returns whether the signal was sent.
    @discardableResult
    public func sendSignal(_ signal: Int32) -> Bool {
        exitStatus.withLock { status in
            if status == nil {
                status = reapIfExited(pid)
            }
            return status == nil && kill(pid, signal) == 0
        }
    }

    /// Waits up to `timeout` for the process to end; its status, or nil if it is still running.
    public func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        var pause = 1_000
        while true {
            if let status {
                return status
            }
            if ContinuousClock.now >= deadline {
                return nil
            }
            usleep(UInt32(pause))
            pause = min(pause * 2, 20_000)
        }
    }

    /// SIGTERM, up to `gracePeriod` to exit, then SIGKILL. Returns the exit status
    /// (128 + 15 after a SIGTERM it did not handle, 128 + 9 if it had to be killed).
    @discardableResult
    public func terminate(gracePeriod: Duration = .seconds(10)) -> Int32 {
        sendSignal(SIGTERM)
        if let status = waitForExit(timeout: gracePeriod) {
            return status
        }
        sendSignal(SIGKILL)
        return waitForExit(timeout: .seconds(10)) ?? unknownExitStatus
    }

    /// The process's resident set size in kilobytes (VmRSS in /proc/<pid>/status), nil once it has
    /// ended or if /proc cannot be read.
    public var residentKilobytes: Int? {
        guard isRunning, let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
    }

    /// The last `maxBytes` of the log file, for failure messages.
    public func outputTail(maxBytes: Int = 4_096) -> String {
        guard let stdoutPath else { return "" }
        return fileTail(stdoutPath, maxBytes: maxBytes)
    }
}

/// The last `maxBytes` of a file as text ("" if it cannot be read).
func fileTail(_ path: String, maxBytes: Int) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    try? handle.seek(toOffset: size > UInt64(maxBytes) ? size - UInt64(maxBytes) : 0)
    let data = (try? handle.readToEnd()) ?? Data()
    return String(decoding: data, as: UTF8.self)
}
