// TLS both ways through Switchyard: psql, pgbench and psycopg over verified TLS, refusals per client_tls.mode, and SCRAM to an upstream that requires TLS.
import Foundation
import Glibc
import Logging
import SwitchyardConfig
import SwitchyardProtocol
import SwitchyardServer
import SwitchyardTestSupport
import Synchronization
import Testing

@Suite(.serialized, .timeLimit(.minutes(10)))
final class TLSTests {
    let certificates: TestCertificates
    let cluster: PostgresCluster

    init() throws {
        certificates = try TestCertificates()
        cluster = try PostgresCluster.shared()
    }

    deinit { certificates.remove() }

    // MARK: - Helpers

    func clientTLS(_ mode: ClientTLSMode) -> ClientTLSConfig {
        ClientTLSConfig(mode: mode, cert: certificates.serverCertificate, key: certificates.serverKey,
                        ca: mode.requiresCertificate ? certificates.caCertificate : nil)
    }

    /// psql to 127.0.0.1:`port`; `ssl` holds libpq's settings (sslmode, sslrootcert, sslcert, ...).
    func psql(port: Int, user: String = "postgres", database: String = "postgres", password: String? = nil,
              ssl: [String: String], _ sql: String, stdin: String? = nil) throws -> ProcessResult {
        var environment = ["PGCONNECT_TIMEOUT": "10"]
        for (key, value) in ssl { environment["PG" + key.uppercased().replacingOccurrences(of: "_", with: "")] = value }
        if let password { environment["PGPASSWORD"] = password }
        var arguments = ["-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database]
        if !sql.isEmpty { arguments += ["-c", sql] }
        return try runProcess(cluster.psqlPath, arguments, environment: environment, stdin: stdin, timeout: .seconds(120))
    }

    var verifyFull: [String: String] { ["sslmode": "verify-full", "sslrootcert": certificates.caCertificate] }

    // MARK: - Client side

    @Test func requireServesPsqlPgbenchAndPsycopgOverVerifiedTLS() throws {
        let proxy = try ProxyFixture { $0.clientTLS = clientTLS(.require) }
        defer { proxy.stop() }

        for ssl in [["sslmode": "require"], verifyFull] {
            let info = try psql(port: proxy.port, ssl: ssl, "\\conninfo")
            #expect(info.status == 0, "\(ssl): \(info.stderr)")
            #expect(info.stdout.contains("SSL connection (protocol: TLSv1.3"), "\(info.stdout)")
        }
        // The certificate really is checked: another CA's root fails verify-full.
        let wrongRoot = try psql(port: proxy.port, ssl: ["sslmode": "verify-full", "sslrootcert": certificates.otherCACertificate], "select 1")
        #expect(wrongRoot.status == 2)
        #expect(wrongRoot.stderr.contains("certificate verify failed"), "\(wrongRoot.stderr)")

        // Large answers and a large COPY in, through TLS records of every size, equal to the direct results.
        let big = "select g, md5(g::text), repeat('x', g % 4000) from generate_series(1, 4000) g"
        let direct = try psql(port: cluster.port, ssl: ["sslmode": "disable"], big)
        let encrypted = try psql(port: proxy.port, ssl: verifyFull, big)
        #expect(encrypted.status == 0, "\(encrypted.stderr)")
        #expect(encrypted.stdout.count > 7_000_000 && encrypted.stdout == direct.stdout, "\(encrypted.stdout.count) bytes vs \(direct.stdout.count)")
        var script = "create temp table tls_copy (a int, b text);\ncopy tls_copy from stdin;\n"
        for i in 1...50_000 { script += "\(i)\t\(String(repeating: "z", count: i % 200))\n" }
        script += "\\.\nselect count(*), sum(a), sum(length(b)) from tls_copy;\n"
        let copy = try psql(port: proxy.port, ssl: verifyFull, "", stdin: script)
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(copy.stdout.contains("50000|1250025000|4975000"), "\(copy.stdout)")

        // pgbench with require and with verify-full: every transaction over TLS.
        let pgbenchScript = certificates.directory + "/select.sql"
        try "select 1;\nselect count(*) from generate_series(1, 100);\n".write(toFile: pgbenchScript, atomically: true, encoding: .utf8)
        for mode in ["require", "verify-full"] {
            let pgbench = try runProcess(
                try pgbenchPath(), ["-n", "-h", "127.0.0.1", "-p", String(proxy.port), "-U", "postgres", "-c", "4", "-j", "2", "-t", "50",
                                    "-f", pgbenchScript, "postgres"],
                environment: ["PGSSLMODE": mode, "PGSSLROOTCERT": certificates.caCertificate, "PGCONNECT_TIMEOUT": "10"],
                timeout: .seconds(120))
            #expect(pgbench.status == 0, "\(mode): \(pgbench.stderr)")
            #expect(pgbench.stdout.contains("number of transactions actually processed: 200/200"), "\(mode): \(pgbench.stdout)")
        }

        // psycopg 3 with verify-full.
        let python = try pythonForTests
        let program = """
            import json, sys, psycopg
            with psycopg.connect(sys.argv[1]) as conn:
                row = conn.execute("select %s::int + 1, current_user", [41], prepare=True).fetchone()
                print(json.dumps({"ssl": conn.pgconn.ssl_in_use, "row": [row[0], row[1]]}))
            """
        let conninfo = "host=127.0.0.1 port=\(proxy.port) user=postgres dbname=postgres connect_timeout=10 "
            + "sslmode=verify-full sslrootcert=\(certificates.caCertificate)"
        let psycopg = try runProcess(python, ["-c", program, conninfo], timeout: .seconds(60))
        #expect(psycopg.status == 0, "\(psycopg.stderr)")
        #expect(psycopg.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"ssl": true, "row": [42, "postgres"]}"#)

        // The admin console answers over TLS too.
        let console = try psql(port: proxy.port, database: "switchyard", ssl: verifyFull, "SHOW VERSION")
        #expect(console.status == 0 && console.stdout.contains("Switchyard"), "\(console.stdout)\(console.stderr)")
    }

    /// A TLS client that asks for a large result and resets its connection without reading it:
    /// Switchyard's next TLS write fails with EPIPE. OpenSSL writes with plain write(), so unless
    /// SIGPIPE is ignored that write kills the process. The switchyard binary runs as its own
    /// process here, with the signal dispositions a service manager gives it.
    @Test func aTLSClientResettingMidResultHarmsNoOtherSession() throws {
        let port = freeTCPPort()
        let configPath = NSTemporaryDirectory() + "switchyard-tls-reset-\(UUID().uuidString).yaml"
        try """
            listen: 127.0.0.1:\(port)
            upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres
            admin_listen: off
            client_tls:
              mode: require
              cert: \(certificates.serverCertificate)
              key: \(certificates.serverKey)
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        defer { unlink(configPath) }
        let logPath = configPath + ".log"
        defer { unlink(logPath) }
        let proxy = try ChildProcess.start(executable: try switchyardBinaryPath, arguments: ["serve", "--config", configPath], stdoutPath: logPath)
        defer { _ = proxy.terminate() }
        try waitForTCPPort(port, timeout: .seconds(20))
        let program = #"""
            import socket, ssl, struct, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
            s.sendall(struct.pack("!ii", 8, 80877103))
            assert s.recv(1) == b"S"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            t = context.wrap_socket(s)
            params = b"user\0postgres\0database\0postgres\0\0"
            t.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            buffer = b""
            ready = False
            for _ in range(1000):
                data = t.recv(65536)
                if not data:
                    sys.exit("closed during startup")
                buffer += data
                while len(buffer) >= 5:
                    length = struct.unpack("!i", buffer[1:5])[0]
                    if len(buffer) < 1 + length:
                        break
                    ready = ready or buffer[0:1] == b"Z"
                    buffer = buffer[1 + length:]
                if ready:
                    break
            assert ready
            query = b"select repeat('x', 1000) from generate_series(1, 200000)\0"
            t.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
            t.recv(1)
            # Reset the connection with the result still coming.
            t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.close()
            print("reset")
            """#
        let python = try pythonForTests
        for round in 1...3 {
            let reset = try runProcess(python, ["-c", program, String(port)], timeout: .seconds(60))
            #expect(reset.status == 0 && reset.stdout.contains("reset"), "round \(round): \(reset.stdout)\(reset.stderr)")
            // The proxy goes on writing into the reset connection, then serves the next client.
            usleep(300_000)
            #expect(proxy.isRunning, "round \(round): switchyard exited with \(proxy.status.map(String.init) ?? "?"): \(proxy.outputTail())")
            let after = try psql(port: port, ssl: ["sslmode": "require"], "select 41 + 1")
            #expect(after.status == 0 && after.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "42", "round \(round): \(after.stderr)")
        }
    }

    @Test func requireRefusesAPlaintextStartupWith28000() throws {
        let proxy = try ProxyFixture { $0.clientTLS = clientTLS(.require) }
        defer { proxy.stop() }
        let raw = try RawClient(port: proxy.port)
        raw.send(StartupPacket.startup(StartupMessage(parameters: [("user", "postgres"), ("database", "postgres")])).encode())
        let errors = RawClient.errors(RawClient.messages(raw.receive().bytes))
        #expect(errors.count == 1)
        #expect(errors.first?.sqlState == "28000")
        #expect(errors.first?.severity == "FATAL")
        #expect(errors.first?.message == "switchyard requires an encrypted connection (TLS); this one is not encrypted")

        let plain = try psql(port: proxy.port, ssl: ["sslmode": "disable"], "select 1")
        #expect(plain.status == 2)
        #expect(plain.stderr.contains("switchyard requires an encrypted connection (TLS)"), "\(plain.stderr)")
        // prefer (libpq's default) asks for TLS and gets it.
        let prefer = try psql(port: proxy.port, ssl: ["sslmode": "prefer"], "\\conninfo")
        #expect(prefer.status == 0 && prefer.stdout.contains("SSL connection"), "\(prefer.stderr)")
        // Bytes pushed after the SSLRequest, before the handshake, are refused in the clear.
        let stuffed = try RawClient(port: proxy.port)
        stuffed.send(StartupPacket.sslRequest.encode() + StartupPacket.startup(StartupMessage(parameters: [("user", "postgres")])).encode())
        let answer = stuffed.receive().bytes
        #expect(RawClient.errors(RawClient.messages(answer)).first?.message == "received unencrypted data after SSL request")
    }

    @Test func disableAnswersNAndAllowTakesBoth() throws {
        let disabled = try ProxyFixture()
        defer { disabled.stop() }
        let raw = try RawClient(port: disabled.port)
        raw.send(StartupPacket.sslRequest.encode())
        #expect(raw.receive(until: { $0.count >= 1 }).bytes == [UInt8(ascii: "N")])
        let required = try psql(port: disabled.port, ssl: ["sslmode": "require"], "select 1")
        #expect(required.status == 2)
        #expect(required.stderr.contains("server does not support SSL"), "\(required.stderr)")

        let allow = try ProxyFixture { $0.clientTLS = clientTLS(.allow) }
        defer { allow.stop() }
        let plain = try psql(port: allow.port, ssl: ["sslmode": "disable"], "\\conninfo")
        #expect(plain.status == 0 && !plain.stdout.contains("SSL connection"), "\(plain.stderr)")
        let encrypted = try psql(port: allow.port, ssl: verifyFull, "\\conninfo")
        #expect(encrypted.status == 0 && encrypted.stdout.contains("SSL connection"), "\(encrypted.stderr)")
    }

    @Test func verifyFullRequiresACertificateNamingTheUser() throws {
        let proxy = try ProxyFixture { $0.clientTLS = clientTLS(.verifyFull) }
        defer { proxy.stop() }
        let postgres = try certificates.client("postgres")
        let alice = try certificates.client("alice")

        var withCertificate = verifyFull
        withCertificate["sslcert"] = postgres.certificate
        withCertificate["sslkey"] = postgres.key
        let accepted = try psql(port: proxy.port, ssl: withCertificate, "\\conninfo")
        #expect(accepted.status == 0 && accepted.stdout.contains("SSL connection"), "\(accepted.stderr)")

        let without = try psql(port: proxy.port, ssl: verifyFull, "select 1")
        #expect(without.status == 2)
        #expect(without.stderr.contains("connection requires a valid client certificate"), "\(without.stderr)")

        var someoneElse = verifyFull
        someoneElse["sslcert"] = alice.certificate
        someoneElse["sslkey"] = alice.key
        let mismatch = try psql(port: proxy.port, ssl: someoneElse, "select 1")
        #expect(mismatch.status == 2)
        #expect(mismatch.stderr.contains("certificate authentication failed for user \"postgres\""), "\(mismatch.stderr)")

        let plaintext = try psql(port: proxy.port, ssl: ["sslmode": "disable"], "select 1")
        #expect(plaintext.status == 2 && plaintext.stderr.contains("requires an encrypted connection"), "\(plaintext.stderr)")

        // verify-ca checks the chain only: alice's certificate will do for user postgres.
        let ca = try ProxyFixture { $0.clientTLS = clientTLS(.verifyCA) }
        defer { ca.stop() }
        let chainOnly = try psql(port: ca.port, ssl: someoneElse, "select current_user")
        #expect(chainOnly.status == 0 && chainOnly.stdout.contains("postgres"), "\(chainOnly.stderr)")
    }

    // MARK: - Server side

    @Test func scramToAnUpstreamThatRequiresTLS() throws {
        let upstream = try PostgresCluster.start()
        defer { upstream.stop() }
        try requireTLS(on: upstream)
        _ = try upstream.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE tls_scram LOGIN PASSWORD 'tls_scram_pass'")

        let proxy = try ProxyFixture(cluster: upstream) {
            $0.clientTLS = clientTLS(.prefer)
            $0.serverTLS = ServerTLSConfig(sslmode: .verifyFull, rootCert: certificates.caCertificate)
        }
        defer { proxy.stop() }
        let sslQuery = "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"

        // A plaintext client: the upstream link is TLS 1.3 and the upstream asked for SCRAM.
        let plain = try psql(port: proxy.port, user: "tls_scram", password: "tls_scram_pass", ssl: ["sslmode": "disable"], sslQuery)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t|TLSv1.3")
        let wrongPassword = try psql(port: proxy.port, user: "tls_scram", password: "nope", ssl: ["sslmode": "disable"], "select 1")
        #expect(wrongPassword.status == 2 && wrongPassword.stderr.contains("password authentication failed"), "\(wrongPassword.stderr)")

        // The client is offered plain SCRAM-SHA-256 only, although the server offers -PLUS on its TLS link.
        let raw = try RawClient(port: proxy.port)
        raw.send(StartupPacket.startup(StartupMessage(parameters: [("user", "tls_scram"), ("database", "postgres")])).encode())
        let first = RawClient.messages(raw.receive(until: { !RawClient.messages($0).isEmpty }).bytes).first
        #expect(first == .authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])))

        // A TLS client authenticates with SCRAM-SHA-256 without channel binding.
        var encrypted = verifyFull
        encrypted["channel_binding"] = "disable"
        let tls = try psql(port: proxy.port, user: "tls_scram", password: "tls_scram_pass", ssl: encrypted, sslQuery)
        #expect(tls.status == 0 && tls.stdout.contains("t|TLSv1.3"), "\(tls.stderr)")
        // libpq's default, channel_binding=prefer, over TLS answers "I could bind" (GS2 flag y), which the
        // server refuses as a downgrade; Switchyard says why, and what to do.
        encrypted["channel_binding"] = "prefer"
        let preferBinding = try psql(port: proxy.port, user: "tls_scram", password: "tls_scram_pass", ssl: encrypted, "select 1")
        #expect(preferBinding.status == 2)
        #expect(preferBinding.stderr.contains("SCRAM channel binding cannot pass through switchyard"), "\(preferBinding.stderr)")
        #expect(preferBinding.stderr.contains("channel_binding=disable"), "\(preferBinding.stderr)")
        // A client that insists on channel binding is refused by its own libpq: it is never offered.
        encrypted["channel_binding"] = "require"
        let binding = try psql(port: proxy.port, user: "tls_scram", password: "tls_scram_pass", ssl: encrypted, "select 1")
        #expect(binding.status == 2 && binding.stderr.contains("channel binding"), "\(binding.stderr)")

        // Another CA's root: the upstream's certificate does not verify and the client gets 08001 with the reason.
        let wrongRoot = try ProxyFixture(cluster: upstream) {
            $0.serverTLS = ServerTLSConfig(sslmode: .verifyFull, rootCert: certificates.otherCACertificate)
        }
        defer { wrongRoot.stop() }
        let refused = try RawClient(port: wrongRoot.port)
        refused.send(StartupPacket.startup(StartupMessage(parameters: [("user", "postgres"), ("database", "postgres")])).encode())
        let failure = RawClient.errors(RawClient.messages(refused.receive().bytes)).first
        #expect(failure?.sqlState == "08001")
        #expect(failure?.message?.contains("certificate verify failed") == true, "\(failure?.message ?? "no error")")

        // allow tries plaintext, is refused by pg_hba.conf, and connects again with TLS; prefer and
        // require go straight to TLS; disable gets the server's refusal.
        for (mode, expected) in [(ServerSSLMode.allow, "t|TLSv1.3"), (.prefer, "t|TLSv1.3"), (.require, "t|TLSv1.3")] {
            let p = try ProxyFixture(cluster: upstream) { $0.serverTLS = ServerTLSConfig(sslmode: mode) }
            defer { p.stop() }
            let result = try psql(port: p.port, user: "tls_scram", password: "tls_scram_pass", ssl: ["sslmode": "disable"], sslQuery)
            #expect(result.status == 0 && result.stdout.contains(expected), "\(mode): \(result.stderr)")
        }
        let disabled = try ProxyFixture(cluster: upstream)
        defer { disabled.stop() }
        let noTLS = try psql(port: disabled.port, ssl: ["sslmode": "disable"], "select 1")
        #expect(noTLS.status == 2 && noTLS.stderr.contains("no encryption"), "\(noTLS.stderr)")
    }

    @Test func preferFallsBackToPlaintextWhenTheUpstreamHasNoTLS() throws {
        let proxy = try ProxyFixture { $0.serverTLS = ServerTLSConfig(sslmode: .prefer) }
        defer { proxy.stop() }
        let result = try psql(port: proxy.port, ssl: ["sslmode": "disable"], "select coalesce((select ssl::text from pg_stat_ssl where pid = pg_backend_pid()), 'none')")
        #expect(result.status == 0 && result.stdout.contains("false"), "\(result.stdout)\(result.stderr)")

        let required = try ProxyFixture { $0.serverTLS = ServerTLSConfig(sslmode: .require) }
        defer { required.stop() }
        let refused = try psql(port: required.port, ssl: ["sslmode": "disable"], "select 1")
        #expect(refused.status == 2 && refused.stderr.contains("does not accept TLS connections"), "\(refused.stderr)")

        // As in libpq, sslmode does not apply to a Unix socket upstream.
        let socketURI = try UpstreamURI.parse("postgresql://switchyard@/postgres?host=\(cluster.socketDirectory)&port=\(cluster.port)")
        let overSocket = try ProxyFixture {
            $0.upstream = socketURI
            $0.serverTLS = ServerTLSConfig(sslmode: .require)
        }
        defer { overSocket.stop() }
        let local = try psql(port: overSocket.port, ssl: ["sslmode": "disable"], "select 1")
        #expect(local.status == 0 && local.stdout.contains("1"), "\(local.stderr)")
    }

    // MARK: - Configuration

    @Test func missingOrUnusableKeyFilesAreNamed() throws {
        let missing = certificates.directory + "/missing.key"
        let config = certificates.directory + "/switchyard.yaml"
        try """
            upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres
            client_tls:
              mode: require
              cert: \(certificates.serverCertificate)
              key: \(missing)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = try runProcess(try switchyardBinaryPath, ["check-config", "--config", config], timeout: .seconds(60))
        #expect(check.status == 2)
        #expect(check.stderr.contains("\(config):5: client_tls.key: cannot read \(missing): No such file or directory"), "\(check.stderr)")

        // A key that is not the certificate's is found by check-config and when the server starts or
        // reloads, naming both files.
        let other = try certificates.client("alice")
        try """
            upstream: postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres
            client_tls:
              mode: require
              cert: \(certificates.serverCertificate)
              key: \(other.key)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let mismatch = try runProcess(try switchyardBinaryPath, ["check-config", "--config", config], timeout: .seconds(60))
        #expect(mismatch.status == 2)
        #expect(mismatch.stderr.contains("loading the private key \(other.key) for the certificate \(certificates.serverCertificate)"),
                "\(mismatch.stderr)")
        var settings = SwitchyardConfiguration(upstream: try UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(cluster.port)/postgres"))
        settings.listen = HostPort(host: "127.0.0.1", port: 0)
        settings.adminListen = nil
        settings.clientTLS = ClientTLSConfig(mode: .require, cert: certificates.serverCertificate, key: other.key)
        let error = try #require(throws: ServerError.self) { _ = try SwitchyardServer(config: settings, logger: .init(label: "tls-test")) }
        #expect("\(error)".contains(other.key) && "\(error)".contains(certificates.serverCertificate), "\(error)")

        settings.clientTLS = clientTLS(.require)
        let next = Mutex(settings)
        let server = try SwitchyardServer(config: settings, logger: .init(label: "tls-test"), reload: { next.withLock { $0 } })
        server.start()
        defer { server.shutdown(timeout: .seconds(5)) }
        next.withLock { $0.clientTLS.key = other.key }
        guard case let .failure(reload) = server.reload() else {
            Issue.record("a reload with a key that is not the certificate's succeeded")
            return
        }
        #expect(reload.message.contains("running configuration kept") && reload.message.contains(other.key), "\(reload.message)")
        let still = try psql(port: server.port, ssl: verifyFull, "select 1")
        #expect(still.status == 0, "\(still.stderr)")
        // A good reload takes effect for new sessions: verify-full now wants a client certificate.
        next.withLock { $0.clientTLS = clientTLS(.verifyFull) }
        guard case .success = server.reload() else {
            Issue.record("a good reload failed")
            return
        }
        let refused = try psql(port: server.port, ssl: verifyFull, "select 1")
        #expect(refused.status == 2 && refused.stderr.contains("connection requires a valid client certificate"), "\(refused.stderr)")
    }

    // MARK: - Setup

    /// Turns TLS on in `upstream` with the test server certificate, and lets nothing in without it.
    private func requireTLS(on upstream: PostgresCluster) throws {
        var status = stat()
        guard stat(upstream.dataDirectory, &status) == 0 else { throw HarnessError("cannot stat \(upstream.dataDirectory)") }
        try certificates.installServerFiles(into: upstream.dataDirectory, owner: status.st_uid, group: status.st_gid)
        for setting in ["ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'", "ssl = on"] {
            _ = try upstream.psql("ALTER SYSTEM SET \(setting)")
        }
        // Written in place, so the file keeps the server's ownership.
        try """
            local all all trust
            hostnossl all all 127.0.0.1/32 reject
            hostssl all tls_scram 127.0.0.1/32 scram-sha-256
            hostssl all all 127.0.0.1/32 trust

            """.write(toFile: upstream.dataDirectory + "/pg_hba.conf", atomically: false, encoding: .utf8)
        _ = try upstream.psql("select pg_reload_conf()")
        // The reload is asynchronous: wait (bounded) until a new connection comes in over TLS.
        for _ in 0..<100 {
            if (try? upstream.psql("select ssl from pg_stat_ssl where pid = pg_backend_pid()")) == "t" { return }
            usleep(100_000)
        }
        throw HarnessError("the upstream did not turn TLS on: \(upstream.logTail())")
    }

    private func pgbenchPath() throws -> String {
        let sameVersion = cluster.binDirectory + "/pgbench"
        if access(sameVersion, X_OK) == 0 { return sameVersion }
        return try findExecutable("pgbench")
    }
}
