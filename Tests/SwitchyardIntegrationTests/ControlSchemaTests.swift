// Flag state lives in the control schema: every instance sees a flip within a second, and restarts keep it.
import Foundation
import Glibc
import SwitchyardConfig
import SwitchyardTestSupport
import Testing

@Suite("Flags shared through the control schema", .serialized)
struct ControlSchemaTests {
    /// A database of this suite's own: suites run in parallel and each recreates its users tables.
    static let database = "sy_control"

    static func stage(_ proxy: ProxyFixture) throws -> String {
        let line = try proxy.psql("show flags", database: "switchyard")
        return line.split(separator: "|").dropFirst(2).first.map(String.init) ?? ""
    }

    static func waitFor(_ expected: String, on proxy: ProxyFixture, within seconds: Double) throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds + 2 {
            if try stage(proxy) == expected { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    @Test("a flip on one instance is in force on another within one second, and survives a restart")
    func flipReachesOtherInstance() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        let schema = "sy_ctl_shared_\(UInt32.random(in: 0...UInt32.max))"
        let a = try ProxyFixture(configure: { RoutingTests.configure(&$0, controlSchema: schema, database: Self.database) })
        let b = try ProxyFixture(configure: { RoutingTests.configure(&$0, controlSchema: schema, database: Self.database) })
        #expect(try Self.waitFor("canary", on: b, within: 1) != nil)
        // The schema is seeded (the history's first row) before the flip, so the history reads in
        // order: a flip made before any control thread connected would come before the seed.
        let seeded = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < seeded, ((try? cluster.psql("select count(*) from \(schema).flag_history", database: Self.database)) ?? "") != "1" {
            usleep(50_000)
        }
        let flipped = Date()
        #expect(try a.psql("set flag users_v2 to live", database: "switchyard").isEmpty)
        let seen = try Self.waitFor("live", on: b, within: 1)
        #expect(seen != nil && Date().timeIntervalSince(flipped) <= 1.0, "seen after \(String(describing: seen)) s")
        // Queries on b now read the new table.
        let conn = try PQConnection(b.connectionString(database: Self.database))
        #expect(try conn.query("select name from users where id = 5") == [["new-5"]])
        a.stop()
        b.stop()
        // A restart keeps the stored stage, not the config's canary.
        let c = try ProxyFixture(configure: { RoutingTests.configure(&$0, controlSchema: schema, database: Self.database) })
        defer { c.stop() }
        #expect(try Self.waitFor("live", on: c, within: 3) != nil)
        let history = try cluster.psql("select from_stage, to_stage, changed_by like '%admin console%' from \(schema).flag_history order by id", database: Self.database)
        #expect(history == "|canary|f\ncanary|live|t")
        _ = try cluster.psql("drop schema \(schema) cascade", database: Self.database)
    }

    @Test("switchyard flag set/list/history act on the control schema")
    func cli() throws {
        let cluster = try PostgresCluster.shared()
        let schema = "sy_ctl_cli_\(UInt32.random(in: 0...UInt32.max))"
        let path = NSTemporaryDirectory() + "switchyard-flags-\(UUID().uuidString).yaml"
        let yaml = RoutingTests.yaml.replacingOccurrences(of: "127.0.0.1:5432", with: "127.0.0.1:\(cluster.port)")
            + "\ncontrol:\n  schema: \(schema)\n"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let binary = try switchyardBinaryPath
        let set = try runProcess(binary, ["flag", "set", "users_v2", "canary", "12.5", "--config", path, "--why", "ramp up"], timeout: .seconds(30))
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("users_v2: canary 12.50%"))
        let list = try runProcess(binary, ["flag", "list", "--config", path], timeout: .seconds(30))
        #expect(list.stdout.contains("users_v2\tusers_v2\tcanary\t12.50%"))
        let history = try runProcess(binary, ["flag", "history", "--config", path], timeout: .seconds(30))
        #expect(history.stdout.contains("ramp up"))
        let bad = try runProcess(binary, ["flag", "set", "nope", "live", "--config", path], timeout: .seconds(30))
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("unknown flag \"nope\""))
        let badStage = try runProcess(binary, ["flag", "set", "users_v2", "sideways", "--config", path], timeout: .seconds(30))
        #expect(badStage.status == 2)
        _ = try cluster.psql("drop schema \(schema) cascade")
    }
}

@Suite("Control database unreachable")
struct ControlUnreachableTests {
    /// A database of this suite's own: suites run in parallel and each recreates its users tables.
    static let database = "sy_control_unreachable"

    @Test("routing keeps the configured state, SHOW FLAGS says why, and SET FLAG fails with a clear error")
    func failStatic() throws {
        let cluster = try PostgresCluster.shared()
        try RoutingTests.prepare(cluster, database: Self.database)
        let deadPort = freeTCPPort()
        try ProxyFixture.with(configure: { c in
            RoutingTests.configure(&c, controlSchema: "sy_ctl_dead", database: Self.database)
            c.control.database = try! UpstreamURI.parse("postgresql://switchyard@127.0.0.1:\(deadPort)/postgres")
        }) { proxy in
            let conn = try PQConnection(proxy.connectionString(database: Self.database))
            #expect(try conn.query("/*cohort='\(RoutingTests.inside)'*/ select name from users where id = 3") == [["new-3"]])
            #expect(try conn.query("/*cohort='\(RoutingTests.outside)'*/ select name from users where id = 3") == [["old-3"]])
            var flags = ""
            let deadline = Date().addingTimeInterval(10)
            while !flags.contains("unreachable") && Date() < deadline {
                flags = try proxy.psql("show flags", database: "switchyard")
                usleep(100_000)
            }
            #expect(flags.contains("control schema unreachable"), "\(flags)")
            #expect(flags.contains("127.0.0.1:\(deadPort)"))
            do {
                _ = try proxy.psql("set flag users_v2 to live", database: "switchyard")
                Issue.record("SET FLAG succeeded without a control database")
            } catch {
                #expect("\(error)".contains("cannot connect to the control database"), "\(error)")
            }
            // Nothing changed: still canary.
            #expect(try conn.query("/*cohort='\(RoutingTests.outside)'*/ select name from users where id = 4") == [["old-4"]])
        }
    }
}
