// The flags and control sections: stages, percentages, cohort sources, routing, and every rule with its key and line.

import Testing
import SwitchyardConfig

@Suite("Flag values")
struct FlagValueTests {
    @Test("percentages in hundredths", arguments: [
        ("0", 0),
        ("100", 10_000),
        ("12.5", 1250),
        ("12.50", 1250),
        ("12.500", 1250),
        ("0.01", 1),
        ("99.99", 9999),
        ("100.00", 10_000),
        ("007", 700),
        (" 7.25% ", 725),
        ("10 %", 1000),
    ])
    func percent(text: String, basisPoints: Int) throws {
        #expect(try ConfigValues.percentBasisPoints(text, key: "p") == basisPoints)
    }

    @Test("invalid percentages", arguments: [
        ("12.345", "has more than two decimals"),
        ("0.001", "has more than two decimals"),
        ("-1", "must not be negative"),
        ("-0.5", "must not be negative"),
        ("101", "at most 100"),
        ("100.01", "at most 100"),
        ("99999999999999999999999", "at most 100"),
        ("ten", "expected a percentage from 0 to 100"),
        ("", "expected a percentage"),
        ("1e1", "expected a percentage"),
        (".5", "expected a percentage"),
        ("5.", "expected a percentage"),
        ("1.2.3", "expected a percentage"),
    ])
    func invalidPercent(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try ConfigValues.percentBasisPoints(text, key: "flags[0].percent") }
        #expect(error.key == "flags[0].percent")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("percentages are shown with two decimals and parse back", arguments: [0, 1, 10, 725, 1250, 9999, 10_000])
    func describePercent(basisPoints: Int) throws {
        let text = ConfigValues.describe(basisPoints: basisPoints)
        #expect(text.hasSuffix("%"))
        #expect(text.split(separator: ".").last?.count == 3)
        #expect(try ConfigValues.percentBasisPoints(text, key: "p") == basisPoints)
    }

    @Test("percentage display")
    func percentDisplay() {
        #expect(ConfigValues.describe(basisPoints: 1250) == "12.50%")
        #expect(ConfigValues.describe(basisPoints: 5) == "0.05%")
        #expect(ConfigValues.describe(basisPoints: 10_000) == "100.00%")
    }

    @Test("stages parse and are ordered as a rollout proceeds")
    func stages() throws {
        #expect(FlagStage.allCases == [.off, .dualWrite, .shadow, .canary, .live, .complete])
        #expect(FlagStage.allCases.map(\.rawValue) == ["off", "dual_write", "shadow", "canary", "live", "complete"])
        for stage in FlagStage.allCases {
            #expect(try FlagStage.parse(stage.rawValue) == stage)
            #expect(try FlagStage.parse(" \(stage.rawValue.uppercased()) ") == stage)
        }
        #expect(try FlagStage.parse("dual-write") == .dualWrite)
        #expect(FlagStage.off < .dualWrite && .dualWrite < .shadow && .shadow < .canary && .canary < .live && .live < .complete)
        #expect(FlagStage.allCases.reversed().sorted() == FlagStage.allCases)
        #expect(FlagStage.canary >= .shadow)
        #expect(!(FlagStage.live < .live))
    }

