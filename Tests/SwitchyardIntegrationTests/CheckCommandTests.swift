// `switchyard check` validates a config's migrations against the live database, in words a DBA acts on.
import Foundation
import Glibc
import SwitchyardTestSupport
import Testing

@Suite("switchyard check", .serialized)
struct CheckCommandTests {
    static func run(_ yaml: String, cluster: PostgresCluster) throws -> ProcessResult {
        let path = NSTemporaryDirectory() + "switchyard-check-\(UUID().uuidString).yaml"
        try yaml.replacingOccurrences(of: "127.0.0.1:5432/postgres", with: "127.0.0.1:\(cluster.port)/\(RoutingTests.database)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        return try runProcess(try switchyardBinaryPath, ["check", "--config", path], timeout: .seconds(60))
    }

    @Test("a correct migration passes, with a warning where a cast brings the type back")
    func good() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster)
        let result = try Self.run(RoutingTests.yaml, cluster: cluster)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("OK  users_v2: public.users -> public.users_v2: 3 columns mapped"))
        #expect(result.stdout.contains("0 error(s)"))
    }

    @Test("mistakes are named: unknown column, unmapped column, wrong key, broken expression")
    func bad() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster)
        let yaml = RoutingTests.yaml
            .replacingOccurrences(of: "    key: [id]", with: "    key: [name]")
            .replacingOccurrences(of: "created: { new: created_at, forward: \"created AT TIME ZONE 'UTC'\", inverse: \"created_at AT TIME ZONE 'UTC'\" }",
                                  with: "nickname: { new: created_at, inverse: \"created_at + 'nope'\" }")
        let result = try Self.run(yaml, cluster: cluster)
        #expect(result.status == 1)
        let out = result.stdout
        #expect(out.contains("public.users has no column nickname"), "\(out)")
        #expect(out.contains("created of public.users are not mapped"), "\(out)")
        #expect(out.contains("the primary key of public.users is (id), not (name)"), "\(out)")
        #expect(out.contains("columns.nickname.inverse `created_at + 'nope'` does not work on public.users_v2"), "\(out)")
    }

    @Test("a missing new relation is an error that says to create it")
    func missingNew() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster)
        let result = try Self.run(RoutingTests.yaml.replacingOccurrences(of: "new: public.users_v2", with: "new: public.users_v3"), cluster: cluster)
        #expect(result.status == 1)
        #expect(result.stdout.contains("new relation public.users_v3 does not exist"))
    }
}
