// Walks the composed YAML tree, checking every key and value and recording the line of each problem.

import Yams

/// Reads the YAML node tree into a `Draft`. Works on Yams' `Node` rather than Decodable so that every
/// error can point at the line of the offending key or value.
struct DocumentReader {
    let file: String?

    static let topLevelKeys = [
        "listen", "upstream", "admin_listen", "workers", "max_client_connections", "max_message_size",
        "startup_timeout", "connect_timeout", "shutdown_timeout", "client_idle_timeout", "idle_transaction_timeout", "tcp_keepalive", "admin_console", "log",
        "prepare_routed_reads", "shadow_reads", "migrations", "flags", "control", "client_tls", "server_tls",
    ]
    static let sectionKeys: [String: [String]] = [
        "tcp_keepalive": ["enabled", "idle", "interval", "count"],
        "admin_console": ["users", "password"],
        "log": ["level", "format"],
        "control": ["schema", "database"],
        "shadow_reads": DocumentReader.shadowReadsKeys,
        "client_tls": DocumentReader.clientTLSKeys,
        "server_tls": DocumentReader.serverTLSKeys,
    ]

    /// One key and its value, with the dotted path and line used in errors.
    struct Entry {
        var name: String
        var path: String
        var keyLine: Int?
        var value: Node

        /// The line of the value, for errors about its content; an empty value has no line of its own.
        var valueLine: Int? {
            if case .scalar(let scalar) = value, scalar.string.isEmpty, scalar.style == .plain { return keyLine }
            return value.mark?.line ?? keyLine
        }
    }

    func read(_ root: Node, into draft: inout Draft) throws(ConfigError) {
        if isNull(root) { return }  // An empty document ("---" alone): every setting at its default.
        guard case .mapping = root else {
            throw ConfigError(
                file: file, line: root.mark?.line, key: "yaml",
                message: "expected a mapping of settings such as \"listen: 127.0.0.1:6432\" at the top level, "
                    + "got \(describe(root))")
        }
        var migrations: [MigrationSite] = []
        var flags: [FlagSite] = []
        for entry in try entries(of: root, under: nil) {
            switch entry.name {
            case "listen":
                draft.config.listen = try hostPort(entry)
                draft.listenSource = .file(line: entry.keyLine)
            case "upstream":
                let text = try scalarText(entry, expecting: "a URI such as postgresql://switchyard@127.0.0.1:5432/postgres")
                draft.upstream = try located(entry) { () throws(ConfigError) in try UpstreamURI.parse(text) }
            case "admin_listen":
                draft.adminListenSource = .file(line: entry.keyLine)
                if isNull(entry.value) {
                    draft.config.adminListen = nil
                } else if case .scalar(let scalar) = entry.value, ConfigLoader.isOff(scalar.string) {
                    draft.config.adminListen = nil
                } else {
                    draft.config.adminListen = try hostPort(entry)
                }
            case "workers":
                draft.config.workers = try integer(
                    entry, in: SwitchyardConfiguration.workersRange,
                    what: "a whole number from 0 (half the CPU cores) to 256")
            case "max_client_connections":
                draft.config.maxClientConnections = try integer(entry, in: 1...Int.max, what: "a whole number of at least 1")
            case "max_message_size":
                draft.config.maxMessageSize = try messageSize(entry)
            case "prepare_routed_reads":
                draft.config.prepareRoutedReads = try bool(entry)
            case "startup_timeout":
                draft.config.startupTimeout = try duration(entry, allowZero: false)
            case "connect_timeout":
                draft.config.connectTimeout = try duration(entry, allowZero: false)
            case "shutdown_timeout":
                draft.config.shutdownTimeout = try duration(entry, allowZero: true)
            case "client_idle_timeout":
                draft.config.clientIdleTimeout = try duration(entry, allowZero: true)
            case "idle_transaction_timeout":
                draft.config.idleTransactionTimeout = try duration(entry, allowZero: true)
            case "tcp_keepalive":
                draft.config.tcpKeepalive = try tcpKeepalive(entry)
            case "admin_console":
                draft.config.adminConsole = try adminConsole(entry)
            case "log":
                draft.config.log = try log(entry)
            case "shadow_reads":
                draft.config.shadowReads = try shadowReads(entry)
            case "migrations":
                migrations = try self.migrations(entry)
            case "flags":
                flags = try flagsWithShadow(entry)
            case "control":
                draft.config.control = try control(entry)
            case "client_tls":
                draft.config.clientTLS = try clientTLS(entry)
            case "server_tls":
                draft.config.serverTLS = try serverTLS(entry)
            default:
                throw unknownKey(entry, known: Self.topLevelKeys)
            }
        }
        // Flags may come before the migrations they name, so references are checked once both are read.
        try checkReferences(migrations: migrations, flags: flags, control: draft.config.control)
        draft.config.migrations = migrations.map(\.config)
        draft.config.flags = flags.map(\.config)
    }

