// libpq URI parsing for the upstream: hosts, Unix sockets, IPv6, percent-decoding, parameters and redaction.

import Testing
import SwitchyardConfig

/// A URI and what it should parse into.
struct URICase: Sendable, CustomTestStringConvertible {
    var text: String
    var host: String
    var port = 5432
    var user: String?
    var password: String?
    var database: String?
    var parameters: [String: String] = [:]
    var redacted: String?  // nil: the same as the text

    var testDescription: String { text }
}

@Suite("Upstream URI")
struct UpstreamURITests {
    @Test("valid URIs", arguments: [
        URICase(text: "postgresql://switchyard@127.0.0.1:5432/postgres",
                host: "127.0.0.1", user: "switchyard", database: "postgres"),
        URICase(text: "postgres://db.example.com", host: "db.example.com"),
        URICase(text: "postgresql://", host: "localhost"),
        URICase(text: "postgresql://user@", host: "localhost", user: "user"),
        URICase(text: "postgresql://db:6543", host: "db", port: 6543),
        URICase(text: "postgresql://db:/app", host: "db", database: "app"),
        URICase(text: "postgresql://[::1]:6543/db", host: "::1", port: 6543, database: "db"),
        URICase(text: "postgresql://[2001:db8::10]/db", host: "2001:db8::10", database: "db"),
        URICase(text: "postgresql://switchyard@%2Fvar%2Frun%2Fpostgresql/postgres",
                host: "/var/run/postgresql", user: "switchyard", database: "postgres"),
        URICase(text: "postgresql:///postgres?host=/tmp", host: "/tmp", database: "postgres"),
        URICase(text: "postgresql://ignored/db?host=%2Ftmp&port=5433", host: "/tmp", port: 5433, database: "db"),
        URICase(text: "postgresql://u:p%40ss%2Fw%3Ard@db/app?sslmode=require&application_name=switchyard",
                host: "db", user: "u", password: "p@ss/w:rd", database: "app",
                parameters: ["sslmode": "require", "application_name": "switchyard"],
                redacted: "postgresql://u:********@db/app?sslmode=require&application_name=switchyard"),
        URICase(text: "postgresql://us%20er@db/my%20db", host: "db", user: "us er", database: "my db"),
        URICase(text: "postgresql://%C3%A9l%C3%A8ve@db", host: "db", user: "élève"),
        URICase(text: "postgresql://:secret@db", host: "db", password: "secret",
                redacted: "postgresql://:********@db"),
        URICase(text: "postgresql://u:@db", host: "db", user: "u"),
        URICase(text: "postgresql://u:p@ss@db/x", host: "db", user: "u", password: "p@ss", database: "x",
                redacted: "postgresql://u:********@db/x"),
        URICase(text: "postgresql://db/x?password=hunter2&sslmode=verify-full&connect_timeout=3",
                host: "db", password: "hunter2", database: "x",
                parameters: ["sslmode": "verify-full", "connect_timeout": "3"],
                redacted: "postgresql://db/x?password=********&sslmode=verify-full&connect_timeout=3"),
        URICase(text: "postgresql://db/x?user=admin&dbname=other", host: "db", user: "admin", database: "other"),
        URICase(text: "postgresql://db?ssl=true", host: "db", parameters: ["sslmode": "require"]),
        URICase(text: "postgresql://db?options=-c%20search_path%3Dapp", host: "db",
                parameters: ["options": "-c search_path=app"]),
    ])
    func valid(_ expected: URICase) throws {
        let uri = try UpstreamURI.parse(expected.text)
        #expect(uri.host == expected.host)
        #expect(uri.port == expected.port)
        #expect(uri.user == expected.user)
        #expect(uri.password == expected.password)
        #expect(uri.database == expected.database)
        #expect(uri.parameters == expected.parameters)
        #expect(uri.isUnixSocket == expected.host.hasPrefix("/"))
        #expect(uri.original == expected.text)
        #expect(uri.redacted == (expected.redacted ?? expected.text))
    }

    @Test("invalid URIs are errors under the key upstream", arguments: [
        ("mysql://db/app", "the scheme must be postgresql:// or postgres://"),
        ("db.example.com:5432", "the scheme must be"),
        ("host=localhost port=5432", "key=value connection strings are not supported"),
        ("postgresql://h1,h2/db", "multiple hosts"),
        ("postgresql://h1:5432,h2:5432/db", "multiple hosts"),
        ("postgresql://db/x?host=a,b", "multiple hosts"),
        ("postgresql://db:0/x", "from 1 to 65535, got \"0\""),
        ("postgresql://db:70000/x", "from 1 to 65535"),
        ("postgresql://db:abc/x", "got \"abc\""),
        ("postgresql://db/x?port=nope", "got \"nope\""),
        ("postgresql://[::1/db", "missing \"]\""),
        ("postgresql://[::1]x/db", "expected :port"),
        ("postgresql://[localhost]/db", "is not an IPv6 address"),
        ("postgresql://::1/db", "needs brackets"),
        ("postgresql://db/x?sslmod=require", "unknown connection parameter \"sslmod\"; did you mean sslmode?"),
        ("postgresql://db/x?sslmode=maybe", "sslmode must be one of disable, allow, prefer"),
        ("postgresql://db/x?sslmode", "has no value"),
        ("postgresql://db/x?ssl=false", "ssl=false is not supported"),
        ("postgresql://u:%zz@db", "invalid percent-encoding in the password"),
        ("postgresql://u:%4@db", "two hex digits"),
        ("postgresql://db/%00", "%00 is not allowed"),
        ("postgresql://db/%FF", "not valid UTF-8"),
        ("postgresql://relative%2Fdir/db", "must be an absolute path"),
        ("postgresql://db/x?host=my%20host", "whitespace"),
    ])
    func invalid(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try UpstreamURI.parse(text) }
        #expect(error.key == "upstream")
        #expect(error.line == nil)
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("the redacted form never contains the password")
    func redactionHidesPassword() throws {
        let uri = try UpstreamURI.parse("postgresql://app:TopSecret%21@db/x?password=TopSecret%21&sslmode=disable")
        #expect(uri.password == "TopSecret!")
        #expect(!uri.redacted.contains("TopSecret"))
        #expect(uri.redacted == "postgresql://app:********@db/x?password=********&sslmode=disable")
    }
}
