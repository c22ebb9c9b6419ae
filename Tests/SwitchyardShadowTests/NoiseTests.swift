// Noise calibration: a query that disagrees with itself is nondeterministic, not divergent; the registry remembers it.

import Testing
import SwitchyardShadow

@Suite("Noise classification")
struct NoiseClassifierTests {
    let old = result([["1", "a"], ["2", "b"]])
    let differentNew = result([["1", "a"], ["2", "B"]])

    @Test("equal answers are the same; different ones diverge, with their rows")
    func plain() {
        #expect(NoiseClassifier.classify(old: old, calibration: nil, new: old, ordered: false) == .same)
        #expect(NoiseClassifier.classify(old: old, calibration: old, new: old, ordered: false) == .same)
        guard case let .divergent(.rows(d)) = NoiseClassifier.classify(old: old, calibration: old, new: differentNew, ordered: false) else {
            Issue.record("expected a row divergence")
            return
        }
        #expect(d.onlyInOld == [["2", "b"]] && d.onlyInNew == [["2", "B"]])
        #expect(Divergence.rows(d).kind == .rows)
    }

    @Test("an old path that disagrees with itself makes the sample nondeterministic, whatever the new path says")
    func selfDisagreement() {
        let second = result([["1", "a"], ["2", "c"]])
        #expect(NoiseClassifier.classify(old: old, calibration: second, new: differentNew, ordered: false) == .nondeterministic)
        #expect(NoiseClassifier.classify(old: old, calibration: second, new: old, ordered: false) == .nondeterministic)
    }

    @Test("ties under ORDER BY: the old path reordering itself is noise, the new path reordering is an order divergence")
    func ties() {
        let swapped = result([["2", "b"], ["1", "a"]])
        #expect(NoiseClassifier.classify(old: old, calibration: swapped, new: swapped, ordered: true) == .nondeterministic)
        let verdict = NoiseClassifier.classify(old: old, calibration: old, new: swapped, ordered: true)
        guard case let .divergent(divergence) = verdict else {
            Issue.record("expected a divergence")
            return
        }
        #expect(divergence.kind == .order)
    }

    @Test("a fingerprint known to be nondeterministic is noise without a second run")
    func known() {
        #expect(NoiseClassifier.classify(old: old, calibration: nil, new: differentNew, ordered: false, knownNondeterministic: true)
            == .nondeterministic)
    }

    @Test("column differences are never noise")
    func columnsAreReal() {
        var renamed = old
        renamed.columns[0].name = "user_id"
        let verdict = NoiseClassifier.classify(old: old, calibration: differentNew, new: renamed, ordered: false, knownNondeterministic: true)
        guard case let .divergent(divergence) = verdict else {
            Issue.record("expected a divergence")
            return
        }
        #expect(divergence.kind == .columns)
    }

    @Test("a new-path error is a divergence of kind error")
    func errorKind() {
        #expect(Divergence.error(PathError(sqlState: "42703", message: "column x does not exist")).kind == .error)
    }
}

@Suite("Noise registry")
struct NoiseRegistryTests {
    @Test("remembers fingerprints once each")
    func remembers() {
        var registry = NoiseRegistry(capacity: 10)
        #expect(!registry.isNondeterministic("f1"))
        let added = registry.markNondeterministic("f1")
        let addedAgain = registry.markNondeterministic("f1")
        #expect(added && !addedAgain)
        #expect(registry.isNondeterministic("f1"))
        #expect(registry.count == 1)
    }

    @Test("bounded: past its capacity it forgets the oldest first")
    func bounded() {
        var registry = NoiseRegistry(capacity: 3)
        for i in 0..<10 { registry.markNondeterministic("f\(i)") }
        #expect(registry.count == 3)
        #expect(registry.fingerprints == ["f7", "f8", "f9"])
        #expect(!registry.isNondeterministic("f6"))
        #expect(registry.isNondeterministic("f7") && registry.isNondeterministic("f9"))
        registry.markNondeterministic("f0")
        #expect(registry.fingerprints == ["f8", "f9", "f0"])
    }
}
