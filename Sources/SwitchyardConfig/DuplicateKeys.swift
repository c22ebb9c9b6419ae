// Turns Yams' parse errors into ConfigErrors, pinning a duplicated key to its second occurrence and full path.

import Yams

/// Yams rejects duplicate keys while composing, reporting only the key's name and its first occurrence.
/// An operator needs the repeated line and the section it is in, so this recovers them: it renames the
/// first occurrence in the text (at the position Yams reported), composes again, and finds the renamed key.
enum DuplicateKeys {
    private static let sentinel = "switchyard-duplicate-"

    static func translate(_ error: YamlError, yaml: String, file: String?) -> ConfigError {
        func syntax(_ problem: String, _ context: YamlError.Context?, _ line: Int?) -> ConfigError {
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) on line \(context.mark.line))"
            }
            // An unquoted "[::1]:6432" starts a YAML list; say so rather than leave a puzzling parser message.
            if let line, let text = lineText(line, in: yaml), text.contains("["), text.contains("]:") {
                message += "; a value starting with \"[\" must be quoted, as in listen: \"[::1]:6432\""
            }
            return ConfigError(file: file, line: line, key: "yaml", message: message)
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return syntax(problem, context, mark.line)
        case let .reader(problem, offset, _, yaml):
            return syntax(problem, nil, offset.map { lineNumber(atCharacterOffset: $0, in: yaml) })
        case let .duplicatedKeysInMapping(duplicates, context):
            return duplicate(names: duplicates, firstMark: context.mark, yaml: yaml, file: file)
        default:
            return ConfigError(file: file, key: "yaml", message: "invalid YAML: \(error)")
        }
    }

    private static func duplicate(names: [String], firstMark: Mark, yaml: String, file: String?) -> ConfigError {
        let name = names.first ?? "?"
        guard let found = locate(name: name, firstMark: firstMark, yaml: yaml) else {
            return ConfigError(
                file: file, line: firstMark.line >= 1 ? firstMark.line : nil, key: name,
                message: "duplicate key; each key may appear only once")
        }
        return ConfigError(
            file: file, line: found.line, key: found.path,
            message: "duplicate key (first set on line \(found.firstLine)); each key may appear only once")
    }

    private static func locate(name: String, firstMark: Mark, yaml: String) -> (path: String, line: Int, firstLine: Int)? {
        var text = yaml
        var mark = firstMark
        // Each pass renames one occurrence; a key repeated three times, or another duplicate, needs more.
        for pass in 0..<16 {
            guard let renamed = insert("\(sentinel)\(pass)-", into: text, at: mark) else { return nil }
            text = renamed
            do {
                guard let root = try Yams.compose(yaml: text, .default, .default, .utf8) else { return nil }
                return search(root, path: [], target: "\(sentinel)0-\(name)")
            } catch YamlError.duplicatedKeysInMapping(_, let context) {
                mark = context.mark
            } catch {
                return nil
            }
        }
        return nil
    }

    /// Finds the mapping holding `target` and returns the path and line of the next key with the same name.
    private static func search(_ node: Node, path: [String], target: String) -> (path: String, line: Int, firstLine: Int)? {
        switch node {
        case .mapping(let mapping):
            if let hit = mapping.first(where: { $0.key.string == target }), let firstLine = hit.key.mark?.line {
                let name = stripped(target)
                let later = mapping
                    .filter { $0.key.string != target && $0.key.string.map(stripped) == name }
                    .compactMap { $0.key.mark?.line }
                    .min()
                guard let line = later else { return nil }
                return ((path + [name]).joined(separator: "."), line, firstLine)
            }
            for (key, value) in mapping {
                if let found = search(value, path: path + [stripped(key.string ?? "?")], target: target) {
                    return found
                }
            }
        case .sequence(let sequence):
            for (index, item) in sequence.enumerated() {
                var itemPath = path
                let last = itemPath.popLast() ?? ""
                itemPath.append("\(last)[\(index)]")
                if let found = search(item, path: itemPath, target: target) { return found }
            }
        case .scalar, .alias:
            break
        }
        return nil
    }

    private static func stripped(_ key: String) -> String {
        guard key.hasPrefix(sentinel) else { return key }
        let rest = key.dropFirst(sentinel.count)
        guard let dash = rest.firstIndex(of: "-") else { return key }
        return String(rest[rest.index(after: dash)...])
    }

    /// Inserts `prefix` at a libyaml position (1-based line and column in Unicode scalars), inside the quotes
    /// of a quoted key so the result still parses.
    private static func insert(_ prefix: String, into text: String, at mark: Mark) -> String? {
        guard mark.line >= 1, mark.column >= 1 else { return nil }
        var scalars = Array(text.unicodeScalars)
        var line = 1
        var index = 0
        while line < mark.line {
            guard index < scalars.count else { return nil }
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "\r":
                if index < scalars.count, scalars[index] == "\n" { index += 1 }
                line += 1
            // The line breaks libyaml counts: LF, CR (above), NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
            default:
                break
            }
        }
        var position = index + mark.column - 1
        guard position < scalars.count else { return nil }
        if scalars[position] == "\"" || scalars[position] == "'" { position += 1 }
        scalars.insert(contentsOf: prefix.unicodeScalars, at: position)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    private static func lineText(_ line: Int, in text: String) -> Substring? {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        return line >= 1 && line <= lines.count ? lines[line - 1] : nil
    }

    private static func lineNumber(atCharacterOffset offset: Int, in text: String) -> Int {
        1 + text.prefix(offset).filter { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }.count
    }
}
