// Which integer constants of a SELECT a typed parameter may stand for.
import SwitchyardSQL
import Testing

@Suite("Parameter places")
struct ParameterPlacesTests {
    /// The constants at the statement's parameter places, as written.
    static func constants(_ sql: String) -> [String] {
        let statement = SQLAnalyzer.analyze(sql)[0]
        let bytes = Array(statement.text.utf8)
        return statement.parameterPlaces.sorted().map { start in
            var end = start
            while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) { end += 1 }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
    }

    @Test("operands in the top-level WHERE, IN lists, BETWEEN bounds, LIMIT and OFFSET", arguments: [
        ("select name from users where id = 11", ["11"]),
        ("select name from users where id = 11 and tenant_id <> 22 or not (id > 33)", ["11", "22", "33"]),
        ("select name from users where id in (1, 2, 3)", ["1", "2", "3"]),
        ("select name from users where id between 4 and 5 order by id limit 6 offset 7", ["4", "5", "6", "7"]),
        ("select name from users u where 8 = u.id + 9", ["8", "9"]),
        ("/* 12 */ select name from users where id = 13", ["13"]),
        ("select name from users fetch first 14 rows only", ["14"]),
        // ORDER BY 1 names a column: only the WHERE's 1 is a place.
        ("select name from users where id = 1 order by 1", ["1"]),
    ])
    func found(sql: String, expected: [String]) {
        #expect(Self.constants(sql) == expected, "\(sql)")
    }

    @Test("none where a parameter would change the statement or is not allowed", arguments: [
        "select id + 1 from users group by id + 1",
        "select name from users order by 1",
        "select name::varchar(10) from users",
        "select name from users where id = (select max(id) - 1 from users)",
        "select name from users where id = abs(3)",
        "select name from users where id = -4",
        "select name from users where id = 5::int8",
        "select name from users where id = 2.5",
        "select name from users where name = '7'",
        "select name from users order by id fetch first 8 rows with ties",
        "select 9 from users union select 10 from users where id = 11",
        "select name from users where id in (select 12)",
    ])
    func none(sql: String) {
        #expect(Self.constants(sql) == [], "\(sql)")
    }

    @Test("only SELECTs have places")
    func selectsOnly() {
        #expect(Self.constants("update users set name = 'x' where id = 1") == [])
        #expect(Self.constants("delete from users where id = 1") == [])
    }
}
