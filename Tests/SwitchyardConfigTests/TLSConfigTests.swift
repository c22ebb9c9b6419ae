// The client_tls and server_tls sections: defaults, every key, each mode's requirements, and unreadable files named with key and line.

import Foundation
import Testing
import SwitchyardConfig

@Suite("The TLS sections")
struct TLSConfigTests {
    /// Three empty PEM stand-ins in a directory of their own (the reader checks readability, not content).
    final class Files {
        let directory: String
        var cert: String { directory + "/server.crt" }
        var key: String { directory + "/server.key" }
        var ca: String { directory + "/ca.crt" }

        init() throws {
            directory = NSTemporaryDirectory() + "switchyard-tls-config-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for path in [cert, key, ca] {
                try "-----BEGIN CERTIFICATE-----\n".write(toFile: path, atomically: true, encoding: .utf8)
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    @Test("without the sections, or with empty ones, TLS is off both ways")
    func defaults() throws {
        for body in ["", "client_tls:\nserver_tls:", "client_tls: {}\nserver_tls: {}"] {
            let config = try Fixture.parse(body)
            #expect(config.clientTLS == ClientTLSConfig())
            #expect(config.serverTLS == ServerTLSConfig())
        }
        #expect(ClientTLSConfig().mode == .disable)
        #expect(ServerTLSConfig().sslmode == .disable)
    }

    @Test("every key is read, and SHOW CONFIG lists them")
    func everyKey() throws {
        let files = try Files()
        let config = try Fixture.parse("""
            client_tls:
              mode: verify-full
              cert: \(files.cert)
              key: \(files.key)
              ca: \(files.ca)
            server_tls:
              sslmode: verify-ca
              root_cert: \(files.ca)
            """)
        #expect(config.clientTLS == ClientTLSConfig(mode: .verifyFull, cert: files.cert, key: files.key, ca: files.ca))
        #expect(config.serverTLS == ServerTLSConfig(sslmode: .verifyCA, rootCert: files.ca))
        let values = Dictionary(uniqueKeysWithValues: config.summaryLines().map { ($0.key, $0.value) })
        #expect(values["client_tls.mode"] == "verify-full")
        #expect(values["client_tls.key"] == files.key)
        #expect(values["client_tls.ca"] == files.ca)
        #expect(values["server_tls.sslmode"] == "verify-ca")
        #expect(values["server_tls.root_cert"] == files.ca)
        #expect(config.serverTLS.libpqParameters.map { "\($0.0)=\($0.1)" } == ["sslmode=verify-ca", "sslrootcert=\(files.ca)"])
    }

    @Test("proxy-config/tls-example.yaml loads once the files it names exist: require in, verify-full out")
    func exampleLoads() throws {
        let files = try Files()
        let components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        let path = (components.dropLast(3) + ["proxy-config", "tls-example.yaml"]).joined(separator: "/")
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "/etc/switchyard/tls/switchyard.crt", with: files.cert)
            .replacingOccurrences(of: "/etc/switchyard/tls/switchyard.key", with: files.key)
            .replacingOccurrences(of: "/etc/switchyard/tls/postgres-ca.crt", with: files.ca)
        let config = try ConfigLoader.parse(yaml: text, file: path)
        #expect(config.clientTLS == ClientTLSConfig(mode: .require, cert: files.cert, key: files.key))
        #expect(config.serverTLS == ServerTLSConfig(sslmode: .verifyFull, rootCert: files.ca))
        #expect(config.upstream.parameters == ["sslmode": "verify-full", "sslrootcert": files.ca])
        // As written, the placeholder paths do not exist, and loading says which.
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error.key == "client_tls.cert")
        #expect(error.message.hasPrefix("cannot read /etc/switchyard/tls/switchyard.crt"))
    }

    @Test("what each client mode asks of the application")
    func clientModes() {
        let table: [(ClientTLSMode, offers: Bool, requires: Bool, certificate: Bool)] = [
            (.disable, false, false, false), (.allow, true, false, false), (.prefer, true, false, false),
            (.require, true, true, false), (.verifyCA, true, true, true), (.verifyFull, true, true, true),
        ]
        for (mode, offers, requires, certificate) in table {
            #expect(mode.offersTLS == offers, "\(mode)")
            #expect(mode.requiresTLS == requires, "\(mode)")
            #expect(mode.requiresCertificate == certificate, "\(mode)")
        }
    }

    @Test("require verifies the server's chain only with a root certificate, as libpq")
    func serverChain() {
        #expect(!ServerTLSConfig(sslmode: .require).verifiesChain)
        #expect(ServerTLSConfig(sslmode: .require, rootCert: "/ca.crt").verifiesChain)
        #expect(ServerTLSConfig(sslmode: .verifyCA, rootCert: "/ca.crt").verifiesChain)
        #expect(ServerTLSConfig(sslmode: .verifyFull, rootCert: "/ca.crt").verifiesChain)
        #expect(!ServerTLSConfig(sslmode: .prefer, rootCert: "/ca.crt").verifiesChain)
        #expect(!ServerTLSConfig(sslmode: .allow).verifiesChain)
    }

