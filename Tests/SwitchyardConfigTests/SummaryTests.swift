// SHOW CONFIG's lines (secrets hidden) and the keys whose change needs a restart.

import Testing
import SwitchyardConfig

@Suite("Summary and reload")
struct SummaryTests {
    @Test("summaryLines lists every setting under its YAML key, in file order")
    func everyKey() throws {
        let config = try ConfigLoader.parse(yaml: Fixture.upstreamLine)
        let lines = config.summaryLines()
        #expect(lines.map(\.key) == [
            "listen", "upstream", "admin_listen", "workers", "max_client_connections", "max_message_size", "prepare_routed_reads",
            "startup_timeout", "connect_timeout", "shutdown_timeout", "client_idle_timeout", "idle_transaction_timeout",
            "tcp_keepalive.enabled", "tcp_keepalive.idle", "tcp_keepalive.interval", "tcp_keepalive.count",
            "admin_console.users", "admin_console.password", "log.level", "log.format",
            "shadow_reads.connections", "shadow_reads.queue", "shadow_reads.statement_timeout",
            "client_tls.mode", "client_tls.cert", "client_tls.key", "client_tls.ca", "server_tls.sslmode", "server_tls.root_cert",
            "control.schema", "control.database",
        ])
        #expect(lines.map(\.value) == [
            "127.0.0.1:6432", "postgresql://switchyard@db.internal:5432/postgres", "127.0.0.1:9187", "0", "2000",
            "1GB", "true", "10s", "5s", "30s", "0s", "0s", "true", "1m", "10s", "6", "[postgres]", "(none)", "info", "text",
            "2", "100", "5s", "disable", "null", "null", "null", "disable", "null", "switchyard", "(upstream)",
        ])
    }

    @Test("each migration and flag is one readable line, after the other settings")
    func migrationsAndFlags() throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.text + """

              database: postgresql://ctl:VerySecret@control-db/switchyard
            """)
        let lines = config.summaryLines()
        #expect(Array(lines.map(\.key).suffix(4)) == ["migrations.users_v2", "flags.users_v2", "control.schema", "control.database"])
        let values = Dictionary(uniqueKeysWithValues: lines.map { ($0.key, $0.value) })
        #expect(values["migrations.users_v2"] == "public.users -> public.users_v2 key=[id] columns=3 extra_new_columns=1")
        #expect(values["flags.users_v2"]
            == "canary 12.50% migration=users_v2 cohort_key=[comment:cohort, setting:switchyard.cohort, application_name]")
        #expect(values["control.schema"] == "switchyard")
        #expect(values["control.database"] == "postgresql://ctl:********@control-db/switchyard")
    }

    @Test("non-default salt, routing and quoted names are shown")
    func flagDetails() throws {
        let config = try Fixture.parse("""
            migrations:
              - {name: m, old: '"App"."User List"', new: app.user, key: ['"ID"'], columns: {'"ID"': id}}
            flags:
              - name: f
                migration: m
                stage: dual_write
                salt: pepper
                cohort_key: [client_addr, startup:options]
                routing: {search_path: {old: app_v1, new: app_v2}}
            control:
              schema: '"Ctl"'
            """)
        let values = Dictionary(uniqueKeysWithValues: config.summaryLines().map { ($0.key, $0.value) })
        #expect(values["migrations.m"] == "\"App\".\"User List\" -> app.\"user\" key=[\"ID\"] columns=1")
        #expect(values["flags.f"] == "dual_write 0.00% migration=m cohort_key=[client_addr, startup:options] "
            + "salt=\"pepper\" routing=search_path(app_v1 -> app_v2)")
        #expect(values["control.schema"] == "\"Ctl\"")
    }

    @Test("summaryLines hides the upstream and console passwords")
    func hidesPasswords() throws {
        let config = try ConfigLoader.parse(yaml: """
            upstream: postgresql://switchyard:VerySecret@db/postgres?password=VerySecret
            admin_console:
              password: AlsoSecret
            """)
        let lines = config.summaryLines()
        for line in lines {
            #expect(!line.value.contains("Secret"), "\(line.key) shows a password")
        }
        #expect(lines.first { $0.key == "upstream" }?.value
            == "postgresql://switchyard:********@db/postgres?password=********")
        #expect(lines.first { $0.key == "admin_console.password" }?.value == "********")
    }

    @Test("summary values load back to the same configuration")
    func summaryRoundTrips() throws {
        let original = try Fixture.parse("""
            listen: "[::1]:7000"
            admin_listen: off
            workers: 12
            max_message_size: 1500
            startup_timeout: 1500ms
            tcp_keepalive: {enabled: false, idle: 2m, interval: 3s, count: 2}
            admin_console: {users: [], password: pw}
            log: {level: error, format: json}
            shadow_reads: {connections: 3, queue: 7, statement_timeout: 250ms}
            """)
        // Rebuild a file from the displayed values; only the hidden password has to be put back.
        var yaml = ""
        var section = ""
        for (key, value) in original.summaryLines() {
            let parts = key.split(separator: ".").map(String.init)
            let text = switch key {
            case "admin_console.users": value  // Already a YAML flow list.
            case "admin_console.password": "pw"
            case "control.database": "null"  // "(upstream)": no separate control database.
            case _ where value == "null": value
            default: "'\(value)'"
            }
            if parts.count == 2 {
                if parts[0] != section {
                    section = parts[0]
                    yaml += "\(section):\n"
                }
                yaml += "  \(parts[1]): \(text)\n"
            } else {
                yaml += "\(key): \(text)\n"
            }
        }
        #expect(try ConfigLoader.parse(yaml: yaml) == original)
    }

    @Test("restartRequiredChanges lists listen, admin_listen and workers only", arguments: [
        ("listen: 127.0.0.1:7000", ["listen"]),
        ("admin_listen: off", ["admin_listen"]),
        ("admin_listen: 127.0.0.1:9999", ["admin_listen"]),
        ("workers: 8", ["workers"]),
        ("listen: 127.0.0.1:7000\nworkers: 8\nadmin_listen: off", ["listen", "admin_listen", "workers"]),
        ("max_client_connections: 10\nlog: {level: debug}\nstartup_timeout: 1s", []),
        ("tcp_keepalive: {idle: 5s}\nadmin_console: {users: []}", []),
        ("migrations: [{name: m, old: a, new: b, key: [id], columns: {id: id}}]\nflags: [{name: f, migration: m}]", []),
        ("control: {schema: ctl, database: 'postgresql://ctl-db/x'}", []),
    ])
    func restartRequired(change: String, keys: [String]) throws {
        let old = try Fixture.parse("")
        let new = try Fixture.parse(change)
        #expect(old.restartRequiredChanges(to: new) == keys)
        #expect(old.restartRequiredChanges(to: old).isEmpty)
    }

    @Test("a changed upstream is applied by reload, not restart")
    func upstreamReloads() throws {
        let old = try Fixture.parse("")
        let new = try ConfigLoader.parse(yaml: "upstream: postgresql://other-db/postgres")
        #expect(old.restartRequiredChanges(to: new).isEmpty)
    }
}
