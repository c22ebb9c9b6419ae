// A session starts with the settings its role and database give it, in PostgreSQL's order.
@testable import SwitchyardRouting
import Testing

@Suite("Role and database settings")
struct RoleSettingsTests {
    static let rows = RoleSettings([
        .init(role: nil, database: nil, name: "search_path", value: "everyone"),
        .init(role: nil, database: "app", name: "search_path", value: "app_db"),
        .init(role: "alice", database: nil, name: "search_path", value: "alice"),
        .init(role: "alice", database: "app", name: "Search_Path", value: "alice_in_app"),
        .init(role: "bob", database: nil, name: "switchyard.cohort", value: "bob-cohort"),
    ])

    @Test("the role in the database over the role, over the database, over every session", arguments: [
        ("alice", "app", "alice_in_app"), ("alice", "other", "alice"), ("bob", "app", "app_db"), ("carol", "other", "everyone"),
    ])
    func precedence(role: String, database: String, searchPath: String) {
        #expect(Self.rows.settings(role: role, database: database)["search_path"] == searchPath)
    }

    @Test("settings are kept apart by name, which is compared lower-cased")
    func byName() {
        #expect(Self.rows.settings(role: "bob", database: "app") == ["search_path": "app_db", "switchyard.cohort": "bob-cohort"])
        #expect(RoleSettings().settings(role: "bob", database: "app").isEmpty)
    }

    @Test("a session's startup settings and its SETs win over its role's")
    func startupWins() {
        let roleSettings = ["search_path": "app_db", "switchyard.cohort": "from-role"]
        let fromRole = CohortContext(startupParameters: [:], roleSettings: roleSettings)
        #expect(fromRole.cohortKey([.setting(name: "switchyard.cohort")]) == "from-role")
        #expect(fromRole.searchPath == "app_db")
        let overStartup = CohortContext(startupParameters: ["options": "-c switchyard.cohort=from-startup", "search_path": "mine"],
                                        roleSettings: roleSettings)
        #expect(overStartup.cohortKey([.setting(name: "switchyard.cohort")]) == "from-startup")
        #expect(overStartup.searchPath == "mine")
        var set = fromRole
        set.settings["search_path"] = "set_later"
        #expect(set.searchPath == "set_later")
    }
}
