// Reads the shadow-read settings: each flag's `shadow:` section and the top-level `shadow_reads:` section.

import Yams

extension DocumentReader {
    static let flagShadowKeys = ["calibration_percent", "redact_parameters", "max_per_fingerprint_per_second"]
    static let shadowReadsKeys = ["connections", "queue", "statement_timeout"]

    /// The `flags:` list with each flag's `shadow:` section. The other keys of a flag are read by
    /// ``flags(_:)``; each `shadow:` entry is taken out of its item first and read here, into the
    /// flag it belongs to, so both readers keep their own keys.
    func flagsWithShadow(_ section: Entry) throws(ConfigError) -> [FlagSite] {
        guard case .sequence(var items) = section.value else { return try flags(section) }
        var shadows: [(index: Int, entry: Entry)] = []
        for (index, item) in items.enumerated() {
            guard case .mapping(let mapping) = item else { continue }
            let path = "\(section.path)[\(index)]"
            var kept: [(Node, Node)] = []
            for entry in try entries(of: item, under: path) {
                if entry.name == "shadow" {
                    shadows.append((index, entry))
                    continue
                }
                if !Self.flagKeys.contains(entry.name) {
                    throw unknownFlagKey(entry)
                }
            }
            for (key, value) in mapping {
                if case .scalar(let scalar) = key, !isNull(key), scalar.string == "shadow" { continue }
                kept.append((key, value))
            }
            items[index] = .mapping(Node.Mapping(kept, mapping.tag, mapping.style, mapping.mark))
        }
        var sites = try flags(Entry(name: section.name, path: section.path, keyLine: section.keyLine, value: .sequence(items)))
        for (index, entry) in shadows where index < sites.count {
            sites[index].config.shadow = try flagShadow(entry, base: sites[index].config.shadow)
        }
        return sites
    }

    /// An unknown key in a flag, with a pointer to `shadow:` when it is one of that section's keys.
    /// (The share of reads sampled is the flag's own `shadow_sample`.)
    private func unknownFlagKey(_ entry: Entry) -> ConfigError {
        if Self.flagShadowKeys.contains(entry.name) {
            return error(entry.keyLine, entry.path, "unknown key; \(entry.name) belongs under the flag's shadow:")
        }
        return unknownKey(entry, known: Self.flagKeys + ["shadow"])
    }

    /// `shadow: { calibration_percent: 10, redact_parameters: false, max_per_fingerprint_per_second: 50 }`, over
    /// `base` (the flag's `shadow_sample`); a null section keeps the defaults.
    func flagShadow(_ section: Entry, base: FlagShadowConfig = FlagShadowConfig()) throws(ConfigError) -> FlagShadowConfig {
        var result = base
        for entry in try nestedEntries(section, keys: Self.flagShadowKeys, example: "{calibration_percent: 10}") {
            switch entry.name {
            case "calibration_percent":
                result.calibrationPercentBasisPoints = try percent(entry)
            case "redact_parameters":
                let text = try scalarText(entry, expecting: "true or false")
                result.redactParameters = try located(entry) { () throws(ConfigError) in try ConfigValues.bool(text, key: entry.path) }
            case "max_per_fingerprint_per_second":
                result.maxPerFingerprintPerSecond = try wholeNumber(
                    entry, in: FlagShadowConfig.maxPerFingerprintPerSecondRange, what: "samples per second (0: no cap)")
            default:
                throw unknownKey(entry, known: Self.flagShadowKeys)
            }
        }
        return result
    }

    /// `shadow_reads: { connections: 2, queue: 100, statement_timeout: 5s }`; a null section keeps the defaults.
    func shadowReads(_ section: Entry) throws(ConfigError) -> ShadowReadsConfig {
        var result = ShadowReadsConfig()
        for entry in try sectionEntries(section) {
            switch entry.name {
            case "connections":
                result.connections = try wholeNumber(entry, in: ShadowReadsConfig.connectionsRange, what: "side connections")
            case "queue":
                result.queue = try wholeNumber(entry, in: ShadowReadsConfig.queueRange, what: "waiting samples")
            case "statement_timeout":
                let text = try scalarText(entry, expecting: "a duration such as 5s or 500ms")
                let value = try located(entry) { () throws(ConfigError) in try ConfigValues.duration(text, key: entry.path) }
                let range = ShadowReadsConfig.statementTimeoutRange
                guard range.contains(value) else {
                    throw error(entry.valueLine, entry.path, "expected a duration from 1ms to 1h, got \(quoted(text))")
                }
                guard value.components.attoseconds % 1_000_000_000_000_000 == 0 else {
                    throw error(entry.valueLine, entry.path,
                                "PostgreSQL's statement_timeout counts whole milliseconds, got \(quoted(text))")
                }
                result.statementTimeout = value
            default:
                throw unknownKey(entry, known: Self.sectionKeys["shadow_reads"]!)
            }
        }
        return result
    }

    private func percent(_ entry: Entry) throws(ConfigError) -> Int {
        let text = try scalarText(entry, expecting: "a percentage from 0 to 100, such as 5 or 0.5")
        return try located(entry) { () throws(ConfigError) in try ConfigValues.percentBasisPoints(text, key: entry.path) }
    }

    private func wholeNumber(_ entry: Entry, in range: ClosedRange<Int>, what: String) throws(ConfigError) -> Int {
        let expectation = "a whole number of \(what) from \(range.lowerBound) to \(range.upperBound)"
        let text = try scalarText(entry, expecting: expectation)
        return try located(entry) { () throws(ConfigError) in
            try ConfigValues.integer(text, key: entry.path, in: range, what: expectation)
        }
    }
}
