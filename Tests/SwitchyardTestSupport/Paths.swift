// Locating executables: system tools on PATH, the built switchyard binary, and the test virtualenv's Python.
import Foundation
import Glibc

/// Directories searched after PATH, because a test process (or `sudo`) often runs with a PATH
/// that lacks the sbin directories (runuser) or the Swift toolchain.
private let fallbackSearchDirectories = [
    "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/opt/swift/usr/bin",
]

/// The absolute path of an executable. A name containing `/` is checked as given; a bare name is
/// looked up on PATH, then in the usual system directories.
public func findExecutable(_ name: String) throws -> String {
    if name.contains("/") {
        guard access(name, X_OK) == 0 else {
            throw HarnessError("`\(name)` is not an executable file")
        }
        return name
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + fallbackSearchDirectories
    for directory in directories where !directory.isEmpty {
        let candidate = directory + "/" + name
        var info = stat()
        if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
            return candidate
        }
    }
    throw HarnessError("executable `\(name)` not found on PATH or in \(fallbackSearchDirectories.joined(separator: ", "))")
}

/// The package root (the directory holding Package.swift), derived from this file's location at
/// compile time: `<root>/Tests/SwitchyardTestSupport/Paths.swift`.
public var packageRootDirectory: String {
    var path = #filePath
    for _ in 0..<3 {
        path = (path as NSString).deletingLastPathComponent
    }
    return path
}

/// The directory of the running executable (the test bundle under `swift test`), read from
/// /proc so that it is right whatever the build folder (`.build`, `--scratch-path`) is.
func runningExecutableDirectory() throws -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else {
        throw HarnessError("cannot read /proc/self/exe: \(String(cString: strerror(errno)))")
    }
    let exe = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return (exe as NSString).deletingLastPathComponent
}

/// The `switchyard` executable built next to the test bundle (same build folder and configuration).
/// `SWITCHYARD_BINARY` in the environment overrides it, e.g. to test a release build.
public var switchyardBinaryPath: String {
    get throws {
        if let override = ProcessInfo.processInfo.environment["SWITCHYARD_BINARY"], !override.isEmpty {
            guard access(override, X_OK) == 0 else {
                throw HarnessError("SWITCHYARD_BINARY=\(override) is not an executable file")
            }
            return override
        }
        let path = try runningExecutableDirectory() + "/switchyard"
        guard access(path, X_OK) == 0 else {
            throw HarnessError(
                "the switchyard executable is not at \(path): run `swift build` first "
                    + "(with the same --scratch-path and configuration as the tests), or use `make test`")
        }
        return path
    }
}

/// The Python of the virtualenv that `make` (scripts/install-deps.sh) creates, with psycopg installed:
/// `<package root>/.venv-test/bin/python`. `SWITCHYARD_TEST_PYTHON` overrides it.
public var pythonForTests: String {
    get throws {
        if let override = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_PYTHON"], !override.isEmpty {
            guard access(override, X_OK) == 0 else {
                throw HarnessError("SWITCHYARD_TEST_PYTHON=\(override) is not an executable file")
            }
            return override
        }
        let path = packageRootDirectory + "/.venv-test/bin/python"
        guard access(path, X_OK) == 0 else {
            throw HarnessError("the test virtualenv's python is missing at \(path): run `make test` (or `make deps`) first")
        }
        return path
    }
}
