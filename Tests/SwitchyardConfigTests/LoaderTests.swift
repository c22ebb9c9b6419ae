// Loading YAML: defaults, every key's accepted and rejected forms, and errors that point at the right line.

import Testing
import SwitchyardConfig

@Suite("Loading YAML")
struct LoaderTests {
    @Test("an upstream alone gives every default")
    func defaults() throws {
        let config = try ConfigLoader.parse(yaml: Fixture.upstreamLine)
        #expect(config.listen == HostPort(host: "127.0.0.1", port: 6432))
        #expect(config.upstream.host == "db.internal")
        #expect(config.adminListen == HostPort(host: "127.0.0.1", port: 9187))
        #expect(config.workers == 0)
        #expect(config.maxClientConnections == 2000)
        #expect(config.maxMessageSize == 1_073_741_824)
        #expect(config.startupTimeout == .seconds(10))
        #expect(config.connectTimeout == .seconds(5))
        #expect(config.shutdownTimeout == .seconds(30))
        #expect(config.tcpKeepalive == TCPKeepalive(enabled: true, idle: .seconds(60), interval: .seconds(10), count: 6))
        #expect(config.adminConsole.users == ["postgres"])
        #expect(config.adminConsole.password == nil)
        #expect(config.log.level == "info")
        #expect(config.log.format == .text)
        #expect(config == SwitchyardConfiguration(upstream: config.upstream))
    }

    @Test("workers 0 runs half the cores' worth of event loops, at least one")
    func defaultWorkers() {
        #expect([1, 2, 3, 4, 16].map { SwitchyardConfiguration.defaultWorkers(cores: $0) } == [1, 1, 1, 2, 8])
        #expect(SwitchyardConfiguration.defaultWorkers(cores: 0) == 1)
    }

    @Test("empty sections keep their defaults")
    func emptySections() throws {
        let config = try Fixture.parse("tcp_keepalive:\nadmin_console: {}\nlog: ~")
        #expect(config == SwitchyardConfiguration(upstream: config.upstream))
    }

    @Test("fields are set from a full document")
    func fullDocument() throws {
        let config = try Fixture.parse("""
            listen: "[::]:7432"
            admin_listen: off
            workers: 4
            max_client_connections: 500
            max_message_size: 64MB
            prepare_routed_reads: false
            startup_timeout: 3s
            connect_timeout: 1500ms
            shutdown_timeout: 2m
            tcp_keepalive:
              enabled: false
              idle: 30s
              interval: 5
              count: 3
            admin_console:
              users:
                - alice
                - bob
              password: s3cret
            log:
              level: debug
              format: json
            """)
        #expect(config.listen == HostPort(host: "::", port: 7432))
        #expect(config.adminListen == nil)
        #expect(config.workers == 4)
        #expect(config.maxClientConnections == 500)
        #expect(config.maxMessageSize == 64 * 1024 * 1024)
        #expect(!config.prepareRoutedReads)
        #expect(SwitchyardConfiguration(upstream: config.upstream).prepareRoutedReads, "on by default")
        #expect(config.startupTimeout == .seconds(3))
        #expect(config.connectTimeout == .milliseconds(1500))
        #expect(config.shutdownTimeout == .seconds(120))
        #expect(config.tcpKeepalive == TCPKeepalive(enabled: false, idle: .seconds(30), interval: .seconds(5), count: 3))
        #expect(config.adminConsole == AdminConsoleConfig(users: ["alice", "bob"], password: "s3cret"))
        #expect(config.log == LogConfig(level: "debug", format: .json))
    }

