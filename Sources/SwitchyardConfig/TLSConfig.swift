// The TLS settings and their reader: `client_tls` (applications to Switchyard) and `server_tls` (Switchyard to PostgreSQL).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Yams

/// `client_tls.mode`: what Switchyard asks of the applications, as PgBouncer's `client_tls_sslmode`.
public enum ClientTLSMode: String, Sendable, Equatable, CaseIterable {
    /// SSLRequest is answered 'N': plain TCP only.
    case disable
    /// TLS when the client asks for it, plain TCP otherwise.
    case allow
    /// The same as allow on the server side of a connection (the client decides).
    case prefer
    /// TLS only: a plaintext startup is refused with SQLSTATE 28000.
    case require
    /// TLS with a client certificate signed by `ca`.
    case verifyCA = "verify-ca"
    /// As verify-ca, and the certificate's common name must be the user name of the startup message.
    case verifyFull = "verify-full"

    /// Whether an SSLRequest is answered 'S'.
    public var offersTLS: Bool { self != .disable }
    /// Whether a startup message on a plaintext connection is refused.
    public var requiresTLS: Bool { self == .require || requiresCertificate }
    /// Whether the client must present a certificate that `ca` verifies.
    public var requiresCertificate: Bool { self == .verifyCA || self == .verifyFull }
}

/// `client_tls`: TLS between applications and Switchyard, terminated by Switchyard.
public struct ClientTLSConfig: Sendable, Equatable {
    /// mode. Default disable.
    public var mode: ClientTLSMode
    /// cert: the certificate (PEM, may hold the chain) Switchyard presents to clients.
    public var cert: String?
    /// key: its private key (PEM).
    public var key: String?
    /// ca: the certificates (PEM) that client certificates must chain to; read by verify-ca and verify-full.
    public var ca: String?

    public init(mode: ClientTLSMode = .disable, cert: String? = nil, key: String? = nil, ca: String? = nil) {
        self.mode = mode
        self.cert = cert
        self.key = key
        self.ca = ca
    }
}

/// `server_tls.sslmode`: libpq's sslmode, for Switchyard's own connections to PostgreSQL.
public enum ServerSSLMode: String, Sendable, Equatable, CaseIterable {
    /// Plain TCP only.
    case disable
    /// Plain TCP first; TLS when the server refuses the plaintext connection.
    case allow
    /// TLS when the server offers it, plain TCP otherwise (no verification).
    case prefer
    /// TLS only; the certificate is verified against `root_cert` when one is given, as libpq does.
    case require
    /// TLS only, with a server certificate that chains to `root_cert`.
    case verifyCA = "verify-ca"
    /// As verify-ca, and the certificate must name the upstream host.
    case verifyFull = "verify-full"
}

/// `server_tls`: TLS between Switchyard and PostgreSQL, with libpq's sslmode semantics.
public struct ServerTLSConfig: Sendable, Equatable {
    /// sslmode. Default disable (when the section is absent, connections are plain as before).
    public var sslmode: ServerSSLMode
    /// root_cert: the certificates (PEM) the server's certificate must chain to.
    public var rootCert: String?

    public init(sslmode: ServerSSLMode = .disable, rootCert: String? = nil) {
        self.sslmode = sslmode
        self.rootCert = rootCert
    }

    /// Whether the server's certificate chain is checked: verify-ca and verify-full, and require
    /// with a root certificate (libpq's rule, so that giving the CA file never weakens a connection).
    public var verifiesChain: Bool {
        switch sslmode {
        case .verifyCA, .verifyFull: true
        case .require: rootCert != nil
        case .disable, .allow, .prefer: false
        }
    }

    /// sslmode and sslrootcert for a libpq connection string (Switchyard's side connections).
    public var libpqParameters: [(String, String)] {
        var parameters = [("sslmode", sslmode.rawValue)]
        if let rootCert { parameters.append(("sslrootcert", rootCert)) }
        return parameters
    }
}

extension SwitchyardConfiguration {
    /// Side connections (libpq) follow server_tls too: its sslmode and sslrootcert go into the upstream
    /// and control URIs' parameters, except where a URI sets its own. sslmode disable leaves them as written.
    mutating func applyServerTLSToSideConnections() {
        guard serverTLS.sslmode != .disable else { return }
        upstream = upstream.adding(serverTLS.libpqParameters)
        control.database = control.database?.adding(serverTLS.libpqParameters)
    }
}

extension UpstreamURI {
    /// The URI with these libpq parameters, each unless the URI already has it.
    func adding(_ extra: [(String, String)]) -> UpstreamURI {
        var copy = self
        for (key, value) in extra where copy.parameters[key] == nil {
            copy.parameters[key] = value
        }
        return copy
    }
}

