// A listening address ("127.0.0.1:6432", "[::1]:6432", "localhost:6432") and its parser.

/// A host and TCP port to listen on. Port 0 asks the kernel for a free port (useful in tests).
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    /// A hostname or an IP literal; IPv6 literals are stored without brackets.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Whether `host` (a name or an address, IPv6 without brackets, as in ``host``) can only be
    /// reached from this machine: localhost, 127.0.0.0/8 or ::1.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.") || h == "0:0:0:0:0:0:0:1"
    }

    /// The form the parser accepts, with IPv6 literals bracketed so the port stays unambiguous.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses "host:port", "[ipv6]:port". `key` names the setting or flag in errors.
    public static func parse(_ text: String, key: String) throws(ConfigError) -> HostPort {
        let expectation = "expected host:port such as 127.0.0.1:6432, [::1]:6432 or localhost:6432"
        let trimmed = text.trimmingWhitespace()
        let host: String
        let portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw ConfigError(key: key, message: "\(expectation), got \(quoted(text)) (missing \"]\")")
            }
            host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ConfigError(key: key, message: "\(expectation), got \(quoted(text)) (missing the port)")
            }
            portText = rest.dropFirst()
            guard !host.isEmpty, host.contains(":"), host.unicodeScalars.allSatisfy(isIPv6LiteralScalar) else {
                throw ConfigError(key: key, message: "\(quoted(host)) is not an IPv6 address")
            }
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else {
                // A bare port is the likeliest slip; show the full form.
                let isPort = !trimmed.isEmpty && trimmed.allSatisfy(\.isASCIIDigit)
                let hint = isPort ? "; did you mean 127.0.0.1:\(trimmed)?" : ""
                throw ConfigError(key: key, message: "\(expectation), got \(quoted(text))\(hint)")
            }
            host = String(trimmed[..<colon])
            portText = trimmed[trimmed.index(after: colon)...]
            if host.contains(":") {
                throw ConfigError(
                    key: key, message: "an IPv6 address needs brackets, as in [\(host)]:\(portText); got \(quoted(text))")
            }
            if host.isEmpty {
                throw ConfigError(
                    key: key,
                    message: "the host is empty in \(quoted(text)); use 0.0.0.0 or [::] to listen on every interface")
            }
            guard host.unicodeScalars.allSatisfy(isHostNameScalar) else {
                throw ConfigError(key: key, message: "\(quoted(host)) is not a valid host name or IP address")
            }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), let port = Int(portText), port <= 65535 else {
            throw ConfigError(
                key: key, message: "the port must be a number from 0 to 65535, got \(quoted(String(portText)))")
        }
        return HostPort(host: host, port: port)
    }
}

/// Letters, digits, "-", "." and "_": host names and IPv4 literals.
private func isHostNameScalar(_ scalar: Unicode.Scalar) -> Bool {
    scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-._".unicodeScalars.contains(scalar))
}

/// Hex digits, colons, dots (embedded IPv4) and "%" (a zone such as fe80::1%eth0; the zone is checked loosely).
private func isIPv6LiteralScalar(_ scalar: Unicode.Scalar) -> Bool {
    scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || ":.%".unicodeScalars.contains(scalar))
}
