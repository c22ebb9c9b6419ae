// Per-session routing: stages, cohorts from comments, settings and startup, and flips at transaction boundaries.
import SwitchyardConfig
import SwitchyardRouting
import SwitchyardSQL
import Testing

@Suite("Session router")
struct SessionRouterTests {
    static let route = ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v2",
                                 columns: [(column: "id", inverse: "id"), (column: "name", inverse: "full_name")])

    static func flag(_ stage: FlagStage, percent: Int = 0, cohortKey: [CohortSource] = CohortSource.defaultKey) -> FlagState {
        FlagState(name: "users_v2", migration: "users_v2", stage: stage, percentBasisPoints: percent, cohortKey: cohortKey, salt: "users_v2", route: route)
    }

    /// Cohort keys in and out of a 50% canary of the flag above.
    static let inside = (0..<1000).map { "tenant-\($0)" }.first { CohortBucketing.isInCanary(salt: "users_v2", key: $0, percentBasisPoints: 5000) }!
    static let outside = (0..<1000).map { "tenant-\($0)" }.first { !CohortBucketing.isInCanary(salt: "users_v2", key: $0, percentBasisPoints: 5000) }!

    static func decide(_ router: inout SessionRouter, _ sql: String, wire: WriteMirror.Wire = .simple) -> RouteDecision {
        router.route(sql: sql, statements: SQLAnalyzer.analyze(sql), commentTags: sqlcommenterTags(sql), wire: wire)
    }

    static func isNew(_ d: RouteDecision) -> Bool {
        if case .rewritten = d { return true }
        return false
    }

    @Test("a SQL-prepared write that a statement forgot is given back when the statement's request fails")
    func forgottenPreparedWrites() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.dualWrite)]), idle: true)
        _ = Self.decide(&router, "prepare w(int) as update users set name = 'x' where id = $1")
        #expect(router.hasSQLPreparedWrites)
        let added = router.takeForgottenSQLPrepared()
        #expect(added.count == 1 && added.first?.statement == nil, "preparing a new name forgets nothing, and is kept as a change")
        // If that PREPARE failed (the name was in use by a read, or the text did not prepare), the
        // name holds no write: an EXECUTE of it runs what the server holds, and is not refused.
        router.restoreSQLPrepared(added)
        #expect(!router.hasSQLPreparedWrites, "a rejected PREPARE is not remembered")
        _ = Self.decide(&router, "prepare w(int) as update users set name = 'x' where id = $1")
        _ = router.takeForgottenSQLPrepared()
        #expect(router.hasSQLPreparedWrites)
        // In a request of several statements, the failure may be a later statement's, after the
        // PREPARE ran: that write stays followed.
        _ = Self.decide(&router, "deallocate w")
        _ = router.takeForgottenSQLPrepared()
        _ = Self.decide(&router, "prepare w(int) as update users set name = 'x' where id = $1; select 1/0")
        router.restoreSQLPrepared(router.takeForgottenSQLPrepared())
        #expect(router.hasSQLPreparedWrites, "the PREPARE may have run before the error")
        for forgetting in ["select 1/0; deallocate w", "DEALLOCATE ALL", "discard all", "prepare w(int) as select $1"] {
            _ = Self.decide(&router, forgetting)
            #expect(!router.hasSQLPreparedWrites, "\(forgetting)")
            let forgotten = router.takeForgottenSQLPrepared()
            #expect(forgotten.count == 1, "\(forgetting)")
            #expect(router.takeForgottenSQLPrepared().isEmpty, "taken once")
            router.restoreSQLPrepared(forgotten)
            #expect(router.hasSQLPreparedWrites, "\(forgetting) failed: the write may still be prepared")
        }
        router.statementClosed("w")
        #expect(!router.hasSQLPreparedWrites)
        #expect(router.takeForgottenSQLPrepared().count == 1, "a Close forgets it too")
        // A PREPARE of another write over the name replaces it; if it failed (the name was in use),
        // the old write is what the name holds again.
        _ = Self.decide(&router, "prepare w(int) as delete from users where id = $1")
        _ = router.takeForgottenSQLPrepared()
        _ = Self.decide(&router, "prepare w(int) as update audit set seen = true where id = $1")
        let replaced = router.takeForgottenSQLPrepared()
        #expect(replaced.map(\.statement?.text) == ["prepare w(int) as delete from users where id = $1"])
        router.restoreSQLPrepared(replaced)
        _ = Self.decide(&router, "deallocate w")
        #expect(router.takeForgottenSQLPrepared().map(\.statement?.text) == ["prepare w(int) as delete from users where id = $1"])
        // Not over a write prepared under the name since.
        _ = Self.decide(&router, "prepare w(int) as delete from users where id = $1")
        _ = router.takeForgottenSQLPrepared()
        _ = Self.decide(&router, "prepare w(int) as update audit set seen = true where id = $1")
        let again = router.takeForgottenSQLPrepared()
        _ = Self.decide(&router, "deallocate w")
        _ = Self.decide(&router, "prepare w(int) as insert into audit values ($1)")
        _ = router.takeForgottenSQLPrepared()
        router.restoreSQLPrepared(again)
        _ = Self.decide(&router, "deallocate w")
        #expect(router.takeForgottenSQLPrepared().map(\.statement?.text) == ["prepare w(int) as insert into audit values ($1)"])
    }

    /// `routeMatched` for `sql` as a session calls it: nil when the text is not of the cache's last
    /// masked key or the router leaves it to the general path.
    static func decideMatched(_ router: inout SessionRouter, _ sql: String, cache: QueryInfoCache) -> SessionRouter.MatchedRoute? {
        var text = sql
        var runs: [Range<Int>] = []
        return text.withUTF8 { bytes in
            guard let match = cache.matchLast(bytes, runs: &runs) else { return nil }
            return router.routeMatched(match, text: bytes, runs: runs, cache: cache, front: 5)
        }
    }

    @Test("a read of the masked key routed last is decided on its bytes as the general path decides it, cohorts and labels included")
    func matchedReads() {
        let table = RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)])
        var general = SessionRouter(startupParameters: ["application_name": "app"], clientAddress: "127.0.0.1:5000")
        var fast = general
        general.offer(table, idle: true)
        fast.offer(table, idle: true)
        let (generalCache, fastCache) = (QueryInfoCache(capacity: 100), QueryInfoCache(capacity: 100))
        var texts = (0..<80).map { k in "/*cohort='tenant-\(k)'*/ select name from users u where u.id = \(k * 37)" }
        // Without a comment the key is the session's setting, which a SET changes between texts.
        texts += ["set switchyard.cohort = '\(Self.inside)'", "select name from users u where u.id = 4", "select name from users u where u.id = 5",
                  "set switchyard.cohort = '\(Self.outside)'", "select name from users u where u.id = 6",
                  "set switchyard.cohort = '\(Self.inside)'", "select name from users u where u.id = 7"]
        var onBytes = 0, rewritten = 0
        for sql in texts {
            let expected = general.route(sql: sql, cache: generalCache)
            let matched = Self.decideMatched(&fast, sql, cache: fastCache)
            let decision: RouteDecision
            switch matched {
            case nil:
                decision = fast.route(sql: sql, cache: fastCache)
            case .forward?:
                onBytes += 1
                decision = .forward
            case let .rewritten(body, flags)?:
                onBytes += 1
                #expect(body.prefix(5) == [0, 0, 0, 0, 0] && body.last == 0, "\(sql)")
                decision = .rewritten(String(decoding: body.dropFirst(5).dropLast(), as: UTF8.self), flags: flags)
            case .prepared?:
                Issue.record("a prepared form, not asked for: \(sql)")
                decision = .forward
            }
            #expect(decision == expected, "\(sql)")
            #expect(fast.lastCohorts == general.lastCohorts, "\(sql)")
            #expect(fast.lastLatencyLabel == general.lastLatencyLabel, "\(sql)")
            #expect(fast.generation == general.generation, "\(sql)")
            if case .rewritten = expected { rewritten += 1 }
        }
        // All but the first text of each key, and those before its first rewrite, on the bytes.
        #expect(onBytes >= texts.count - 3 - 4, "\(onBytes) of \(texts.count)")
        #expect(rewritten > 20 && rewritten < 65, "about half are in the canary: \(rewritten)")
    }

    @Test("the general path decides writes, statement lists, set_config, reads of no migrated relation and a new flag table")
    func matchedReadsDeclined() {
        let inside = Self.inside
        for pair in [
            ("/*cohort='\(inside)'*/ update users set name = 'x' where id = 1", "/*cohort='\(inside)'*/ update users set name = 'x' where id = 2"),
            ("/*cohort='\(inside)'*/ select name from users where id = 1; select 2", "/*cohort='\(inside)'*/ select name from users where id = 3; select 2"),
            ("/*cohort='\(inside)'*/ select set_config('a.b', name, false) from users where id = 1",
             "/*cohort='\(inside)'*/ select set_config('a.b', name, false) from users where id = 2"),
            ("/*cohort='\(inside)'*/ select 1 from audit where id = 1", "/*cohort='\(inside)'*/ select 1 from audit where id = 2"),
            ("/*cohort='\(inside)'*/ explain select name from users where id = 1", "/*cohort='\(inside)'*/ explain select name from users where id = 2"),
        ] {
            var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
            router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
            let cache = QueryInfoCache(capacity: 100)
            _ = router.route(sql: pair.0, cache: cache)
            _ = router.route(sql: pair.1, cache: cache)
            #expect(Self.decideMatched(&router, pair.1, cache: cache) == nil, "\(pair.1)")
        }
        // A read it routed, under a new flag table: looked at again, and routed on the table's terms.
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        let cache = QueryInfoCache(capacity: 100)
        // The key's first text has no rewritten form made; the second makes it.
        _ = router.route(sql: "/*cohort='\(inside)'*/ select name from users where id = 1", cache: cache)
        #expect(Self.decideMatched(&router, "/*cohort='\(inside)'*/ select name from users where id = 2", cache: cache) == nil)
        _ = router.route(sql: "/*cohort='\(inside)'*/ select name from users where id = 2", cache: cache)
        #expect(Self.decideMatched(&router, "/*cohort='\(inside)'*/ select name from users where id = 2", cache: cache) != nil)
        router.offer(RoutingTable(version: 2, flags: [Self.flag(.shadow)]), idle: true)
        #expect(Self.decideMatched(&router, "/*cohort='\(inside)'*/ select name from users where id = 3", cache: cache) == nil)
        router.offer(RoutingTable(version: 3, flags: [Self.flag(.live)]), idle: true)
        #expect(Self.decideMatched(&router, "/*cohort='\(inside)'*/ select name from users where id = 4", cache: cache) != nil)
    }

    @Test("stages before canary read the old path; live and complete read the new one", arguments: FlagStage.allCases)
    func stages(stage: FlagStage) {
        var router = SessionRouter(startupParameters: ["application_name": "app"], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(stage, percent: 10_000)]), idle: true)
        let d = Self.decide(&router, "select name from users where id = 1")
        #expect(Self.isNew(d) == (stage >= .canary), "\(stage): \(d)")
    }

    @Test("each read of a migrated table is labelled with its flag, cohort and the path that served it")
    func latencyLabels() {
        let (inside, outside) = (Self.inside, Self.outside)
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        let fingerprint = SQLAnalyzer.analyze("select name from users where id = 1").first!.fingerprint
        _ = Self.decide(&router, "/*cohort='\(inside)'*/ select name from users where id = 1")
        #expect(router.lastLatencyLabel == LatencyLabel(flag: "users_v2", cohort: "canary", path: .new, fingerprint: fingerprint))
        _ = Self.decide(&router, "/*cohort='\(outside)'*/ select name from users where id = 2")
        #expect(router.lastLatencyLabel == LatencyLabel(flag: "users_v2", cohort: "control", path: .old, fingerprint: fingerprint))
        // Kept on the old path although in the canary: the label says old.
        _ = Self.decide(&router, "/*cohort='\(inside)'*/ select ctid from users")
        #expect(router.lastLatencyLabel?.path == .old)
        #expect(router.lastLatencyLabel?.cohort == "canary")
        _ = Self.decide(&router, "select 1")
        #expect(router.lastLatencyLabel == nil)
        router.offer(RoutingTable(version: 2, flags: [Self.flag(.live)]), idle: true)
        _ = Self.decide(&router, "select name from users")
        #expect(router.lastLatencyLabel?.cohort == "live")
        #expect(router.lastLatencyLabel?.path == .new)
    }

    @Test("the generation moves with a new flag table or a cohort setting; decision records nothing")
    func generation() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        let start = router.generation
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
        #expect(router.generation == start + 1)
        // Offered mid-transaction: taken up, and the generation moved, at the boundary.
        router.offer(RoutingTable(version: 2, flags: [Self.flag(.off)]), idle: false)
        #expect(router.generation == start + 1)
        router.transactionEnded()
        #expect(router.generation == start + 2)
        _ = Self.decide(&router, "select 1")
        #expect(router.generation == start + 2)
        _ = Self.decide(&router, "set switchyard.cohort = 'tenant-1'")
        #expect(router.generation == start + 3)
        let cache = QueryInfoCache()
        let sql = "set switchyard.cohort = 'tenant-2'"
        _ = router.decision(sql: sql, info: cache.info(for: sql), cache: cache)
        #expect(router.generation == start + 3)
        #expect(router.context.settings["switchyard.cohort"] == "tenant-1")
    }

    @Test("a SET is undone with its transaction: ROLLBACK, ABORT or an error; kept by COMMIT and ROLLBACK TO SAVEPOINT")
    func setRolledBack() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        func cohort() -> String? { router.context.settings["switchyard.cohort"] }
        _ = Self.decide(&router, "set switchyard.cohort = 'a'")
        router.transactionEnded()
        #expect(cohort() == "a")
        #expect(!router.watchesForRollback)

        for ending in ["rollback", "ABORT", "begin; rollback"] {
            _ = Self.decide(&router, "begin; set switchyard.cohort = 'b'")
            #expect(router.watchesForRollback)
            #expect(cohort() == "b")
            _ = Self.decide(&router, ending)
            router.transactionEnded()
            #expect(cohort() == "a", "\(ending)")
        }

        _ = Self.decide(&router, "set switchyard.cohort = 'c'; select 1/0")
        router.transactionEnded(failed: true)
        #expect(cohort() == "a")

        _ = Self.decide(&router, "begin; set switchyard.cohort = 'd'; savepoint s")
        _ = Self.decide(&router, "rollback to savepoint s")
        _ = Self.decide(&router, "commit")
        router.transactionEnded()
        #expect(cohort() == "d")
    }

    @Test("ROLLBACK TO SAVEPOINT undoes the SETs made after the savepoint, RELEASE keeps them, as PostgreSQL does")
    func savepoints() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        func cohort() -> String? { router.context.settings["switchyard.cohort"] }
        _ = Self.decide(&router, "set switchyard.cohort = 'a'")
        router.transactionEnded()
        _ = Self.decide(&router, "begin; set switchyard.cohort = 'b'; savepoint one")
        _ = Self.decide(&router, "set switchyard.cohort = 'c'")
        _ = Self.decide(&router, "SAVEPOINT Two")
        _ = Self.decide(&router, "set switchyard.cohort = 'd'")
        _ = Self.decide(&router, "set local switchyard.cohort = 'local'")
        #expect(router.context.settings["switchyard.cohort"] == "d")
        let generation = router.generation
        _ = Self.decide(&router, "rollback to two")
        #expect(cohort() == "c")
        #expect(router.generation > generation)
        // The savepoint stays after ROLLBACK TO: a second one goes back to it again.
        _ = Self.decide(&router, "set switchyard.cohort = 'e'")
        _ = Self.decide(&router, "ROLLBACK TRANSACTION TO SAVEPOINT two")
        #expect(cohort() == "c")
        _ = Self.decide(&router, "rollback work to one")
        #expect(cohort() == "b")
        // RELEASE keeps what was set after the savepoint, and drops the savepoints made after it.
        _ = Self.decide(&router, "set switchyard.cohort = 'f'; savepoint three; set switchyard.cohort = 'g'")
        _ = Self.decide(&router, "release savepoint one")
        #expect(cohort() == "g")
        _ = Self.decide(&router, "commit")
        router.transactionEnded()
        #expect(cohort() == "g")

        // A savepoint made before the transaction's first SET is not seen (the text is not
        // looked at then): rolling back to it undoes every SET of the transaction, SET LOCAL too.
        _ = Self.decide(&router, "begin")
        _ = Self.decide(&router, "set local switchyard.cohort = 'h'")
        #expect(router.watchesForRollback)
        _ = Self.decide(&router, "set switchyard.cohort = 'i'")
        _ = Self.decide(&router, "rollback to savepoint early")
        #expect(cohort() == "g")
        let ctx = router.context
        #expect(ctx.cohortKey([.setting(name: "switchyard.cohort")]) == "g")
        _ = Self.decide(&router, "commit")
        router.transactionEnded()
        #expect(cohort() == "g")
    }

    @Test("DISCARD ALL resets the settings; set_config sets them like SET, from constants or, for a Parse, from its Bind")
    func discardAndSetConfig() {
        let (inside, outside) = (Self.inside, Self.outside)
        var router = SessionRouter(startupParameters: [:], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        #expect(!router.holdsSettings)
        _ = Self.decide(&router, "select set_config('switchyard.cohort', '\(inside)', false)")
        router.transactionEnded()
        #expect(router.holdsSettings)
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "DISCARD ALL")
        router.transactionEnded()
        #expect(!router.holdsSettings)
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        // DISCARD PLANS leaves settings alone.
        _ = Self.decide(&router, "select set_config('switchyard.cohort', '\(inside)', false)")
        _ = Self.decide(&router, "discard plans")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        // is_local: until the transaction ends.
        _ = Self.decide(&router, "select set_config('switchyard.cohort', '\(outside)', true)")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        // A Parse runs nothing: its calls, constant or bound, are the session's to apply at each Bind.
        _ = Self.decide(&router, "select set_config('switchyard.cohort', $1, false)", wire: .extended)
        #expect(router.lastPreparedConfigCalls == [ConfigCall(name: .constant("switchyard.cohort"), value: .parameter(1), isLocal: .constant("false"))])
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        #expect(router.lastPreparedConfigCalls.isEmpty)
        _ = Self.decide(&router, "select set_config('switchyard.cohort', '\(outside)', false)", wire: .extended)
        #expect(router.lastPreparedConfigCalls.count == 1)
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        router.settingsChanged([.set(name: "switchyard.cohort", value: outside, isLocal: false)])
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        // Undone with its transaction like a SET.
        router.transactionEnded(failed: true)
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        // Calls that do not run now change nothing: EXPLAIN without ANALYZE, a cursor's query, a PREPARE.
        for text in ["explain select set_config('switchyard.cohort', '\(outside)', false)",
                     "declare c cursor for select set_config('switchyard.cohort', '\(outside)', false)",
                     "prepare p as select set_config('switchyard.cohort', '\(outside)', false)"] {
            _ = Self.decide(&router, text)
            #expect(Self.isNew(Self.decide(&router, "select * from users")), "\(text)")
        }
        // A NULL value with is_local resets the setting for the transaction only.
        _ = Self.decide(&router, "select set_config('switchyard.cohort', NULL, true)")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "SET LOCAL switchyard.cohort TO DEFAULT")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
    }

    @Test("a setting the startup message gave (as a parameter or in options) is the cohort setting until a SET, and again after RESET")
    func startupSettings() {
        let (inside, outside) = (Self.inside, Self.outside)
        let startups: [[String: String]] = [
            ["options": "-c switchyard.cohort=\(inside)"], ["options": "-c application_name=x -cswitchyard.cohort=\(inside)"],
            ["options": "--switchyard.cohort=\(inside) -c work_mem=64MB"], ["switchyard.cohort": inside],
            ["options": "-c switchyard.cohort=\(outside) -c switchyard.cohort=\(inside)"],
        ]
        for startup in startups {
            var router = SessionRouter(startupParameters: startup, clientAddress: "127.0.0.1:5000")
            router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
            #expect(Self.isNew(Self.decide(&router, "select * from users")), "\(startup)")
            _ = Self.decide(&router, "set switchyard.cohort = '\(outside)'")
            #expect(!Self.isNew(Self.decide(&router, "select * from users")), "\(startup)")
            _ = Self.decide(&router, "reset switchyard.cohort")
            #expect(Self.isNew(Self.decide(&router, "select * from users")), "\(startup)")
        }
        // A startup parameter wins over options, which PostgreSQL applies first.
        var both = SessionRouter(startupParameters: ["switchyard.cohort": outside, "options": "-c switchyard.cohort=\(inside)"],
                                 clientAddress: "127.0.0.1:5000")
        both.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        #expect(!Self.isNew(Self.decide(&both, "select * from users")))
        // Another setting, or an escaped space inside a value, is not the cohort's.
        for startup in [["options": "-c switchyard.other=\(inside)"], ["options": "-c app=\\ -c\\ switchyard.cohort=\(inside)"]] {
            var router = SessionRouter(startupParameters: startup, clientAddress: "127.0.0.1:5000")
            router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
            #expect(!Self.isNew(Self.decide(&router, "select * from users")), "\(startup)")
        }
    }

    @Test("at canary the cohort key decides, from the comment first, then the setting, then application_name")
    func cohortSources() {
        // Find one key inside a 50% canary and one outside it.
        let (inside, outside) = (Self.inside, Self.outside)
        var router = SessionRouter(startupParameters: ["application_name": outside], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        #expect(Self.isNew(Self.decide(&router, "/*cohort='\(inside)'*/ select * from users")))
        _ = Self.decide(&router, "SET switchyard.cohort = '\(inside)'")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        #expect(!Self.isNew(Self.decide(&router, "/*cohort='\(outside)'*/ select * from users")))
        _ = Self.decide(&router, "RESET switchyard.cohort")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "SET LOCAL switchyard.cohort TO '\(inside)'")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        // The path moves back when the transaction ends: the generation says so (statements
        // prepared in the meantime are checked again).
        let generation = router.generation
        router.transactionEnded()
        #expect(router.generation == generation + 1)
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(router.generation == generation + 1)
    }

    @Test("COMMIT AND CHAIN ends SET LOCAL values, ROLLBACK AND CHAIN undoes SETs, at once; a SET in the chained transaction stays")
    func chainedTransactions() {
        let (inside, outside) = (Self.inside, Self.outside)
        var router = SessionRouter(startupParameters: ["application_name": outside], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 5000)]), idle: true)
        // BEGIN; SET ...; ROLLBACK AND CHAIN: PostgreSQL has undone the SET before the next statement.
        _ = Self.decide(&router, "SET switchyard.cohort = '\(inside)'")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "ROLLBACK AND CHAIN")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        // A SET in the chained transaction, committed, stays.
        _ = Self.decide(&router, "SET switchyard.cohort = '\(inside)'")
        _ = Self.decide(&router, "COMMIT")
        router.transactionEnded()
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        // SET LOCAL ends with COMMIT AND CHAIN; AND NO CHAIN is a plain COMMIT, seen at the boundary.
        _ = Self.decide(&router, "RESET switchyard.cohort")
        router.transactionEnded()
        _ = Self.decide(&router, "SET LOCAL switchyard.cohort = '\(inside)'")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "commit and chain")
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "SET LOCAL switchyard.cohort = '\(inside)'")
        _ = Self.decide(&router, "COMMIT AND NO CHAIN")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(!Self.isNew(Self.decide(&router, "select * from users")))
    }

    @Test("SET and SET LOCAL search_path move the schema unqualified names resolve to, and back")
    func searchPathFollowed() {
        var router = SessionRouter(startupParameters: ["application_name": "app"], clientAddress: "127.0.0.1:5000")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "SET search_path TO other")
        #expect(Self.decide(&router, "select * from users") == .forward)
        _ = Self.decide(&router, "SET LOCAL search_path TO public")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        router.transactionEnded()
        #expect(Self.decide(&router, "select * from users") == .forward)
        _ = Self.decide(&router, "RESET search_path")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
    }

    @Test("$user finds the role's own schema when it holds an old relation's name, in the default search_path and a set one")
    func userSchema() {
        let live = RoutingTable(version: 1, flags: [Self.flag(.live)])
        var own = SessionRouter(startupParameters: ["user": "alice"], clientAddress: "127.0.0.1:5000", userSchema: "alice")
        own.offer(live, idle: true)
        // "$user", public: users is alice.users, not the migrated public.users.
        #expect(Self.decide(&own, "select name from users where id = 1") == .forward)
        #expect(Self.isNew(Self.decide(&own, "select name from public.users where id = 1")))
        #expect(Self.isNew(Self.decide(&own, "select name from alice.users where id = 1")) == false)
        _ = Self.decide(&own, "set search_path = public, \"$user\"")
        #expect(Self.isNew(Self.decide(&own, "select name from users where id = 1")))
        _ = Self.decide(&own, "set search_path = \"$user\", public")
        #expect(Self.decide(&own, "select name from users where id = 1") == .forward)
        // Without a schema of its own (or one holding no old relation's name), $user is passed over.
        var plain = SessionRouter(startupParameters: ["user": "bob"], clientAddress: "127.0.0.1:5000")
        plain.offer(live, idle: true)
        #expect(Self.isNew(Self.decide(&plain, "select name from users where id = 1")))
        _ = Self.decide(&plain, "set search_path = \"$user\", public")
        #expect(Self.isNew(Self.decide(&plain, "select name from users where id = 1")))
    }

    @Test("a session without any cohort key stays on the old path at canary")
    func noKey() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.canary, percent: 10_000, cohortKey: [.comment(key: "cohort")])]), idle: true)
        #expect(Self.decide(&router, "select * from users") == .forward)
    }

    @Test("a flip offered inside a transaction applies from the next one")
    func flipAtBoundary() {
        var router = SessionRouter(startupParameters: ["application_name": "x"], clientAddress: "")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.off)]), idle: true)
        router.offer(RoutingTable(version: 2, flags: [Self.flag(.live)]), idle: false)
        #expect(Self.decide(&router, "select * from users") == .forward)
        router.transactionEnded()
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        router.offer(RoutingTable(version: 3, flags: [Self.flag(.shadow)]), idle: true)
        #expect(Self.decide(&router, "select * from users") == .forward)
    }

    @Test("unsafe reads are reported with their fingerprint")
    func fallbackFingerprint() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
        let sql = "select * from users where id = 1 for update"
        guard case let .keptOnOldPath(fingerprint, reason) = Self.decide(&router, sql) else {
            Issue.record("expected a fallback")
            return
        }
        #expect(fingerprint == (try? SQLAnalyzer.fingerprint(sql)))
        #expect(reason.contains("locking"))
    }

    @Test("unqualified names follow the session's search_path when it set one")
    func searchPathOfTheSession() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        _ = Self.decide(&router, "set search_path to other, public")
        #expect(Self.decide(&router, "select * from users") == .forward)
        #expect(Self.isNew(Self.decide(&router, "select * from public.users")))
        _ = Self.decide(&router, "set search_path = \"$user\", public")
        #expect(Self.isNew(Self.decide(&router, "select * from users")))
        for startup in [["options": "-c search_path=app"], ["options": "--search_path=app -c work_mem=64MB"],
                        ["search_path": "app", "options": "-c search_path=public"]] {
            var fromStartup = SessionRouter(startupParameters: startup, clientAddress: "")
            fromStartup.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
            #expect(Self.decide(&fromStartup, "select * from users") == .forward, "\(startup)")
        }
    }

    @Test("a new flag table with another route is followed from the next statement on")
    func routeChangesWithTheTable() {
        var router = SessionRouter(startupParameters: [:], clientAddress: "")
        router.offer(RoutingTable(version: 1, flags: [Self.flag(.live)]), idle: true)
        let sql = "select name from users where id = 1"
        guard case let .rewritten(first, flags) = Self.decide(&router, sql) else {
            Issue.record("not routed")
            return
        }
        #expect(first.contains("public.users_v2") && flags == ["users_v2"])
        let v3 = ReadRoute(oldSchema: "public", oldName: "users", newRelation: "public.users_v3",
                           columns: [(column: "id", inverse: "id"), (column: "name", inverse: "name")])
        let moved = FlagState(name: "users_v3", migration: "users_v3", stage: .live, percentBasisPoints: 0,
                              cohortKey: CohortSource.defaultKey, salt: "users_v3", route: v3)
        router.offer(RoutingTable(version: 2, flags: [moved]), idle: true)
        guard case let .rewritten(second, secondFlags) = Self.decide(&router, sql) else {
            Issue.record("not routed after the flip")
            return
        }
        #expect(second.contains("public.users_v3") && !second.contains("users_v2") && secondFlags == ["users_v3"])
    }
}
