// Command-line overrides: they win over the file, and their errors name the flag.

import Testing
import SwitchyardConfig

@Suite("Command-line overrides")
struct OverrideTests {
    let fileYAML = """
        listen: 10.0.0.1:6432
        upstream: postgresql://switchyard@file-db:5432/postgres
        admin_listen: 10.0.0.1:9187
        workers: 3
        admin_console: { password: secret }
        """

    @Test("overrides win over the file")
    func overridesWin() throws {
        let overrides = ConfigOverrides(
            listen: "127.0.0.1:7000", upstream: "postgres://flag-db:6000/app", adminListen: "[::1]:9000")
        let config = try ConfigLoader.parse(yaml: fileYAML, overrides: overrides)
        #expect(config.listen == HostPort(host: "127.0.0.1", port: 7000))
        #expect(config.upstream.host == "flag-db")
        #expect(config.upstream.port == 6000)
        #expect(config.adminListen == HostPort(host: "::1", port: 9000))
        #expect(config.workers == 3)  // Not overridden: still from the file.
    }

    @Test("without overrides the file's values stand")
    func fileValuesStand() throws {
        let config = try ConfigLoader.parse(yaml: fileYAML)
        #expect(config.listen == HostPort(host: "10.0.0.1", port: 6432))
        #expect(config.upstream.host == "file-db")
        #expect(config.adminListen == HostPort(host: "10.0.0.1", port: 9187))
    }

    @Test("an admin endpoint other hosts can reach needs the admin password, from the file or a flag")
    func remoteAdminNeedsPassword() throws {
        let open = fileYAML.replacingOccurrences(of: "admin_console: { password: secret }", with: "")
        let fromFile = try #require(throws: ConfigError.self) { try ConfigLoader.parse(yaml: open) }
        #expect(fromFile.key == "admin_listen" && fromFile.line == 3, "\(fromFile)")
        #expect(fromFile.message.contains("set admin_console.password"), "\(fromFile)")
        let fromFlag = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(yaml: open, overrides: ConfigOverrides(adminListen: "0.0.0.0:9187"))
        }
        #expect(fromFlag.key == "--admin-listen")
        // Loopback needs none.
        for local in ["127.0.0.1:9187", "[::1]:9187", "localhost:9187"] {
            #expect(try ConfigLoader.parse(yaml: open, overrides: ConfigOverrides(adminListen: local)).adminListen != nil)
        }
    }

    @Test("--admin-listen off disables the admin endpoint")
    func adminListenOff() throws {
        let config = try ConfigLoader.parse(yaml: fileYAML, overrides: ConfigOverrides(adminListen: "off"))
        #expect(config.adminListen == nil)
    }

    @Test("--upstream supplies a file's missing upstream")
    func upstreamFromFlag() throws {
        let config = try ConfigLoader.parse(
            yaml: "workers: 2", overrides: ConfigOverrides(upstream: "postgresql://localhost/postgres"))
        #expect(config.upstream.host == "localhost")
        #expect(config.workers == 2)
    }

    @Test("override errors name the flag and no line", arguments: [
        (ConfigOverrides(listen: "nonsense"), "--listen", "expected host:port"),
        (ConfigOverrides(listen: "127.0.0.1:70000"), "--listen", "the port must be"),
        (ConfigOverrides(upstream: "mysql://db"), "--upstream", "postgresql://"),
        (ConfigOverrides(upstream: "postgresql://a,b/db"), "--upstream", "multiple hosts"),
        (ConfigOverrides(adminListen: "9187"), "--admin-listen", "did you mean 127.0.0.1:9187?"),
    ])
    func overrideErrors(overrides: ConfigOverrides, flag: String, messageContains: String) throws {
        let error = try #require(Fixture.error(fileYAML, file: "switchyard.yaml", overrides: overrides))
        #expect(error.key == flag)
        #expect(error.line == nil)
        #expect(error.file == nil)
        #expect(error.message.contains(messageContains), "\(error.message)")
        #expect(error.description.hasPrefix("\(flag): "))
    }

    @Test("errors in the file are still reported when a flag overrides the key")
    func fileStillChecked() throws {
        let error = try #require(Fixture.error(
            "\(Fixture.upstreamLine)\nlisten: bogus", overrides: ConfigOverrides(listen: "127.0.0.1:1")))
        #expect(error.key == "listen")
        #expect(error.line == 2)
    }

    @Test("fromOverrides: defaults plus flags")
    func fromOverrides() throws {
        let config = try ConfigLoader.fromOverrides(
            ConfigOverrides(listen: "0.0.0.0:5433", upstream: "postgresql://switchyard@%2Ftmp/postgres"))
        #expect(config.listen == HostPort(host: "0.0.0.0", port: 5433))
        #expect(config.upstream.host == "/tmp")
        #expect(config.upstream.isUnixSocket)
        var expected = SwitchyardConfiguration(upstream: config.upstream)
        expected.listen = config.listen
        #expect(config == expected)
    }

    @Test("fromOverrides requires --upstream")
    func fromOverridesNeedsUpstream() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.fromOverrides(ConfigOverrides(listen: "127.0.0.1:6432"))
        }
        #expect(error.key == "upstream")
        #expect(error.line == nil)
        #expect(error.file == nil)
        #expect(error.message.contains("--upstream"))
    }

    @Test("a listen clash names the flag, or the file's key and line")
    func clashAttribution() throws {
        let fromFile = try #require(Fixture.error(fileYAML, overrides: ConfigOverrides(listen: "10.0.0.1:9187")))
        #expect(fromFile.key == "admin_listen")
        #expect(fromFile.line == 3)  // admin_listen was written on the file's line 3.
        let bothFlags = try #require(throws: ConfigError.self) {
            try ConfigLoader.fromOverrides(ConfigOverrides(
                listen: "127.0.0.1:7000", upstream: "postgresql://db", adminListen: "127.0.0.1:7000"))
        }
        #expect(bothFlags.key == "--admin-listen")
        #expect(bothFlags.line == nil)
        let listenFlag = try #require(throws: ConfigError.self) {
            try ConfigLoader.fromOverrides(ConfigOverrides(listen: "127.0.0.1:9187", upstream: "postgresql://db"))
        }
        #expect(listenFlag.key == "--listen")
        #expect(listenFlag.line == nil)
    }
}
