// The upstream PostgreSQL server as a libpq connection URI, parsed by libpq's rules into its parts.

/// Where Switchyard forwards client sessions, written as a libpq URI:
/// `postgresql://[user[:password]@][host][:port][/database][?param=value&...]`.
///
/// Client sessions only use `host` and `port`: each client authenticates as itself, with the user and
/// database of its own startup message. `user`, `password` and `database` are Switchyard's own,
/// for its side connections.
public struct UpstreamURI: Sendable, Equatable {
    /// A hostname, an IP literal (IPv6 without brackets), or an absolute directory holding a Unix socket.
    public var host: String
    /// Defaults to 5432.
    public var port: Int
    /// Switchyard's own user for side connections (percent-decoded).
    public var user: String?
    /// Percent-decoded; nil when absent or empty.
    public var password: String?
    /// Percent-decoded; nil when absent or empty.
    public var database: String?
    /// The remaining query parameters (sslmode, connect_timeout, application_name, ...), percent-decoded.
    /// host, port, user, password and dbname given in the query are folded into the properties above instead.
    public var parameters: [String: String]
    public var isUnixSocket: Bool { host.hasPrefix("/") }
    /// The text as written. It contains the password: log `redacted` instead.
    public var original: String
    /// The URI with the password (in the user info or the query) replaced by "********".
    public var redacted: String

    public static let defaultPort = 5432

    /// libpq's connection keywords, so a misspelt parameter fails at startup rather than at first connect.
    static let knownParameters: [String] = [
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth", "channel_binding",
        "connect_timeout", "client_encoding", "options", "application_name", "fallback_application_name",
        "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "replication", "gssencmode", "sslmode", "sslnegotiation", "sslcompression", "sslcert", "sslkey",
        "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "sslkeylogfile",
        "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "min_protocol_version",
        "max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs",
        "load_balance_hosts", "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id",
        "oauth_client_secret", "oauth_scope", "ssl",
    ]

    static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    /// Parses a libpq URI. Errors are reported under the key "upstream".
    public static func parse(_ text: String) throws(ConfigError) -> UpstreamURI {
        let key = "upstream"
        func fail(_ message: String) -> ConfigError { ConfigError(key: key, message: message) }

        let expectation = "expected a URI such as postgresql://switchyard@127.0.0.1:5432/postgres"
        let trimmed = text.trimmingWhitespace()
        guard let scheme = ["postgresql://", "postgres://"].first(where: { trimmed.hasPrefix($0) }) else {
            if trimmed.contains("=") && !trimmed.contains("://") {
                throw fail("\(expectation); key=value connection strings are not supported, write them as a URI")
            }
            throw fail("\(expectation), got \(quoted(text)); the scheme must be postgresql:// or postgres://")
        }
        let rest = trimmed.dropFirst(scheme.count)

        // The authority runs to the first "/" or "?"; a "/" or "?" inside a password must be percent-encoded.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var userInfoRaw: Substring?
        var hostPortRaw = authority
        // The last "@" ends the user info, so an unencoded "@" in a password still parses.
        if let at = authority.lastIndex(of: "@") {
            userInfoRaw = authority[..<at]
            hostPortRaw = authority[authority.index(after: at)...]
        }

        var user: String?
        var passwordRaw: Substring?
        var password: String?
        if let userInfo = userInfoRaw {
            let colon = userInfo.firstIndex(of: ":")
            let userPart = colon.map { userInfo[..<$0] } ?? userInfo
            user = try percentDecoded(userPart, what: "user name").nonEmpty
            if let colon {
                let raw = userInfo[userInfo.index(after: colon)...]
                passwordRaw = raw
                password = try percentDecoded(raw, what: "password").nonEmpty
            }
        }

        if hostPortRaw.contains(",") {
            throw fail("multiple hosts (\(quoted(String(hostPortRaw)))) are not supported; give exactly one host")
        }
        var host: String
        var portRaw: Substring?
        if hostPortRaw.hasPrefix("[") {
            guard let close = hostPortRaw.firstIndex(of: "]") else {
                throw fail("unterminated IPv6 address in \(quoted(String(hostPortRaw))): missing \"]\"")
            }
            host = String(hostPortRaw[hostPortRaw.index(after: hostPortRaw.startIndex)..<close])
            let after = hostPortRaw[hostPortRaw.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw fail("unexpected \(quoted(String(after))) after the IPv6 address; expected :port")
                }
                portRaw = after.dropFirst()
            }
            if host.isEmpty || !host.contains(":") {
                throw fail("\(quoted(host)) in brackets is not an IPv6 address")
            }
        } else {
            let colon = hostPortRaw.firstIndex(of: ":")
            let hostPart = colon.map { hostPortRaw[..<$0] } ?? hostPortRaw
            if let colon {
                portRaw = hostPortRaw[hostPortRaw.index(after: colon)...]
                if portRaw!.contains(":") {
                    throw fail("an IPv6 address needs brackets, as in postgresql://[::1]:5432/postgres")
                }
            }
            host = try percentDecoded(hostPart, what: "host")
        }