    @Test("invalid stages", arguments: [
        ("canery", "did you mean canary?"),
        ("dualwrite", "did you mean dual_write?"),
        ("on", "expected one of off, dual_write, shadow, canary, live, complete, got \"on\""),
        ("", "expected one of"),
    ])
    func invalidStage(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try FlagStage.parse(text) }
        #expect(error.key == "stage")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("cohort sources parse and print back", arguments: [
        ("comment:cohort", CohortSource.comment(key: "cohort"), "comment:cohort"),
        ("comment:tenant-id", .comment(key: "tenant-id"), "comment:tenant-id"),
        (" Comment : Tenant ", .comment(key: "Tenant"), "comment:Tenant"),
        ("setting:switchyard.cohort", .setting(name: "switchyard.cohort"), "setting:switchyard.cohort"),
        ("setting:App.Cohort_ID", .setting(name: "app.cohort_id"), "setting:app.cohort_id"),
        ("setting:a.b.c", .setting(name: "a.b.c"), "setting:a.b.c"),
        ("application_name", .startupParameter("application_name"), "application_name"),
        ("user", .startupParameter("user"), "user"),
        ("DATABASE", .startupParameter("database"), "database"),
        ("startup:options", .startupParameter("options"), "startup:options"),
        ("startup:user", .startupParameter("user"), "user"),
        ("startup:x-tenant", .startupParameter("x-tenant"), "startup:x-tenant"),
        ("client_addr", .clientAddress, "client_addr"),
    ])
    func cohortSource(text: String, source: CohortSource, shown: String) throws {
        #expect(try CohortSource.parse(text, key: "k") == source)
        #expect(source.description == shown)
        #expect(try CohortSource.parse(shown, key: "k") == source)
    }

    @Test("invalid cohort sources", arguments: [
        ("setting:cohort", "a custom setting's name has a prefix and a dot"),
        ("setting:switchyard.", "has a prefix and a dot"),
        ("setting:.cohort", "has a prefix and a dot"),
        ("setting:", "setting: needs a setting name after the colon"),
        ("setting:a-b.c", "may contain only letters"),
        ("comment:", "comment: needs a comment key"),
        ("comment:a b", "may contain only letters"),
        ("startup:", "needs a startup parameter name"),
        ("commnet:cohort", "did you mean comment:?"),
        ("header:x", "expected comment:KEY, setting:NAME"),
        ("client_adr", "did you mean client_addr?"),
        ("cohort", "expected comment:KEY"),
        ("", "expected comment:KEY"),
    ])
    func invalidCohortSource(text: String, messageContains: String) throws {
        let error = try #require(throws: ConfigError.self) { try CohortSource.parse(text, key: "flags[0].cohort_key") }
        #expect(error.key == "flags[0].cohort_key")
        #expect(error.message.contains(messageContains), "\(error.message)")
    }

    @Test("the default cohort key")
    func defaultCohortKey() {
        #expect(CohortSource.defaultKey == [
            .comment(key: "cohort"), .setting(name: "switchyard.cohort"), .startupParameter("application_name"),
        ])
        #expect(FlagConfig(name: "f", migration: "m").cohortKey == CohortSource.defaultKey)
        #expect(FlagConfig(name: "f", migration: "m").salt == "f")
    }
}

