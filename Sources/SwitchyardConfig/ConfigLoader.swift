// Entry points: parse YAML text or a file into a validated configuration, then apply command-line overrides.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Yams

/// Builds a `SwitchyardConfiguration` from YAML and flags. Every error names the key, and the line when it
/// came from the file, so a bad config fails at startup with a message that says where to look.
public enum ConfigLoader {
    /// A config file is a page of YAML; anything far larger is most likely the wrong file.
    static let maximumFileSize = 1 << 20

    /// Parses configuration YAML. `file` is only used in error messages.
    public static func parse(
        yaml: String, file: String? = nil, overrides: ConfigOverrides = .init()
    ) throws(ConfigError) -> SwitchyardConfiguration {
        // Editors on Windows may save a byte-order mark; libyaml only skips it when detecting the encoding itself.
        let yaml = yaml.hasPrefix("\u{FEFF}") ? String(yaml.dropFirst()) : yaml
        let root = try compose(yaml, file: file)
        var draft = Draft()
        if let root {
            try DocumentReader(file: file).read(root, into: &draft)
        }
        return try finish(draft, overrides: overrides, file: file)
    }

    /// Reads and parses a file. An unreadable file is reported under the key "config".
    public static func load(path: String, overrides: ConfigOverrides = .init()) throws(ConfigError) -> SwitchyardConfiguration {
        try parse(yaml: readFile(path), file: path, overrides: overrides)
    }

    /// Defaults plus flags, for running without a file; --upstream is then required.
    public static func fromOverrides(_ overrides: ConfigOverrides) throws(ConfigError) -> SwitchyardConfiguration {
        try finish(Draft(), overrides: overrides, file: nil)
    }

    // MARK: - Overrides and final checks

    /// Applies the flags (they win over the file) and the checks that span several keys.
    private static func finish(_ draft: Draft, overrides: ConfigOverrides, file: String?) throws(ConfigError) -> SwitchyardConfiguration {
        var draft = draft
        if let listen = overrides.listen {
            draft.config.listen = try HostPort.parse(listen, key: "--listen")
            draft.listenSource = .flag("--listen")
        }
        if let upstream = overrides.upstream {
            do {
                draft.upstream = try UpstreamURI.parse(upstream)
            } catch {
                throw error.renamed(to: "--upstream")
            }
        }
        if let adminListen = overrides.adminListen {
            draft.config.adminListen = isOff(adminListen) ? nil : try HostPort.parse(adminListen, key: "--admin-listen")
            draft.adminListenSource = .flag("--admin-listen")
        }
        guard let upstream = draft.upstream else {
            throw ConfigError(
                file: file, key: "upstream",
                message: "required: the PostgreSQL server to forward to, as a URI such as "
                    + "postgresql://switchyard@127.0.0.1:5432/postgres (set upstream in the file or pass --upstream)")
        }
        var config = draft.config
        config.upstream = upstream
        config.applyServerTLSToSideConnections()
        if let admin = config.adminListen, admin.port != 0, admin.port == config.listen.port,
           admin.host == config.listen.host || isWildcard(admin.host) || isWildcard(config.listen.host) {
            // Blame the setting the operator wrote: admin_listen if it was given, else listen.
            let blamed = draft.adminListenSource == .default
                ? (draft.listenSource, "listen", "the admin endpoint's address \(admin) (admin_listen's default)")
                : (draft.adminListenSource, "admin_listen", "listen's address \(config.listen)")
            let message = "clashes with \(blamed.2); give the admin endpoint its own port or set admin_listen: off"
            switch blamed.0 {
            case .file(let line):
                throw ConfigError(file: file, line: line, key: blamed.1, message: message)
            case .flag(let flag):
                throw ConfigError(key: flag, message: message)
            case .default:
                throw ConfigError(key: blamed.1, message: message)
            }
        }
        // /metrics tells anyone who can reach it about the traffic: on an address other hosts can
        // reach, it must ask for the admin password.
        if let admin = config.adminListen, !HostPort.isLoopback(admin.host), config.adminConsole.password == nil {
            let message = "\(admin) can be reached from other hosts, and /metrics would answer without credentials; "
                + "set admin_console.password (then /metrics asks for it, HTTP Basic) or listen on 127.0.0.1"
            switch draft.adminListenSource {
            case .file(let line): throw ConfigError(file: file, line: line, key: "admin_listen", message: message)
            case .flag(let flag): throw ConfigError(key: flag, message: message)
            case .default: throw ConfigError(key: "admin_listen", message: message)
            }
        }
        return config
    }

    static func isOff(_ text: String) -> Bool {
        text.trimmingWhitespace().lowercased() == "off"
    }

    private static func isWildcard(_ host: String) -> Bool {
        host == "0.0.0.0" || host == "::" || host == "*"
    }

    // MARK: - YAML

    /// Runs Yams' composer and turns its errors into ConfigErrors with key "yaml" (or the duplicated key).
    private static func compose(_ yaml: String, file: String?) throws(ConfigError) -> Node? {
        do {
            // UTF-8 explicitly: Yams' default encoding can be changed by an environment variable.
            return try Yams.compose(yaml: yaml, .default, .default, .utf8)
        } catch let error as YamlError {
            throw DuplicateKeys.translate(error, yaml: yaml, file: file)
        } catch {
            throw ConfigError(file: file, key: "yaml", message: "invalid YAML: \(error)")
        }
    }

    // MARK: - Files

    private static func readFile(_ path: String) throws(ConfigError) -> String {
        func fail(_ why: String) -> ConfigError {
            ConfigError(file: path, key: "config", message: "cannot read the configuration file: \(why)")
        }
        func systemError() -> ConfigError { fail(String(cString: strerror(errno))) }

        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw systemError() }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw systemError() }
        // Checked up front: read() on a directory fails with a less helpful EISDIR, and a FIFO could block.
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw fail(status.st_mode & S_IFMT == S_IFDIR ? "it is a directory" : "it is not a regular file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw systemError()
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            guard bytes.count <= maximumFileSize else {
                throw fail("it is larger than \(maximumFileSize) bytes; is this the right file?")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw fail("it is not valid UTF-8 text")
        }
        return text
    }
}

/// The configuration while it is being read: upstream may still be missing, and the lines of
/// keys checked after overrides are remembered for their errors.
struct Draft {
    /// Where a value came from, so a conflict found after the overrides can name the right key and line.
    enum Source: Equatable {
        case `default`
        case file(line: Int?)
        case flag(String)
    }

    var config = SwitchyardConfiguration(upstream: .placeholder)
    var upstream: UpstreamURI?
    var listenSource = Source.default
    var adminListenSource = Source.default
}

extension UpstreamURI {
    /// Stands in until the real upstream is known; never returned to callers.
    static let placeholder = UpstreamURI(
        host: "localhost", port: defaultPort, user: nil, password: nil, database: nil,
        parameters: [:], original: "", redacted: "")
}