        var port = defaultPort
        if let portRaw, !portRaw.isEmpty {
            port = try parsePort(String(portRaw))
        }

        // The path is the database name.
        var database: String?
        var pathRaw = Substring("")
        var queryRaw: Substring?
        let afterAuthority = rest[authorityEnd...]
        if let question = afterAuthority.firstIndex(of: "?") {
            pathRaw = afterAuthority[..<question]
            queryRaw = afterAuthority[afterAuthority.index(after: question)...]
        } else {
            pathRaw = afterAuthority
        }
        if pathRaw.hasPrefix("/") {
            database = try percentDecoded(pathRaw.dropFirst(), what: "database name").nonEmpty
        }

        // Query parameters: the connection keywords override the URI's parts, as in libpq.
        var parameters: [String: String] = [:]
        var redactedQuery: [String] = []
        var queryHasPassword = false
        for segment in (queryRaw ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = segment.firstIndex(of: "=") else {
                throw fail("query parameter \(quoted(String(segment))) has no value; expected name=value")
            }
            let name = try percentDecoded(segment[..<equals], what: "query parameter name")
            let value = try percentDecoded(segment[segment.index(after: equals)...], what: "query parameter \(name)")
            guard knownParameters.contains(name) else {
                throw fail("unknown connection parameter \(quoted(name))\(Suggestions.hint(for: name, among: knownParameters))")
            }
            if name == "password" {
                queryHasPassword = true
                redactedQuery.append(String(segment[..<equals]) + "=********")
            } else {
                redactedQuery.append(String(segment))
            }
            switch name {
            case "host":
                if value.contains(",") {
                    throw fail("multiple hosts (\(quoted(value))) are not supported; give exactly one host")
                }
                host = value
            case "port": port = try parsePort(value)
            case "user": user = value.nonEmpty
            case "password": password = value.nonEmpty
            case "dbname": database = value.nonEmpty
            case "ssl":
                // libpq's JDBC compatibility: ssl=true means sslmode=require.
                guard value == "true" else { throw fail("ssl=\(value) is not supported; use ssl=true or sslmode=...") }
                parameters["sslmode"] = "require"
            case "sslmode":
                guard sslModes.contains(value) else {
                    throw fail("sslmode must be one of \(sslModes.joined(separator: ", ")), got \(quoted(value))")
                }
                parameters[name] = value
            default:
                parameters[name] = value
            }
        }

        if host.isEmpty { host = "localhost" }
        if host.contains("/") && !host.hasPrefix("/") {
            throw fail("a Unix socket directory must be an absolute path, got \(quoted(host))")
        }
        if host.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) {
            throw fail("the host \(quoted(host)) contains whitespace or control characters")
        }

        var redacted = scheme
        if let userInfoRaw {
            let userRaw = userInfoRaw.prefix { $0 != ":" }
            let hasPassword = !(passwordRaw ?? "").isEmpty
            redacted += String(hasPassword ? userRaw : userInfoRaw) + (hasPassword ? ":********@" : "@")
        }
        redacted += String(hostPortRaw) + String(pathRaw)
        if let queryRaw {
            // Rebuilt only when it held a password, so an untouched URI reads exactly as written.
            redacted += "?" + (queryHasPassword ? redactedQuery.joined(separator: "&") : String(queryRaw))
        }

        return UpstreamURI(
            host: host, port: port, user: user, password: password, database: database,
            parameters: parameters, original: text, redacted: redacted)
    }

    private static func parsePort(_ text: String) throws(ConfigError) -> Int {
        guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit), let port = Int(text), (1...65535).contains(port) else {
            throw ConfigError(key: "upstream", message: "the port must be a number from 1 to 65535, got \(quoted(text))")
        }
        return port
    }

    /// Decodes %XX escapes as UTF-8, rejecting malformed escapes and NUL as libpq does.
    static func percentDecoded(_ text: Substring, what: String) throws(ConfigError) -> String {
        func fail(_ why: String) -> ConfigError {
            ConfigError(key: "upstream", message: "invalid percent-encoding in the \(what) \(quoted(String(text))): \(why)")
        }
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2,
                  let high = hexValue(utf8[utf8.startIndex]),
                  let low = hexValue(utf8[utf8.index(after: utf8.startIndex)]) else {
                throw fail("\"%\" must be followed by two hex digits")
            }
            utf8 = utf8.dropFirst(2)
            let decoded = high << 4 | low
            guard decoded != 0 else { throw fail("%00 is not allowed") }
            bytes.append(decoded)
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw fail("the decoded bytes are not valid UTF-8")
        }
        return string
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
