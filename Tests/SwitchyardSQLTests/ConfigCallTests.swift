// set_config calls read from the parse tree, and the setting changes they make with constants or bound values.
import SwitchyardSQL
import Testing

@Suite("set_config calls")
struct ConfigCallTests {
    static func calls(_ sql: String) -> [ConfigCall] {
        SQLAnalyzer.analyze(sql).flatMap { ConfigCall.calls(in: $0) }
    }

    @Test("constants and parameters, cast or not, qualified or not; other arguments are left out")
    func found() {
        #expect(Self.calls("select set_config('switchyard.cohort', 'tenant-4', false)").map { $0.change() }
            == [.set(name: "switchyard.cohort", value: "tenant-4", isLocal: false)])
        #expect(Self.calls("SELECT pg_catalog.set_config('Switchyard.Cohort', 'x', true), 1").map { $0.change() }
            == [.set(name: "switchyard.cohort", value: "x", isLocal: true)])
        #expect(Self.calls("select set_config($1::text, $2, $3::bool)")
            == [ConfigCall(name: .parameter(1), value: .parameter(2), isLocal: .parameter(3))])
        // NULL resets, as PostgreSQL does; a NULL is_local is false.
        #expect(Self.calls("select set_config('a.b', NULL, false)").map { $0.change() } == [.reset(name: "a.b")])
        #expect(Self.calls("select set_config('a.b', 'v', NULL)").map { $0.change() } == [.set(name: "a.b", value: "v", isLocal: false)])
        // Inside another expression or statement.
        #expect(Self.calls("insert into log values (set_config('a.b', 'v', false))").count == 1)
        // Values the text does not show.
        #expect(Self.calls("select set_config('a.b', name, false) from users").isEmpty)
        #expect(Self.calls("select set_config('a.b', 'x' || 'y', false)").isEmpty)
        #expect(Self.calls("select myschema.set_config('a.b', 'v', false)").isEmpty)
        #expect(Self.calls("select current_setting('a.b')").isEmpty)
        // A comment or a string that only mentions it.
        #expect(Self.calls("select 'set_config(''a.b'', ''v'', false)' /* set_config */").isEmpty)
        // A number or a boolean is a text only cast to one; a cast to another type makes the
        // call fail in PostgreSQL (no set_config takes it), so it changes nothing.
        #expect(Self.calls("select set_config('a.b', 42::text, false)").map { $0.change() } == [.set(name: "a.b", value: "42", isLocal: false)])
        #expect(Self.calls("select set_config('a.b', CAST(-1.50 AS varchar), 'on'::boolean)").map { $0.change() }
            == [.set(name: "a.b", value: "-1.50", isLocal: true)])
        #expect(Self.calls("select set_config('a.b', true::text, false)").map { $0.change() } == [.set(name: "a.b", value: "true", isLocal: false)])
        #expect(Self.calls("select set_config('a.b', 0::text, false)").map { $0.change() } == [.set(name: "a.b", value: "0", isLocal: false)])
        #expect(Self.calls("select set_config('a.b', (-5)::text, false)").map { $0.change() } == [.set(name: "a.b", value: "-5", isLocal: false)])
        #expect(Self.calls("select set_config('a.b', 1e3::text, false)").isEmpty, "PostgreSQL prints 1000")
        #expect(Self.calls("select set_config('a.b', .5::text, false)").isEmpty, "PostgreSQL prints 0.5")
        #expect(Self.calls("select set_config('a.b', true::name, false)").isEmpty, "PostgreSQL prints t")
        // A cast to a text type with a length, or to a type that is not built in (a domain over
        // text), is followed as before.
        #expect(Self.calls("select set_config($1::varchar(64), $2::my_text, false)")
            == [ConfigCall(name: .parameter(1), value: .parameter(2), isLocal: .constant("false"))])
        #expect(Self.calls("select set_config('a.b', '5'::int, false)").isEmpty)
        #expect(Self.calls("select set_config('a.b', true, false)").isEmpty)
        #expect(Self.calls("select set_config('a.b', 'v', 'true'::text)").isEmpty)
        // An is_local PostgreSQL would reject changes nothing.
        #expect(Self.calls("select set_config('a.b', 'v', 'maybe')").compactMap { $0.change() }.isEmpty)
    }

    @Test("SET of a number keeps its value: 0 and negative integers, which libpg_query's tree leaves out, come from the text")
    func setNumbers() {
        func set(_ sql: String) -> [SettingChange] { SQLAnalyzer.analyze(sql).flatMap { SettingChange.changes(in: $0) } }
        #expect(set("SET a.b = -5") == [.set(name: "a.b", value: "-5", isLocal: false)])
        #expect(set("set a.b to 0") == [.set(name: "a.b", value: "0", isLocal: false)])
        #expect(set("SET LOCAL a.b = 42") == [.set(name: "a.b", value: "42", isLocal: true)])
        #expect(set("SET a.b = - 7") == [.set(name: "a.b", value: "-7", isLocal: false)])
        #expect(set("SET a.b = -2.5") == [.set(name: "a.b", value: "-2.5", isLocal: false)])
    }

    @Test("bound values in text and binary formats, and NULLs")
    func bound() {
        let call = ConfigCall(name: .parameter(1), value: .parameter(2), isLocal: .parameter(3))
        let text = ConfigCall.changes([call], parameters: [Array("switchyard.cohort".utf8), Array("t-1".utf8), Array("on".utf8)], formats: [])
        #expect(text == [.set(name: "switchyard.cohort", value: "t-1", isLocal: true)])
        // Binary: text is its UTF-8 bytes, a boolean one byte.
        let binary = ConfigCall.changes([call], parameters: [Array("a.b".utf8), Array("v".utf8), [0]], formats: [1])
        #expect(binary == [.set(name: "a.b", value: "v", isLocal: false)])
        let mixed = ConfigCall.changes([call], parameters: [Array("a.b".utf8), Array("v".utf8), [1]], formats: [0, 0, 1])
        #expect(mixed == [.set(name: "a.b", value: "v", isLocal: true)])
        // Declared types: text and bool are read in binary; an int4 sent in binary is not text.
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8), Array("v".utf8), [1]], formats: [1], types: [25, 1043, 16])
            == [.set(name: "a.b", value: "v", isLocal: true)])
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8), [0, 0, 0, 42], [0]], formats: [1], types: [25, 23, 16]).isEmpty)
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8), Array("v".utf8), [0, 0, 0, 1]], formats: [1], types: [25, 25, 23]).isEmpty)
        // In text format the declared type does not matter: the server converts the text.
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8), Array("42".utf8), Array("t".utf8)], formats: [], types: [25, 23, 16])
            == [.set(name: "a.b", value: "42", isLocal: true)])
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8), nil, nil], formats: []) == [.reset(name: "a.b")])
        // A NULL name fails in PostgreSQL; a missing parameter is not known.
        #expect(ConfigCall.changes([call], parameters: [nil, Array("v".utf8), Array("f".utf8)], formats: []).isEmpty)
        #expect(ConfigCall.changes([call], parameters: [Array("a.b".utf8)], formats: []).isEmpty)
    }

    @Test("boolean input as PostgreSQL reads it")
    func booleans() {
        let call = ConfigCall(name: .constant("a.b"), value: .constant("v"), isLocal: .parameter(1))
        func local(_ text: String) -> Bool? {
            guard case let .set(_, _, isLocal)? = call.change(parameters: [1: text]) else { return nil }
            return isLocal
        }
        for t in ["t", "TRUE", "yes", "y", "on", "1", " true "] { #expect(local(t) == true, "\(t)") }
        for f in ["f", "False", "no", "n", "off", "of", "0"] { #expect(local(f) == false, "\(f)") }
        for bad in ["o", "", "2", "truth", "nope"] { #expect(local(bad) == nil, "\(bad)") }
    }
}
