// Shared helpers for the SQL analysis tests: expected-relation notation and a deterministic RNG.
import SwitchyardTestSupport
import SwitchyardSQL
import Testing

/// A relation a test expects, written compactly: the spelling as it appears in the SQL, the
/// folded name (defaulting to the spelling), qualification and alias, then its role.
struct ExpectedRelation: Sendable, Equatable, CustomStringConvertible {
    var spelling: String
    var catalog: String?
    var schema: String?
    var name: String
    var alias: String?
    var access: RelationReference.Access
    var position: RelationReference.Position

    var description: String {
        "\(spelling) [\(catalog.map { "\($0)." } ?? "")\(schema.map { "\($0)." } ?? "")\(name)"
            + "\(alias.map { " AS \($0)" } ?? "")] \(access) \(position)"
    }
}

func rel(
    _ spelling: String, name: String? = nil, catalog: String? = nil, schema: String? = nil, alias: String? = nil,
    _ access: RelationReference.Access = .read, _ position: RelationReference.Position = .from
) -> ExpectedRelation {
    ExpectedRelation(
        spelling: spelling, catalog: catalog, schema: schema, name: name ?? spelling, alias: alias,
        access: access, position: position
    )
}

/// What the analyser reported for one relation, in the same shape as the expectation.
func observed(_ relation: RelationReference, in analysis: StatementAnalysis) -> ExpectedRelation {
    ExpectedRelation(
        spelling: analysis.spelling(of: relation), catalog: relation.catalog, schema: relation.schema,
        name: relation.name, alias: relation.alias, access: relation.access, position: relation.position
    )
}

/// The UTF-8 byte offset of the first occurrence of `needle` in `text`.
func byteOffset(of needle: String, in text: String) -> Int? {
    let haystack = Array(text.utf8)
    let pattern = Array(needle.utf8)
    guard !pattern.isEmpty, pattern.count <= haystack.count else { return nil }
    for start in 0...(haystack.count - pattern.count) where haystack[start..<(start + pattern.count)].elementsEqual(pattern) {
        return start
    }
    return nil
}

/// The bytes of `text` in `range`, decoded.
func substring(_ text: String, bytes range: Range<Int>) -> String {
    String(decoding: Array(text.utf8)[range], as: UTF8.self)
}

/// SplitMix64: deterministic pseudo-random numbers so randomised tests are reproducible.
