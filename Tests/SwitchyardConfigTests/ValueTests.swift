// Value forms on their own: durations, byte sizes, booleans and host:port, with their display forms.

import Testing
import SwitchyardConfig

@Suite("Value forms")
struct ValueTests {
    @Test("durations", arguments: [
        ("30s", Duration.seconds(30)),
        ("500ms", .milliseconds(500)),
        ("2m", .seconds(120)),
        ("2min", .seconds(120)),
        ("1h", .seconds(3600)),
        ("250us", .microseconds(250)),
        ("250µs", .microseconds(250)),
        ("750ns", .nanoseconds(750)),
        ("45", .seconds(45)),
        ("0", .zero),
        ("0.5", .milliseconds(500)),
        ("1.25s", .milliseconds(1250)),
        ("0.1s", .milliseconds(100)),
        ("1.5h", .seconds(5400)),
        (" 10 s ", .seconds(10)),
        ("10S", .seconds(10)),
        ("1000000000s", .seconds(1_000_000_000)),
    ])
    func duration(text: String, expected: Duration) throws {
        #expect(try ConfigValues.duration(text, key: "k") == expected)
    }

    @Test("invalid durations", arguments: [
        ("soon", "expected a duration such as 30s, 500ms or 2m, got \"soon\""),
        ("-5s", "must not be negative"),
        ("-1", "must not be negative"),
        ("", "expected a duration"),
        ("s", "expected a duration"),
        (".5s", "expected a duration"),
        ("5.s", "expected a duration"),
        ("1.2.3s", "expected a duration"),
        ("10 days", "units are ns, us, ms, s, m (or min) and h"),
        ("1000000001s", "too large"),
        ("99999999999999999999999h", "too large"),
    ])
    func invalidDuration(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try ConfigValues.duration(text, key: "a.b") }
        #expect(error.key == "a.b")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("durations are displayed in their shortest exact unit", arguments: [
        (Duration.seconds(3600), "1h"), (.seconds(5400), "90m"), (.seconds(120), "2m"), (.seconds(90), "90s"),
        (.milliseconds(1500), "1500ms"), (.microseconds(250), "250us"), (.nanoseconds(7), "7ns"), (.zero, "0s"),
    ])
    func describeDuration(duration: Duration, text: String) throws {
        #expect(ConfigValues.describe(duration: duration) == text)
        #expect(try ConfigValues.duration(text, key: "k") == duration)  // Display forms parse back.
    }

    @Test("byte sizes", arguments: [
        ("1048576", 1_048_576), ("512kB", 524_288), ("512KB", 524_288), ("64MB", 67_108_864),
        ("1GB", 1_073_741_824), ("1TB", 1 << 40), ("100B", 100), ("100 b", 100), ("0", 0),
    ])
    func byteSize(text: String, expected: Int) throws {
        #expect(try ConfigValues.byteSize(text, key: "k") == expected)
    }

    @Test("invalid byte sizes", arguments: [
        ("lots", "expected a size in bytes such as 1048576, 512kB, 64MB or 1GB, got \"lots\""),
        ("1.5GB", "expected a size in bytes"),
        ("64XB", "units are B, kB, MB, GB and TB"),
        ("-1", "must not be negative"),
        ("9999999999TB", "too large"),
        ("99999999999999999999", "too large"),
    ])
    func invalidByteSize(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try ConfigValues.byteSize(text, key: "k") }
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("byte sizes are displayed in PostgreSQL units", arguments: [
        (1 << 30, "1GB"), (64 << 20, "64MB"), (512 << 10, "512kB"), (1536, "1536B"), (0, "0B"), (3 << 40, "3TB"),
    ])
    func describeByteSize(bytes: Int, text: String) throws {
        #expect(ConfigValues.describe(byteSize: bytes) == text)
        #expect(try ConfigValues.byteSize(text, key: "k") == bytes)
    }

    @Test("booleans", arguments: [
        ("true", true), ("yes", true), ("on", true), ("TRUE", true),
        ("false", false), ("no", false), ("off", false), ("False", false),
    ])
    func bool(text: String, expected: Bool) throws {
        #expect(try ConfigValues.bool(text, key: "k") == expected)
    }

    @Test("host:port forms", arguments: [
        ("127.0.0.1:6432", "127.0.0.1", 6432, "127.0.0.1:6432"),
        ("[::1]:6432", "::1", 6432, "[::1]:6432"),
        ("[fe80::1%eth0]:5", "fe80::1%eth0", 5, "[fe80::1%eth0]:5"),
        ("localhost:6432", "localhost", 6432, "localhost:6432"),
        ("db-1.example_net.internal:0", "db-1.example_net.internal", 0, "db-1.example_net.internal:0"),
        ("0.0.0.0:65535", "0.0.0.0", 65535, "0.0.0.0:65535"),
    ])
    func hostPort(text: String, host: String, port: Int, shown: String) throws {
        let parsed = try HostPort.parse(text, key: "listen")
        #expect(parsed == HostPort(host: host, port: port))
        #expect(parsed.description == shown)
    }

    @Test("invalid host:port forms name the key", arguments: [
        ("localhost", "expected host:port such as 127.0.0.1:6432"),
        ("6432", "did you mean 127.0.0.1:6432?"),
        (":6432", "the host is empty"),
        ("::1:6432", "needs brackets, as in [::1]:6432"),
        ("[::1]", "missing the port"),
        ("[::1:6432", "missing \"]\""),
        ("[nothost]:1", "is not an IPv6 address"),
        ("host:", "the port must be a number from 0 to 65535, got \"\""),
        ("host:65536", "got \"65536\""),
        ("host:-1", "got \"-1\""),
        ("ho st:1", "is not a valid host name"),
    ])
    func invalidHostPort(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try HostPort.parse(text, key: "admin_listen") }
        #expect(error.key == "admin_listen")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("ConfigError descriptions", arguments: [
        (ConfigError(file: "switchyard.yaml", line: 12, key: "tcp_keepalive.idle", message: "bad"),
         "switchyard.yaml:12: tcp_keepalive.idle: bad"),
        (ConfigError(file: "switchyard.yaml", line: nil, key: "upstream", message: "required"),
         "switchyard.yaml: upstream: required"),
        (ConfigError(file: nil, line: 3, key: "workers", message: "bad"), "line 3: workers: bad"),
        (ConfigError(file: nil, line: nil, key: "--listen", message: "bad"), "--listen: bad"),
    ])
    func errorDescription(error: ConfigError, text: String) {
        #expect(error.description == text)
    }
}