    // MARK: - Sections

    private func tcpKeepalive(_ section: Entry) throws(ConfigError) -> TCPKeepalive {
        var result = TCPKeepalive()
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "enabled": result.enabled = try bool(entry)
            case "idle": result.idle = try keepaliveSeconds(entry)
            case "interval": result.interval = try keepaliveSeconds(entry)
            case "count": result.count = try integer(entry, in: 1...127, what: "a whole number from 1 to 127")
            default: throw unknownKey(entry, known: Self.sectionKeys["tcp_keepalive"]!)
            }
        }
        return result
    }

    private func adminConsole(_ section: Entry) throws(ConfigError) -> AdminConsoleConfig {
        var result = AdminConsoleConfig()
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "users":
                result.users = try userList(entry)
            case "password":
                if isNull(entry.value) {
                    result.password = nil
                } else {
                    let text = try scalarText(entry, expecting: "a password string, or null for none")
                    guard !text.isEmpty else {
                        throw error(entry.valueLine, entry.path, "the password is empty; use null (or omit it) for none")
                    }
                    result.password = text
                }
            default:
                throw unknownKey(entry, known: Self.sectionKeys["admin_console"]!)
            }
        }
        return result
    }

    private func log(_ section: Entry) throws(ConfigError) -> LogConfig {
        var result = LogConfig()
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "level":
                let levels = LogConfig.levels
                let text = try scalarText(entry, expecting: "one of \(levels.joined(separator: ", "))")
                let level = text.trimmingWhitespace().lowercased()
                guard levels.contains(level) else {
                    // "warn" and "crit" are common abbreviations that an edit distance of 2 would miss.
                    let hint = levels.first { $0.hasPrefix(level) && !level.isEmpty }
                        ?? Suggestions.closest(to: level, among: levels)
                    throw error(entry.valueLine, entry.path,
                                "expected one of \(levels.joined(separator: ", ")), got \(quoted(text))"
                                    + (hint.map { "; did you mean \($0)?" } ?? ""))
                }
                result.level = level
            case "format":
                let text = try scalarText(entry, expecting: "text or json")
                guard let format = LogFormat(rawValue: text.trimmingWhitespace().lowercased()) else {
                    throw error(entry.valueLine, entry.path, "expected text or json, got \(quoted(text))")
                }
                result.format = format
            default:
                throw unknownKey(entry, known: Self.sectionKeys["log"]!)
            }
        }
        return result
    }

    // MARK: - Values

    private func hostPort(_ entry: Entry) throws(ConfigError) -> HostPort {
        let text = try scalarText(entry, expecting: "host:port such as 127.0.0.1:6432")
        return try located(entry) { () throws(ConfigError) in try HostPort.parse(text, key: entry.path) }
    }

    private func integer(_ entry: Entry, in range: ClosedRange<Int>, what: String) throws(ConfigError) -> Int {
        let text = try scalarText(entry, expecting: what)
        return try located(entry) { () throws(ConfigError) in
            try ConfigValues.integer(text, key: entry.path, in: range, what: what)
        }
    }

    private func bool(_ entry: Entry) throws(ConfigError) -> Bool {
        let text = try scalarText(entry, expecting: "true or false")
        return try located(entry) { () throws(ConfigError) in try ConfigValues.bool(text, key: entry.path) }
    }

    private func duration(_ entry: Entry, allowZero: Bool) throws(ConfigError) -> Duration {
        let text = try scalarText(entry, expecting: "a duration such as 30s, 500ms or 2m")
        let value = try located(entry) { () throws(ConfigError) in try ConfigValues.duration(text, key: entry.path) }
        if !allowZero && value == .zero {
            throw error(entry.valueLine, entry.path, "must be longer than zero, got \(quoted(text))")
        }
        return value
    }

    /// The kernel takes keepalive times in whole seconds, so anything else would be silently rounded.
    private func keepaliveSeconds(_ entry: Entry) throws(ConfigError) -> Duration {
        let value = try duration(entry, allowZero: true)
        let (seconds, attoseconds) = value.components
        guard attoseconds == 0, (1...32767).contains(seconds) else {
            throw error(entry.valueLine, entry.path,
                        "expected a whole number of seconds from 1s to 32767s, got \(ConfigValues.describe(duration: value))")
        }
        return value
    }

    private func messageSize(_ entry: Entry) throws(ConfigError) -> Int {
        let text = try scalarText(entry, expecting: "a size such as 1048576, 64MB or 1GB")
        let bytes = try located(entry) { () throws(ConfigError) in try ConfigValues.byteSize(text, key: entry.path) }
        let range = SwitchyardConfiguration.maxMessageSizeRange
        guard range.contains(bytes) else {
            throw error(entry.valueLine, entry.path,
                        "must be from 1kB (1024 bytes) to \(range.upperBound) bytes (2GB - 1), got \(quoted(text))")
        }
        return bytes
    }

    private func userList(_ entry: Entry) throws(ConfigError) -> [String] {
        let expectation = "expected a list of user names such as [postgres], or [] to disable the console"
        guard case .sequence(let sequence) = entry.value else {
            throw error(entry.keyLine, entry.path, "\(expectation), got \(describe(entry.value))")
        }
        var users: [String] = []
        for item in sequence {
            guard case .scalar(let scalar) = item, !isNull(item), !scalar.string.isEmpty else {
                throw error(item.mark?.line ?? entry.keyLine, entry.path,
                            "each user must be a non-empty name, got \(describe(item))")
            }
            users.append(scalar.string)
        }
        return users
    }

    // MARK: - Structure

    /// The entries of a section; a null section ("tcp_keepalive:" with nothing under it) keeps the defaults.
    func sectionEntries(_ section: Entry) throws(ConfigError) -> [Entry] {
        if isNull(section.value) { return [] }
        guard case .mapping = section.value else {
            let keys = Self.sectionKeys[section.name]?.joined(separator: ", ") ?? ""
            throw error(section.keyLine, section.path,
                        "expected a mapping with the keys \(keys), got \(describe(section.value))")
        }
        return try entries(of: section.value, under: section.path)
    }

    /// The entries of a section nested in an item (`backfill:`, a flag's `shadow:`); a null one
    /// keeps the defaults, anything but a mapping is an error showing `example`.
    func nestedEntries(_ section: Entry, keys: [String], example: String) throws(ConfigError) -> [Entry] {
        if isNull(section.value) { return [] }
        guard case .mapping = section.value else {
            throw error(section.keyLine, section.path,
                        "expected a mapping with the keys \(keys.joined(separator: ", ")), such as \(example), got \(describe(section.value))")
        }
        return try entries(of: section.value, under: section.path)
    }

    func entries(of node: Node, under parent: String?) throws(ConfigError) -> [Entry] {
        guard case .mapping(let mapping) = node else { return [] }
        var result: [Entry] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, !isNull(key) else {
                throw error(key.mark?.line, parent ?? "yaml", "keys must be plain names, got \(describe(key))")
            }
            let name = scalar.string
            let path = parent.map { "\($0).\(name)" } ?? name
            result.append(Entry(name: name, path: path, keyLine: key.mark?.line, value: value))
        }
        return result
    }

    /// The text of a scalar value, or a type error saying what was expected.
    func scalarText(_ entry: Entry, expecting expectation: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = entry.value, !isNull(entry.value) else {
            throw error(entry.keyLine, entry.path, "expected \(expectation), got \(describe(entry.value))")
        }
        return scalar.string
    }

    func unknownKey(_ entry: Entry, known: [String]) -> ConfigError {
        var message = "unknown key"
        if entry.name == "<<" {
            message += "; YAML merge keys (<<) are not supported"
        } else if !entry.path.contains("."),
                  let section = Self.sectionKeys.first(where: { $0.value.contains(entry.name) })?.key {
            // A nested setting written at the top level, e.g. "idle: 30s" instead of under tcp_keepalive.
            message += "; \(entry.name) belongs under \(section):"
        } else if let suggestion = Suggestions.closest(to: entry.name, among: known) {
            message += "; did you mean \(suggestion)?"
        } else {
            message += " (known keys here: \(known.joined(separator: ", ")))"
        }
        return error(entry.keyLine, entry.path, message)
    }

    /// Runs a value parser that knows no positions and places its error at the entry's value.
    func located<T>(_ entry: Entry, _ parse: () throws(ConfigError) -> T) throws(ConfigError) -> T {
        do {
            return try parse()
        } catch {
            throw error.located(file: file, line: entry.valueLine)
        }
    }

    func error(_ line: Int?, _ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, key: key, message: message)
    }
}

/// Whether a node is YAML null ("", "~", "null"); quoted strings never are.
func isNull(_ node: Node) -> Bool {
    guard case .scalar = node else { return false }
    return node.tag.rawValue == Tag.Name.null.rawValue
}

/// A value's kind or text, for "got ..." in error messages.
func describe(_ node: Node) -> String {
    switch node {
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    case .scalar(let scalar): isNull(node) ? "nothing (null)" : quoted(scalar.string)
    }
}