    /// Each accepted form, checked through the value SHOW CONFIG would display.
    @Test("accepted forms", arguments: [
        ("listen: 0.0.0.0:7000", "listen", "0.0.0.0:7000"),
        ("listen: '[::1]:6432'", "listen", "[::1]:6432"),
        ("listen: localhost:0", "listen", "localhost:0"),
        ("admin_listen: 127.0.0.1:9999", "admin_listen", "127.0.0.1:9999"),
        ("admin_listen: off", "admin_listen", "off"),
        ("admin_listen: \"OFF\"", "admin_listen", "off"),
        ("admin_listen: null", "admin_listen", "off"),
        ("admin_listen:", "admin_listen", "off"),
        ("workers: 0", "workers", "0"),
        ("workers: 256", "workers", "256"),
        ("workers: \"8\"", "workers", "8"),
        ("max_client_connections: 1", "max_client_connections", "1"),
        ("max_client_connections: 100000", "max_client_connections", "100000"),
        ("max_message_size: 1048576", "max_message_size", "1MB"),
        ("max_message_size: 1024", "max_message_size", "1kB"),
        ("max_message_size: 512kB", "max_message_size", "512kB"),
        ("max_message_size: 64MB", "max_message_size", "64MB"),
        ("max_message_size: 64 MB", "max_message_size", "64MB"),
        ("max_message_size: 8mb", "max_message_size", "8MB"),
        ("max_message_size: 1GB", "max_message_size", "1GB"),
        ("max_message_size: 4096B", "max_message_size", "4kB"),
        ("max_message_size: 1500", "max_message_size", "1500B"),
        ("max_message_size: 2147483647", "max_message_size", "2147483647B"),
        ("startup_timeout: 30s", "startup_timeout", "30s"),
        ("startup_timeout: 500ms", "startup_timeout", "500ms"),
        ("startup_timeout: 2m", "startup_timeout", "2m"),
        ("startup_timeout: 1h", "startup_timeout", "1h"),
        ("startup_timeout: 250us", "startup_timeout", "250us"),
        ("startup_timeout: 15", "startup_timeout", "15s"),
        ("startup_timeout: 1.5", "startup_timeout", "1500ms"),
        ("connect_timeout: 0.25s", "connect_timeout", "250ms"),
        ("connect_timeout: 90s", "connect_timeout", "90s"),
        ("shutdown_timeout: 0", "shutdown_timeout", "0s"),
        ("shutdown_timeout: 120s", "shutdown_timeout", "2m"),
        ("tcp_keepalive:\n  enabled: false", "tcp_keepalive.enabled", "false"),
        ("tcp_keepalive:\n  enabled: no", "tcp_keepalive.enabled", "false"),
        ("tcp_keepalive:\n  enabled: on", "tcp_keepalive.enabled", "true"),
        ("tcp_keepalive:\n  idle: 2m", "tcp_keepalive.idle", "2m"),
        ("tcp_keepalive:\n  idle: 1", "tcp_keepalive.idle", "1s"),
        ("tcp_keepalive: {interval: 32767s}", "tcp_keepalive.interval", "32767s"),
        ("tcp_keepalive:\n  count: 127", "tcp_keepalive.count", "127"),
        ("admin_console:\n  users: []", "admin_console.users", "[]"),
        ("admin_console:\n  users: [alice, bob]", "admin_console.users", "[alice, bob]"),
        ("admin_console:\n  users:\n    - carol", "admin_console.users", "[carol]"),
        ("admin_console:\n  password: hunter2", "admin_console.password", "********"),
        ("admin_console:\n  password: null", "admin_console.password", "(none)"),
        ("log:\n  level: WARNING", "log.level", "warning"),
        ("log:\n  level: trace", "log.level", "trace"),
        ("log:\n  level: critical", "log.level", "critical"),
        ("log:\n  format: json", "log.format", "json"),
        ("log:\n  format: TEXT", "log.format", "text"),
    ])
    func acceptedForm(yaml: String, key: String, shown: String) throws {
        let config = try Fixture.parse(yaml)
        let line = config.summaryLines().first { $0.key == key }
        #expect(line?.value == shown)
    }

