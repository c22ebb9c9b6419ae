// Runs the psycopg 3 client scenarios (Tests/clients/psycopg_scenarios.py) directly and through Switchyard and requires identical JSON results.
import Foundation
import SwitchyardTestSupport
import Testing

@Suite(.serialized, .timeLimit(.minutes(10)))
struct PsycopgTests {
    /// The database the scenarios run in, created afresh for this suite.
    static let database = "sy_psycopg"

    /// Every scenario the script must report; a scenario that silently disappeared would
    /// otherwise make the two documents equal by omission.
    static let expectedScenarios: Set<String> = [
        "binary_parameters", "text_parameters", "executemany", "pipeline", "server_side_cursor", "copy",
        "cancel", "notifications", "transactions", "prepared_statements", "large_result",
        "client_cursor_simple_protocol",
    ]

    @Test func scenariosGiveTheSameResultsDirectlyAndThroughTheProxy() throws {
        let cluster = try PostgresCluster.shared()
        _ = try cluster.psql("DROP DATABASE IF EXISTS \(Self.database) WITH (FORCE)")
        _ = try cluster.psql("CREATE DATABASE \(Self.database)")
        let python = try pythonForTests
        let probe = try runProcess(python, ["-c", "import psycopg; print(psycopg.__version__)"], timeout: .seconds(60))
        try #require(
            probe.status == 0,
            "psycopg 3 is not importable by \(python): run `bash scripts/install-deps.sh`\n\(probe.stderr)")

        let direct = try runScenarios(
            python: python, conninfo: directConnectionString(cluster), prefix: "sy_direct_", label: "direct")
        let proxied = try ProxyFixture.with { proxy in
            try runScenarios(
                python: python, conninfo: proxy.connectionString(database: Self.database), prefix: "sy_proxy_",
                label: "through switchyard")
        }

        for (label, run) in [("direct", direct), ("through switchyard", proxied)] {
            #expect(run.status == 0, "psycopg_scenarios.py exited \(run.status) \(label); stderr:\n\(run.stderrTail)")
            let reported = Set(run.scenarios.keys)
            #expect(
                reported == Self.expectedScenarios,
                "\(label): missing \(Self.expectedScenarios.subtracting(reported).sorted()), unexpected \(reported.subtracting(Self.expectedScenarios).sorted())")
            for (name, outcome) in run.scenarios.sorted(by: { $0.key < $1.key }) {
                #expect(outcome["ok"] == .bool(true), "scenario \(name) failed \(label): \(outcome["error"]?.compact ?? "?")")
            }
        }
        #expect(direct.document["libpq"] == proxied.document["libpq"])
        for name in Self.expectedScenarios.sorted() {
            let a = direct.scenarios[name] ?? .null
            let b = proxied.scenarios[name] ?? .null
            var differences: [String] = []
            jsonDifferences(a, b, path: name, into: &differences)
            #expect(
                differences.isEmpty,
                "scenario \(name) differs (direct vs through switchyard):\n\(differences.prefix(40).joined(separator: "\n"))")
        }
        // The comparison is only worth something if the scenarios did real work: spot-check results.
        let largeResult = direct.scenarios["large_result"]?["result"]
        #expect(largeResult?["text"]?["count"] == .int(50_000))
        #expect(largeResult?["binary"]?["sha256"] == largeResult?["text"]?["sha256"])
        let cancel = direct.scenarios["cancel"]?["result"]?["cancel"]?["error"]
        #expect(cancel?["class"] == .string("QueryCanceled"))
        #expect(cancel?["sqlstate"] == .string("57014"))
        let received = direct.scenarios["notifications"]?["result"]?["received"]
        #expect(received?.count == 3, "notifications received directly: \(received?.compact ?? "none")")
        #expect(direct.scenarios["server_side_cursor"]?["result"]?["iterated"]?["count"] == .int(10_000))
        #expect(direct.scenarios["copy"]?["result"]?["binary_roundtrip"] == .bool(true))
    }

    private func directConnectionString(_ cluster: PostgresCluster) -> String {
        "host=127.0.0.1 port=\(cluster.port) user=postgres dbname=\(Self.database) connect_timeout=10 sslmode=disable"
    }

    private struct ScenarioRun {
        var status: Int32
        var document: JSONValue
        var scenarios: [String: JSONValue]
        var stderrTail: String
    }

    private func runScenarios(python: String, conninfo: String, prefix: String, label: String) throws -> ScenarioRun {
        let script = packageRootDirectory + "/Tests/clients/psycopg_scenarios.py"
        let result = try runProcess(
            python, [script, conninfo, prefix],
            environment: ["PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"], timeout: .seconds(120))
        let stderrTail = String(result.stderr.suffix(6_000))
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: Data(result.stdout.utf8))
        } catch {
            throw HarnessError(
                "psycopg_scenarios.py (\(label)) did not print one JSON document (status \(result.status)): \(error)\n"
                    + "stdout: \(result.stdout.prefix(2_000))\nstderr: \(stderrTail)")
        }
        guard case let .object(scenarios)? = document["scenarios"] else {
            throw HarnessError("psycopg_scenarios.py (\(label)) printed no \"scenarios\" object: \(document.compact.prefix(2_000))")
        }
        return ScenarioRun(status: result.status, document: document, scenarios: scenarios, stderrTail: stderrTail)
    }
}

/// A decoded JSON document, comparable as a whole.
private indirect enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    var count: Int? {
        switch self {
        case let .array(items): items.count
        case let .object(members): members.count
        default: nil
        }
    }

    /// One-line JSON-like rendering for failure messages.
    var compact: String {
        switch self {
        case .null: "null"
        case let .bool(value): String(value)
        case let .int(value): String(value)
        case let .double(value): String(value)
        case let .string(value): "\"" + value.replacingOccurrences(of: "\n", with: "\\n") + "\""
        case let .array(items): "[" + items.map(\.compact).joined(separator: ", ") + "]"
        case let .object(members):
            "{" + members.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.compact)" }.joined(separator: ", ") + "}"
        }
    }
}

/// Appends one line per place where `a` (direct) and `b` (through the proxy) differ.
private func jsonDifferences(_ a: JSONValue, _ b: JSONValue, path: String, into differences: inout [String]) {
    switch (a, b) {
    case let (.object(x), .object(y)):
        for key in Set(x.keys).union(y.keys).sorted() {
            switch (x[key], y[key]) {
            case let (left?, right?):
                jsonDifferences(left, right, path: path + "." + key, into: &differences)
            case let (left?, nil):
                differences.append("\(path).\(key): only direct: \(left.compact.prefix(300))")
            case let (nil, right?):
                differences.append("\(path).\(key): only through switchyard: \(right.compact.prefix(300))")
            case (nil, nil):
                break
            }
        }
    case let (.array(x), .array(y)) where x.count == y.count:
        for (index, pair) in zip(x, y).enumerated() {
            jsonDifferences(pair.0, pair.1, path: "\(path)[\(index)]", into: &differences)
        }
    default:
        if a != b {
            differences.append("\(path):\n    direct:             \(a.compact.prefix(500))\n    through switchyard: \(b.compact.prefix(500))")
        }
    }
}