    @Test("side connections take server_tls's sslmode and root certificate, unless their URI says otherwise")
    func sideConnections() throws {
        let files = try Files()
        let tls = "server_tls:\n  sslmode: verify-full\n  root_cert: \(files.ca)\n"
        let config = try Fixture.parse(tls + "control:\n  database: postgresql://ctl@control-db/switchyard")
        #expect(config.upstream.parameters == ["sslmode": "verify-full", "sslrootcert": files.ca])
        #expect(config.control.database?.parameters == ["sslmode": "verify-full", "sslrootcert": files.ca])
        // What the URI shows is what was written.
        #expect(config.upstream.redacted == "postgresql://switchyard@db.internal:5432/postgres")

        let own = try ConfigLoader.parse(yaml: "upstream: postgresql://switchyard@db/postgres?sslmode=require\n" + tls)
        #expect(own.upstream.parameters == ["sslmode": "require", "sslrootcert": files.ca])

        let disabled = try Fixture.parse("server_tls:\n  sslmode: disable")
        #expect(disabled.upstream.parameters.isEmpty)
    }

    @Test("a missing or unreadable file is an error naming the key, the line and the file")
    func unreadableFiles() throws {
        let files = try Files()
        let missing = files.directory + "/missing.key"
        let file = files.directory + "/switchyard.yaml"
        try """
            \(Fixture.upstreamLine)
            client_tls:
              mode: require
              cert: \(files.cert)
              key: \(missing)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: file) }
        #expect(error.key == "client_tls.key")
        #expect(error.line == 5)
        #expect(error.file == file)
        #expect(error.description == "\(file):5: client_tls.key: cannot read \(missing): No such file or directory")

        let directory = try #require(Fixture.error(Fixture.upstreamLine + "\nclient_tls:\n  mode: allow\n  cert: \(files.directory)\n  key: \(files.key)"))
        #expect(directory.key == "client_tls.cert")
        #expect(directory.line == 4)
        #expect(directory.message == "cannot read \(files.directory): it is a directory")

        let root = try #require(Fixture.error(Fixture.upstreamLine + "\nserver_tls:\n  sslmode: verify-full\n  root_cert: \(missing)"))
        #expect(root.key == "server_tls.root_cert")
        #expect(root.line == 4)
        #expect(root.message.contains(missing))
    }

    static let invalid: [InvalidCase] = [
        InvalidCase("client_tls:\n  mode: requre", key: "client_tls.mode", line: 3, "did you mean require?"),
        InvalidCase("client_tls:\n  mode: [require]", key: "client_tls.mode", line: 3, "expected one of disable, allow, prefer, require, verify-ca, verify-full"),
        InvalidCase("client_tls:\n  mode: require", key: "client_tls.cert", line: 3, "required when mode is require"),
        InvalidCase("client_tls:\n  certificate: x", key: "client_tls.certificate", line: 3, "unknown key (known keys here: mode, cert, key, ca)"),
        InvalidCase("client_tls:\n  cert: \"\"", key: "client_tls.cert", line: 3, "the path is empty"),
        InvalidCase("client_tls: require", key: "client_tls", line: 2, "expected a mapping with the keys mode, cert, key, ca"),
        InvalidCase("server_tls:\n  sslmode: verify-fulll", key: "server_tls.sslmode", line: 3, "did you mean verify-full?"),
        InvalidCase("server_tls:\n  sslmode: verify-ca", key: "server_tls.root_cert", line: 3, "required when sslmode is verify-ca"),
        InvalidCase("server_tls:\n  rootcert: x", key: "server_tls.rootcert", line: 3, "did you mean root_cert?"),
        InvalidCase("sslmode: require", key: "sslmode", line: 2, "sslmode belongs under server_tls:"),
    ]

    @Test("each mistake is reported at its key and line", arguments: invalid)
    func mistakes(_ c: InvalidCase) throws {
        let error = try #require(Fixture.error(Fixture.upstreamLine + "\n" + c.yaml))
        #expect(error.key == c.key)
        #expect(error.line == c.line)
        #expect(error.message.contains(c.messageContains), "\(error.message)")
    }

    @Test("verify modes need the client CA; the key is named with the mode's line")
    func verifyNeedsCA() throws {
        let files = try Files()
        for mode in ["verify-ca", "verify-full"] {
            let error = try #require(Fixture.error(Fixture.upstreamLine + "\nclient_tls:\n  cert: \(files.cert)\n  key: \(files.key)\n  mode: \(mode)"))
            #expect(error.key == "client_tls.ca")
            #expect(error.line == 5)
            #expect(error.message.contains("required when mode is \(mode)"))
        }
        let missingKey = try #require(Fixture.error(Fixture.upstreamLine + "\nclient_tls:\n  mode: prefer\n  cert: \(files.cert)"))
        #expect(missingKey.key == "client_tls.key")
    }
}