    /// Each rejected form. The document's first line is the upstream, so the body starts on line 2.
    @Test("rejected forms name the key and line", arguments: [
        InvalidCase("listen: 6432", key: "listen", line: 2, "did you mean 127.0.0.1:6432?"),
        InvalidCase("listen: ':6432'", key: "listen", line: 2, "the host is empty"),
        InvalidCase("listen: localhost:99999", key: "listen", line: 2, "the port must be a number from 0 to 65535"),
        InvalidCase("listen: '::1:6432'", key: "listen", line: 2, "needs brackets"),
        InvalidCase("listen: 'exa mple:1'", key: "listen", line: 2, "is not a valid host name"),
        InvalidCase("\n\nlisten:\n  host: x", key: "listen", line: 4, "got a mapping"),
        InvalidCase("listen:", key: "listen", line: 2, "got nothing (null)"),
        InvalidCase("admin_listen: nope", key: "admin_listen", line: 2, "expected host:port"),
        InvalidCase("admin_listen: [a]", key: "admin_listen", line: 2, "got a list"),
        InvalidCase("workers: 257", key: "workers", line: 2, "from 0 (half the CPU cores) to 256, got 257"),
        InvalidCase("workers: -1", key: "workers", line: 2, "got -1"),
        InvalidCase("workers: many", key: "workers", line: 2, "got \"many\""),
        InvalidCase("workers: 4.5", key: "workers", line: 2, "a whole number"),
        InvalidCase("max_client_connections: 0", key: "max_client_connections", line: 2, "at least 1"),
        InvalidCase("max_message_size: 1000", key: "max_message_size", line: 2, "from 1kB (1024 bytes)"),
        InvalidCase("max_message_size: 2GB", key: "max_message_size", line: 2, "2147483647 bytes"),
        InvalidCase("max_message_size: 64XB", key: "max_message_size", line: 2, "units are B, kB, MB, GB and TB"),
        InvalidCase("max_message_size: -5MB", key: "max_message_size", line: 2, "must not be negative"),
        InvalidCase("max_message_size: 1.5GB", key: "max_message_size", line: 2, "expected a size in bytes"),
        InvalidCase("max_message_size: 99999999999999999999", key: "max_message_size", line: 2, "too large"),
        InvalidCase("startup_timeout: soon", key: "startup_timeout", line: 2,
                    "expected a duration such as 30s, 500ms or 2m, got \"soon\""),
        InvalidCase("startup_timeout: -5s", key: "startup_timeout", line: 2, "must not be negative"),
        InvalidCase("startup_timeout: 0", key: "startup_timeout", line: 2, "longer than zero"),
        InvalidCase("connect_timeout: 10 fortnights", key: "connect_timeout", line: 2, "units are ns, us, ms, s"),
        InvalidCase("connect_timeout: 0ms", key: "connect_timeout", line: 2, "longer than zero"),
        InvalidCase("shutdown_timeout: [1]", key: "shutdown_timeout", line: 2, "got a list"),
        InvalidCase("shutdown_timeout: 99999999999s", key: "shutdown_timeout", line: 2, "too large"),
        InvalidCase("tcp_keepalive: yes", key: "tcp_keepalive", line: 2, "expected a mapping with the keys enabled, idle"),
        InvalidCase("tcp_keepalive:\n  enabled: maybe", key: "tcp_keepalive.enabled", line: 3, "expected true or false"),
        InvalidCase("prepare_routed_reads: sometimes", key: "prepare_routed_reads", line: 2, "expected true or false"),
        InvalidCase("tcp_keepalive:\n  idle: 1500ms", key: "tcp_keepalive.idle", line: 3, "whole number of seconds"),
        InvalidCase("tcp_keepalive:\n  interval: 0s", key: "tcp_keepalive.interval", line: 3, "from 1s to 32767s"),
        InvalidCase("tcp_keepalive:\n  count: 0", key: "tcp_keepalive.count", line: 3, "from 1 to 127"),
        InvalidCase("tcp_keepalive:\n  count: 128", key: "tcp_keepalive.count", line: 3, "got 128"),
        InvalidCase("admin_console: [alice]", key: "admin_console", line: 2, "expected a mapping"),
        InvalidCase("admin_console:\n  users: postgres", key: "admin_console.users", line: 3, "expected a list of user names"),
        InvalidCase("admin_console:\n  users:\n    - alice\n    - ''", key: "admin_console.users", line: 5, "non-empty name"),
        InvalidCase("admin_console:\n  users: [{a: b}]", key: "admin_console.users", line: 3, "got a mapping"),
        InvalidCase("admin_console:\n  password: ''", key: "admin_console.password", line: 3, "the password is empty"),
        InvalidCase("admin_console:\n  password: [x]", key: "admin_console.password", line: 3, "got a list"),
        InvalidCase("log:\n  level: warn", key: "log.level", line: 3, "did you mean warning?"),
        InvalidCase("log:\n  level: infoo", key: "log.level", line: 3, "did you mean info?"),
        InvalidCase("log:\n  level: loud", key: "log.level", line: 3, "expected one of trace, debug, info"),
        InvalidCase("log:\n  format: xml", key: "log.format", line: 3, "expected text or json, got \"xml\""),
        InvalidCase("log: verbose", key: "log", line: 2, "expected a mapping with the keys level, format"),
    ])
    func rejectedForm(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(Fixture.upstreamLine + "\n" + invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("the line is found after comments, blank lines and nesting")
    func lineAfterComments() throws {
        let yaml = """
            # Switchyard
            \(Fixture.upstreamLine)

            # keepalive
            tcp_keepalive:
              enabled: true   # on
              # the idle time
              idle: soon
            """
        let error = try #require(Fixture.error(yaml, file: "switchyard.yaml"))
        #expect(error == ConfigError(
            file: "switchyard.yaml", line: 8, key: "tcp_keepalive.idle",
            message: "expected a duration such as 30s, 500ms or 2m, got \"soon\""))
        #expect(error.description
            == "switchyard.yaml:8: tcp_keepalive.idle: expected a duration such as 30s, 500ms or 2m, got \"soon\"")
    }

    @Test("an invalid upstream is reported at its line")
    func invalidUpstream() throws {
        let error = try #require(Fixture.error("workers: 1\nupstream: mysql://db/app"))
        #expect(error.key == "upstream")
        #expect(error.line == 2)
        #expect(error.message.contains("postgresql:// or postgres://"))
    }

    @Test("unknown keys are errors with a hint", arguments: [
        InvalidCase("listne: 127.0.0.1:1", key: "listne", line: 2, "unknown key; did you mean listen?"),
        InvalidCase("worker: 2", key: "worker", line: 2, "did you mean workers?"),
        InvalidCase("maxClientConnections: 5", key: "maxClientConnections", line: 2, "did you mean max_client_connections?"),
        InvalidCase("max-message-size: 1MB", key: "max-message-size", line: 2, "did you mean max_message_size?"),
        InvalidCase("idle: 5s", key: "idle", line: 2, "idle belongs under tcp_keepalive:"),
        InvalidCase("colour: blue", key: "colour", line: 2, "known keys here: listen, upstream"),
        InvalidCase("tcp_keepalive:\n  enabled: true\n  idel: 5s", key: "tcp_keepalive.idel", line: 4, "did you mean idle?"),
        InvalidCase("admin_console:\n  user: [a]", key: "admin_console.user", line: 3, "did you mean users?"),
        InvalidCase("log:\n  fmt: json", key: "log.fmt", line: 3, "known keys here: level, format"),
        InvalidCase("log:\n  <<: {level: info}", key: "log.<<", line: 3, "merge keys"),
    ])
    func unknownKey(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(Fixture.upstreamLine + "\n" + invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("duplicate keys name the repeated line and the full key path", arguments: [
        InvalidCase("workers: 1\nworkers: 2", key: "workers", line: 3, "first set on line 2"),
        InvalidCase("\"workers\": 1\nworkers: 2", key: "workers", line: 3, "first set on line 2"),
        InvalidCase("workers: 1\nlisten: 127.0.0.1:1\nworkers: 2\nworkers: 3", key: "workers", line: 4, "first set on line 2"),
        InvalidCase("log:\n  level: info\n  format: text\n  level: debug", key: "log.level", line: 5, "first set on line 3"),
        InvalidCase("tcp_keepalive: {idle: 5s,\n  idle: 6s}", key: "tcp_keepalive.idle", line: 3, "first set on line 2"),
        InvalidCase("admin_console:\n  users: [a]\nadmin_console:\n  password: x", key: "admin_console", line: 4,
                    "each key may appear only once"),
    ])
    func duplicateKey(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(Fixture.upstreamLine + "\n" + invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("a missing upstream is an error without a line", arguments: ["workers: 1", "", "---\n", "# only a comment\n"])
    func missingUpstream(yaml: String) throws {
        let error = try #require(Fixture.error(yaml, file: "switchyard.yaml"))
        #expect(error.key == "upstream")
        #expect(error.line == nil)
        #expect(error.file == "switchyard.yaml")
        #expect(error.message.contains("required"))
        #expect(error.description.hasPrefix("switchyard.yaml: upstream: required"))
    }

    @Test("YAML syntax errors are reported under the key yaml with Yams' line", arguments: [
        InvalidCase("workers: 1\nlisten: [unclosed\nlog: {}", key: "yaml", line: 4, "invalid YAML"),
        InvalidCase("workers: 1\n  bad indent: 2", key: "yaml", line: 3, "invalid YAML"),
        InvalidCase("workers: \"unterminated\n", key: "yaml", line: 3, "invalid YAML"),
        InvalidCase("log: *nowhere", key: "yaml", line: 2, "invalid YAML"),
        InvalidCase("workers: 1\n---\nworkers: 2", key: "yaml", line: 3, "single document"),
    ])
    func syntaxError(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(Fixture.upstreamLine + "\n" + invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("the top level must be a mapping with plain keys", arguments: [
        InvalidCase("- listen\n- upstream", key: "yaml", line: 1, "expected a mapping of settings"),
        InvalidCase("just a string", key: "yaml", line: 1, "expected a mapping of settings"),
        InvalidCase("\(Fixture.upstreamLine)\n? [a, b]\n: c", key: "yaml", line: 2, "keys must be plain names"),
        InvalidCase("\(Fixture.upstreamLine)\n~: c", key: "yaml", line: 2, "keys must be plain names"),
    ])
    func topLevelShape(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("admin_listen may not reuse the listen port; the key written in the file is blamed")
    func adminListenClash() throws {
        let error = try #require(Fixture.error(
            "\(Fixture.upstreamLine)\nlisten: 127.0.0.1:7000\nadmin_listen: 127.0.0.1:7000", file: "s.yaml"))
        #expect(error == ConfigError(
            file: "s.yaml", line: 3, key: "admin_listen",
            message: "clashes with listen's address 127.0.0.1:7000; "
                + "give the admin endpoint its own port or set admin_listen: off"))
        // admin_listen left at its default: the listen line is the one to change.
        let wildcard = try #require(Fixture.error("\(Fixture.upstreamLine)\nlisten: 0.0.0.0:9187"))
        #expect(wildcard.key == "listen")
        #expect(wildcard.line == 2)
        #expect(wildcard.message.contains("admin_listen's default"))
        // Port 0 means "any free port", so two zeros never clash.
        #expect(throws: Never.self) { try Fixture.parse("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0") }
    }

    @Test("an unquoted [::1]:port gets a hint to quote it")
    func unquotedIPv6() throws {
        let error = try #require(Fixture.error("\(Fixture.upstreamLine)\nlisten: [::1]:6432"))
        #expect(error.key == "yaml")
        #expect(error.line == 2)
        #expect(error.message.contains("must be quoted, as in listen: \"[::1]:6432\""), "\(error.message)")
    }

    @Test("a byte-order mark and CRLF line ends are accepted")
    func byteOrderMarkAndCRLF() throws {
        let config = try ConfigLoader.parse(yaml: "\u{FEFF}\(Fixture.upstreamLine)\r\nworkers: 3\r\n")
        #expect(config.workers == 3)
        let error = try #require(Fixture.error("\u{FEFF}\(Fixture.upstreamLine)\r\nworkers: 3\r\nworkers: x\r\n"))
        #expect(error.key == "workers")
        #expect(error.line == 3)
    }
}