@Suite("The flags and control sections")
struct FlagConfigTests {
    @Test("the full document's flag and control")
    func fullDocument() throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.text)
        #expect(config.flags == [
            FlagConfig(
                name: "users_v2", migration: "users_v2", stage: .canary, percentBasisPoints: 1250,
                cohortKey: [.comment(key: "cohort"), .setting(name: "switchyard.cohort"), .startupParameter("application_name")],
                salt: "users_v2", routing: .rewrite),
        ])
        #expect(config.control == ControlConfig())
    }

    @Test("a flag with every key set")
    func everyKey() throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([17: """
                percent: "0.5"
                cohort_key:
                  - setting:app.tenant
                  - client_addr
                salt: 2024-rollout
                routing:
                  search_path: { old: app_v1, new: '"App V2"' }
            """]))
        let flag = try #require(config.flags.first)
        #expect(flag.percentBasisPoints == 50)
        #expect(flag.cohortKey == [.setting(name: "app.tenant"), .clientAddress])
        #expect(flag.salt == "2024-rollout")
        #expect(flag.routing == .searchPath(old: "app_v1", new: "App V2"))
        #expect(flag.routing.description == "search_path(app_v1 -> \"App V2\")")
    }

    @Test("flag values as the loader reads them", arguments: [
        ("    percent: 0", 0),
        ("    percent: 100", 10_000),
        ("    percent: 12.5", 1250),
        ("    percent: 12.50", 1250),
        ("    percent: \"12.5\"", 1250),
        ("    percent: '33.33'", 3333),
        ("    # no percent", 0),
    ])
    func percentLine(line: String, basisPoints: Int) throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([17: line]))
        #expect(config.flags.first?.percentBasisPoints == basisPoints)
    }

    @Test("stage defaults to off, and a percent with a stage other than canary is accepted", arguments: [
        ("    # no stage", FlagStage.off),
        ("    stage: off", .off),
        ("    stage: dual_write", .dualWrite),
        ("    stage: SHADOW", .shadow),
        ("    stage: live", .live),
        ("    stage: complete", .complete),
    ])
    func stageLine(line: String, stage: FlagStage) throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([16: line]))
        #expect(config.flags.first?.stage == stage)
        #expect(config.flags.first?.percentBasisPoints == 1250)
    }

    @Test("routing forms", arguments: [
        ("    routing: rewrite", RoutingMode.rewrite),
        ("    routing: REWRITE", .rewrite),
        ("    routing:", .rewrite),
        ("    routing: {search_path: {old: App_V1, new: app_v2}}", .searchPath(old: "app_v1", new: "app_v2")),
    ])
    func routing(line: String, mode: RoutingMode) throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([17: line]))
        #expect(config.flags.first?.routing == mode)
    }

    @Test("the cohort key from the brief's flow list")
    func flowCohortKey() throws {
        let config = try ConfigLoader.parse(yaml: MigrationDocument.replacing([
            17: "    cohort_key: [comment:cohort, setting:switchyard.cohort, application_name, startup:options, client_addr]",
        ]))
        #expect(config.flags.first?.cohortKey == [
            .comment(key: "cohort"), .setting(name: "switchyard.cohort"), .startupParameter("application_name"),
            .startupParameter("options"), .clientAddress,
        ])
    }

    @Test("control settings")
    func control() throws {
        let config = try Fixture.parse("""
            control:
              schema: '"Switchyard Control"'
              database: postgresql://ctl:VerySecret@control-db:5433/switchyard
            """)
        #expect(config.control.schema == "Switchyard Control")
        #expect(config.control.database?.host == "control-db")
        #expect(config.control.database?.port == 5433)
        #expect(config.control.database?.password == "VerySecret")
        let folded = try Fixture.parse("control:\n  schema: Ops")
        #expect(folded.control.schema == "ops")
    }

    @Test("rejected flags name the key and line", arguments: [
        // percent
        InvalidCase(MigrationDocument.replacing([17: "    percent: 12.345"]), key: "flags[0].percent", line: 17,
                    "\"12.345\" has more than two decimals"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: -1"]), key: "flags[0].percent", line: 17, "must not be negative"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: 101"]), key: "flags[0].percent", line: 17,
                    "a percentage is at most 100, got \"101\""),
        InvalidCase(MigrationDocument.replacing([17: "    percent: 100.01"]), key: "flags[0].percent", line: 17, "at most 100"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: ten"]), key: "flags[0].percent", line: 17,
                    "expected a percentage from 0 to 100 with at most two decimals"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: 1e1"]), key: "flags[0].percent", line: 17, "expected a percentage"),
        InvalidCase(MigrationDocument.replacing([17: "    percent:"]), key: "flags[0].percent", line: 17, "got nothing (null)"),
        // stage
        InvalidCase(MigrationDocument.replacing([16: "    stage: canery"]), key: "flags[0].stage", line: 16, "did you mean canary?"),
        InvalidCase(MigrationDocument.replacing([16: "    stage: on"]), key: "flags[0].stage", line: 16,
                    "expected one of off, dual_write, shadow, canary, live, complete"),
        InvalidCase(MigrationDocument.replacing([16: "    stage: [canary]"]), key: "flags[0].stage", line: 16, "got a list"),
        // migration
        InvalidCase(MigrationDocument.replacing([15: "    migration: users_v3"]), key: "flags[0].migration", line: 15,
                    "migration users_v3 is not defined; the migrations are users_v2; did you mean users_v2?"),
        InvalidCase(MigrationDocument.replacing(blank(2...12) + [15: "    migration: users_v2"]), key: "flags[0].migration",
                    line: 15, "migration users_v2 is not defined; no migrations are defined; add one under migrations:"),
        InvalidCase(MigrationDocument.replacing([15: "    # no migration"]), key: "flags[0].migration", line: 14, "required"),
        InvalidCase(MigrationDocument.replacing([15: "    migration: Users_V2"]), key: "flags[0].migration", line: 15,
                    "a migration name is a plain identifier"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: 12.5\n  - name: other\n    migration: users_v2"]),
                    key: "flags[1].migration", line: 19,
                    "migration users_v2 already has a flag (flags[0]); a migration has at most one flag"),
        // name
        InvalidCase(MigrationDocument.replacing([14: "  -"]), key: "flags[0].name", line: 15, "required"),
        InvalidCase(MigrationDocument.replacing([14: "  - name: Users V2"]), key: "flags[0].name", line: 14,
                    "a flag name is a plain identifier"),
        InvalidCase(MigrationDocument.replacing([17: "    percent: 12.5\n  - name: users_v2\n    migration: users_v2"]),
                    key: "flags[1].name", line: 18, "flag name users_v2 is already used by flags[0] (line 14)"),
        InvalidCase(MigrationDocument.replacing([17: "    precent: 5"]), key: "flags[0].precent", line: 17, "did you mean percent?"),
        // cohort_key
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key: [comment:cohort, bogus]"]), key: "flags[0].cohort_key",
                    line: 17, "expected comment:KEY, setting:NAME"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key: [setting:cohort]"]), key: "flags[0].cohort_key",
                    line: 17, "a custom setting's name has a prefix and a dot"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key: []"]), key: "flags[0].cohort_key", line: 17,
                    "at least one cohort source is needed; omit cohort_key for the default "
                        + "[comment:cohort, setting:switchyard.cohort, application_name]"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key: [user, USER]"]), key: "flags[0].cohort_key", line: 17,
                    "user is listed twice"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key: user"]), key: "flags[0].cohort_key", line: 17,
                    "expected a list of cohort sources"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key:\n      - user\n      - \"comment:\""]),
                    key: "flags[0].cohort_key", line: 19, "comment: needs a comment key"),
        InvalidCase(MigrationDocument.replacing([17: "    cohort_key:\n      - user\n      -"]),
                    key: "flags[0].cohort_key", line: 19, "got nothing (null) in it"),
        // salt
        InvalidCase(MigrationDocument.replacing([17: "    salt: ''"]), key: "flags[0].salt", line: 17, "the salt is empty"),
        InvalidCase(MigrationDocument.replacing([17: "    salt:"]), key: "flags[0].salt", line: 17, "got nothing (null)"),
        // routing
        InvalidCase(MigrationDocument.replacing([17: "    routing: fancy"]), key: "flags[0].routing", line: 17,
                    "expected rewrite or {search_path: {old: SCHEMA, new: SCHEMA}}, got \"fancy\""),
        InvalidCase(MigrationDocument.replacing([17: "    routing: search_path"]), key: "flags[0].routing", line: 17,
                    "search_path routing names both schemas"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {}"]), key: "flags[0].routing", line: 17, "got an empty mapping"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {search_pth: {}}"]), key: "flags[0].routing.search_pth",
                    line: 17, "did you mean search_path?"),
        InvalidCase(MigrationDocument.replacing([17: "    routing:\n      search_path:\n        old: app_v1"]),
                    key: "flags[0].routing.search_path.new", line: 18, "required: the new version's schema"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {search_path: {old: app, new: APP}}"]),
                    key: "flags[0].routing.search_path.new", line: 17, "is the same schema as old (app)"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {search_path: {old: a, new: b, now: c}}"]),
                    key: "flags[0].routing.search_path.now", line: 17, "did you mean new?"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {search_path: app_v2}"]),
                    key: "flags[0].routing.search_path", line: 17, "expected {old: SCHEMA, new: SCHEMA}"),
        InvalidCase(MigrationDocument.replacing([17: "    routing: {search_path: {old: a.b, new: c}}"]),
                    key: "flags[0].routing.search_path.old", line: 17, "expected a single schema name"),
        // the list and its items
        InvalidCase(MigrationDocument.replacing([13: "flags: {}"] + blank(14...17)), key: "flags", line: 13,
                    "expected a list of flags"),
        InvalidCase(MigrationDocument.replacing([14: "  - users_v2"] + blank(15...17)), key: "flags[0]", line: 14,
                    "expected a mapping with the keys name, migration, stage, percent, cohort_key, salt, routing"),
        InvalidCase(MigrationDocument.replacing([16: "    stage: off\n    stage: live"]), key: "flags[0].stage", line: 17,
                    "duplicate key (first set on line 16)"),
    ])
    func rejectedFlag(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }

    @Test("rejected control settings name the key and line", arguments: [
        InvalidCase(MigrationDocument.replacing([19: "  schema: a.b"]), key: "control.schema", line: 19,
                    "expected a single schema name"),
        InvalidCase(MigrationDocument.replacing([19: "  schema:"]), key: "control.schema", line: 19, "got nothing (null)"),
        InvalidCase(MigrationDocument.replacing([19: "  schema: 9lives"]), key: "control.schema", line: 19,
                    "invalid schema name \"9lives\""),
        InvalidCase(MigrationDocument.replacing([19: "  schema: s\n  database: mysql://db/x"]), key: "control.database",
                    line: 20, "the scheme must be postgresql:// or postgres://"),
        InvalidCase(MigrationDocument.replacing([19: "  database: postgresql://db/x?sslmod=require"]), key: "control.database",
                    line: 19, "did you mean sslmode?"),
        InvalidCase(MigrationDocument.replacing([19: "  databse: null"]), key: "control.databse", line: 19,
                    "did you mean database?"),
        InvalidCase(MigrationDocument.replacing([18: "control: switchyard", 19: "#"]), key: "control", line: 18,
                    "expected a mapping with the keys schema, database"),
        InvalidCase(MigrationDocument.replacing([18: "schema: ops", 19: "#"]), key: "schema", line: 18,
                    "schema belongs under control:"),
        InvalidCase(MigrationDocument.replacing([13: "flag:"]), key: "flag", line: 13, "did you mean flags?"),
        InvalidCase(MigrationDocument.replacing([2: "migration:"]), key: "migration", line: 2, "did you mean migrations?"),
    ])
    func rejectedControl(_ invalid: InvalidCase) throws {
        let error = try #require(Fixture.error(invalid.yaml))
        #expect(error.key == invalid.key)
        #expect(error.line == invalid.line)
        #expect(error.message.contains(invalid.messageContains), "\(error.message)")
    }
}
