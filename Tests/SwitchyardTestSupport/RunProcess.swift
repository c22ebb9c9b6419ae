// Running a command to completion with a time limit, capturing stdout and stderr in full.
import Foundation
import Glibc

/// What a finished command returned. `status` is the exit code, or 128 + signal if it was killed.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs `executable` (a path, or a name looked up on PATH) to completion and returns its output.
///
/// - `environment`: added to (and overriding) the inherited environment, from which every `PG*`
///   variable is removed first; nil inherits it as is (less `PG*`).
/// - `stdin`: the child's standard input; nil gives it /dev/null, so nothing ever waits on a terminal.
/// - `timeout`: past it the child gets SIGTERM, 2 s later SIGKILL (by its pid), and a `HarnessError`
///   is thrown with the output so far.
///
/// stdout and stderr are read together as they come, so a child filling one pipe cannot deadlock.
/// If the child exits but a grandchild it left behind keeps the pipes open, reading stops 0.5 s later.
public func runProcess(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    stdin: String? = nil,
    timeout: Duration = .seconds(120)
) throws -> ProcessResult {
    let path = try findExecutable(executable)
    let deadline = ContinuousClock.now + timeout
    let input = try stdin.map(makeInputFile) ?? openFile("/dev/null", O_RDONLY)
    defer { close(input) }
    let out = try makePipe()
    let err: (read: Int32, write: Int32)
    do {
        err = try makePipe()
    } catch {
        close(out.read)
        close(out.write)
        throw error
    }
    let pid: pid_t
    do {
        pid = try spawnProcess(
            executable: path, arguments: arguments, environment: childEnvironment(environment),
            stdin: input, stdout: out.write, stderr: err.write)
    } catch {
        [out.read, out.write, err.read, err.write].forEach { close($0) }
        throw error
    }
    close(out.write)
    close(err.write)

    var collector = OutputCollector(stdout: out.read, stderr: err.read)
    defer { collector.closeAll() }
    var status: Int32?
    var drainDeadline: ContinuousClock.Instant?
    var pause = 1_000
    while true {
        let now = ContinuousClock.now
        if now >= deadline {
            let killedStatus = killAfterTimeout(pid)
            collector.readAvailable(timeoutMilliseconds: 0)
            throw HarnessError(
                "`\(([path] + arguments).joined(separator: " "))` timed out after \(timeout) and was killed "
                    + "(pid \(pid), status \(killedStatus.map(String.init) ?? "unknown"))\n"
                    + "stdout: \(collector.tail(\.stdoutData))\nstderr: \(collector.tail(\.stderrData))")
        }
        if status == nil, let exited = reapIfExited(pid) {
            status = exited
            drainDeadline = now + .milliseconds(500)
        }
        if collector.isFinished {
            if let status {
                return collector.result(status: status)
            }
            // Output is complete; the child has not been reaped yet.
            usleep(UInt32(pause))
            pause = min(pause * 2, 20_000)
            continue
        }
        if let status, let drainDeadline, now >= drainDeadline {
            return collector.result(status: status)
        }
        let remaining = deadline - now
        let waitMilliseconds = min(50.0, max(1.0, (remaining / .milliseconds(1)).rounded(.up)))
        collector.readAvailable(timeoutMilliseconds: Int32(waitMilliseconds))
    }
}

/// SIGTERM, up to 2 s, then SIGKILL; returns the status if the child could be reaped.
private func killAfterTimeout(_ pid: pid_t) -> Int32? {
    kill(pid, SIGTERM)
    if let status = waitForChild(pid, until: ContinuousClock.now + .seconds(2)) {
        return status
    }
    kill(pid, SIGKILL)
    return waitForChild(pid, until: ContinuousClock.now + .seconds(5))
}

/// Standard input comes from an unlinked temporary file rather than a pipe: writing to a pipe the
/// child has closed would raise SIGPIPE in the test process, and a file never blocks the writer.
private func makeInputFile(_ text: String) throws -> Int32 {
    var template = Array("/tmp/switchyard-stdin-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else {
        throw HarnessError("mkstemp failed: \(String(cString: strerror(errno)))")
    }
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    unlink(template)
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            let message = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("cannot write a child's stdin file: \(message)")
        }
        offset += written
    }
    bytes.removeAll()
    lseek(fd, 0, SEEK_SET)
    return fd
}

/// Reads a child's stdout and stderr pipes with poll() until both reach end of file.
private struct OutputCollector {
    var stdoutData = [UInt8]()
    var stderrData = [UInt8]()
    private var stdoutFD: Int32?
    private var stderrFD: Int32?

    init(stdout: Int32, stderr: Int32) {
        stdoutFD = stdout
        stderrFD = stderr
    }

    var isFinished: Bool { stdoutFD == nil && stderrFD == nil }

    mutating func readAvailable(timeoutMilliseconds: Int32) {
        var polled = [stdoutFD, stderrFD].compactMap { $0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard !polled.isEmpty else { return }
        let ready = poll(&polled, nfds_t(polled.count), timeoutMilliseconds)
        guard ready > 0 else { return }
        for entry in polled where entry.revents != 0 {
            if entry.fd == stdoutFD {
                if !drain(entry.fd, into: &stdoutData) {
                    close(entry.fd)
                    stdoutFD = nil
                }
            } else if entry.fd == stderrFD {
                if !drain(entry.fd, into: &stderrData) {
                    close(entry.fd)
                    stderrFD = nil
                }
            }
        }
    }

    /// One read; false at end of file (or on an error, which ends the stream too).
    private func drain(_ fd: Int32, into data: inout [UInt8]) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
                return true
            }
            if count < 0 && (errno == EINTR) {
                continue
            }
            return count < 0 && errno == EAGAIN
        }
    }

    mutating func closeAll() {
        if let fd = stdoutFD { close(fd) }
        if let fd = stderrFD { close(fd) }
        stdoutFD = nil
        stderrFD = nil
    }

    func result(status: Int32) -> ProcessResult {
        ProcessResult(
            status: status,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self))
    }

    func tail(_ stream: KeyPath<OutputCollector, [UInt8]>) -> String {
        let data = self[keyPath: stream]
        return String(decoding: data.suffix(2_000), as: UTF8.self)
    }
}
