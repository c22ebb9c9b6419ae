// A throwaway certificate authority with server and client certificates, made with the openssl command line.
import Foundation
import Glibc

/// Certificates for TLS tests in a fresh temporary directory: a CA, a server certificate for
/// 127.0.0.1 and localhost, and client certificates whose common names are user names. The openssl
/// command must be installed (scripts/install-deps.sh); without it this fails, it never skips.
public final class TestCertificates: Sendable {
    public let directory: String
    public var caCertificate: String { directory + "/ca.crt" }
    public var serverCertificate: String { directory + "/server.crt" }
    public var serverKey: String { directory + "/server.key" }
    /// A second CA that signed nothing here: a root that verifies none of the certificates above.
    public var otherCACertificate: String { directory + "/other-ca.crt" }

    public init() throws {
        let openssl = try findExecutable("openssl")
        var template = Array("/tmp/switchyard-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
        directory = String(cString: made)
        do {
            for ca in ["ca", "other-ca"] {
                try Self.run(openssl, [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", "\(directory)/\(ca).key", "-out", "\(directory)/\(ca).crt", "-days", "2",
                    "-subj", "/CN=Switchyard test \(ca)", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ])
            }
            try issue(openssl, name: "server", commonName: "localhost",
                      extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        } catch {
            remove()
            throw error
        }
    }

    /// A client certificate (and key, mode 0600 as libpq requires) signed by the CA, for `user`.
    public func client(_ user: String) throws -> (certificate: String, key: String) {
        let name = "client-\(user)"
        let path = directory + "/\(name).crt"
        if access(path, R_OK) != 0 {
            try issue(try findExecutable("openssl"), name: name, commonName: user, extensions: "extendedKeyUsage=clientAuth\n")
        }
        return (path, directory + "/\(name).key")
    }

    private func issue(_ openssl: String, name: String, commonName: String, extensions: String) throws {
        let base = "\(directory)/\(name)"
        try Self.run(openssl, [
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=\(commonName)",
        ])
        try (extensions + "basicConstraints=CA:FALSE\n").write(toFile: base + ".ext", atomically: true, encoding: .utf8)
        try Self.run(openssl, [
            "x509", "-req", "-in", base + ".csr", "-CA", caCertificate, "-CAkey", directory + "/ca.key",
            "-CAcreateserial", "-out", base + ".crt", "-days", "2", "-extfile", base + ".ext",
        ])
        chmod(base + ".key", 0o600)
    }

    private static func run(_ openssl: String, _ arguments: [String]) throws {
        let result = try runProcess(openssl, arguments, timeout: .seconds(60))
        guard result.status == 0 else {
            throw HarnessError("openssl \(arguments.prefix(2).joined(separator: " ")) failed (status \(result.status)): \(result.stderr)")
        }
    }

    /// Copies the server certificate and key into `directory`, owned by `owner` (the PostgreSQL
    /// server's user), the key readable by that user only, as PostgreSQL insists.
    public func installServerFiles(into target: String, owner: uid_t, group: gid_t) throws {
        for (source, name, mode) in [(serverCertificate, "server.crt", 0o644), (serverKey, "server.key", 0o600), (caCertificate, "root.crt", 0o644)] {
            let destination = target + "/" + name
            try? FileManager.default.removeItem(atPath: destination)
            try FileManager.default.copyItem(atPath: source, toPath: destination)
            guard chown(destination, owner, group) == 0, chmod(destination, mode_t(mode)) == 0 else {
                throw HarnessError("cannot give \(destination) to uid \(owner): \(String(cString: strerror(errno)))")
            }
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