extension DocumentReader {
    static let clientTLSKeys = ["mode", "cert", "key", "ca"]
    static let serverTLSKeys = ["sslmode", "root_cert"]

    /// `client_tls: { mode: require, cert: FILE, key: FILE, ca: FILE }`. Every file named must be readable
    /// now, so that a typo fails at startup rather than at the first client's handshake.
    func clientTLS(_ section: Entry) throws(ConfigError) -> ClientTLSConfig {
        var result = ClientTLSConfig()
        var lines: [String: Int?] = [:]
        for entry in try sectionEntries(section) {
            lines[entry.name] = entry.keyLine
            switch entry.name {
            case "mode":
                result.mode = try choice(entry, among: ClientTLSMode.allCases)
            case "cert": result.cert = try readableFile(entry)
            case "key": result.key = try readableFile(entry)
            case "ca": result.ca = try readableFile(entry)
            default: throw unknownKey(entry, known: Self.clientTLSKeys)
            }
        }
        guard result.mode != .disable else { return result }
        let modeLine = lines["mode"] ?? section.keyLine
        for (name, value) in [("cert", result.cert), ("key", result.key)] where value == nil {
            throw error(modeLine, "\(section.path).\(name)",
                        "required when mode is \(result.mode.rawValue): the \(name == "cert" ? "certificate" : "private key") file (PEM) Switchyard presents to clients")
        }
        if result.mode.requiresCertificate && result.ca == nil {
            throw error(modeLine, "\(section.path).ca",
                        "required when mode is \(result.mode.rawValue): the CA certificates (PEM) that client certificates must chain to")
        }
        return result
    }

    /// `server_tls: { sslmode: verify-full, root_cert: FILE }`.
    func serverTLS(_ section: Entry) throws(ConfigError) -> ServerTLSConfig {
        var result = ServerTLSConfig()
        var modeLine: Int?? = nil
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "sslmode":
                result.sslmode = try choice(entry, among: ServerSSLMode.allCases)
                modeLine = entry.keyLine
            case "root_cert": result.rootCert = try readableFile(entry)
            default: throw unknownKey(entry, known: Self.serverTLSKeys)
            }
        }
        if (result.sslmode == .verifyCA || result.sslmode == .verifyFull) && result.rootCert == nil {
            throw error(modeLine ?? section.keyLine, "\(section.path).root_cert",
                        "required when sslmode is \(result.sslmode.rawValue): the CA certificates (PEM) the server's certificate must chain to")
        }
        return result
    }

    /// One of an enumeration's raw values, with a suggestion for a near miss.
    private func choice<T: RawRepresentable & CaseIterable>(_ entry: Entry, among cases: T.AllCases) throws(ConfigError) -> T
    where T.RawValue == String {
        let names = cases.map(\.rawValue)
        let text = try scalarText(entry, expecting: "one of \(names.joined(separator: ", "))")
        let normalized = text.trimmingWhitespace().lowercased()
        guard let value = T(rawValue: normalized) else {
            let hint = Suggestions.closest(to: normalized, among: names)
            throw error(entry.valueLine, entry.path,
                        "expected one of \(names.joined(separator: ", ")), got \(quoted(text))" + (hint.map { "; did you mean \($0)?" } ?? ""))
        }
        return value
    }

    /// A path to a regular file this process can read; null means none.
    private func readableFile(_ entry: Entry) throws(ConfigError) -> String? {
        if isNull(entry.value) { return nil }
        let path = try scalarText(entry, expecting: "the path of a PEM file, or null for none")
        guard !path.isEmpty else { throw error(entry.valueLine, entry.path, "the path is empty; use null (or omit the key) for none") }
        if let problem = Self.unreadable(path) {
            throw error(entry.valueLine, entry.path, "cannot read \(path): \(problem)")
        }
        return path
    }

    /// Why `path` cannot be read as a file, or nil when it can.
    static func unreadable(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return String(cString: strerror(errno)) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            return status.st_mode & S_IFMT == S_IFDIR ? "it is a directory" : "it is not a regular file"
        }
        return nil
    }
}

extension SwitchyardConfiguration {
    /// The TLS keys as SHOW CONFIG lists them; file paths are shown, never file contents, and a file
    /// not given is "null", as the file would say.
    func tlsSummaryLines() -> [(key: String, value: String)] {
        [
            ("client_tls.mode", clientTLS.mode.rawValue),
            ("client_tls.cert", clientTLS.cert ?? "null"),
            ("client_tls.key", clientTLS.key ?? "null"),
            ("client_tls.ca", clientTLS.ca ?? "null"),
            ("server_tls.sslmode", serverTLS.sslmode.rawValue),
            ("server_tls.root_cert", serverTLS.rootCert ?? "null"),
        ]
    }
}
