// The admin console's commands, parsed from the text of a simple Query.

/// A console command. Parsing is a pure function so it is tested without a socket.
public enum AdminCommand: Sendable, Equatable {
    case showClients
    case showServers
    case showStats
    case showConfig
    case showVersion
    case showHelp
    case showFlags
    case showRouting
    case showCohorts
    case showDivergences
    case showLatency
    /// `SET FLAG name TO stage [percent]`.
    case setFlag(name: String, stage: String, percent: String?)
    case reload
    /// Nothing but whitespace and semicolons: answered with EmptyQueryResponse.
    case empty

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownCommand(String)
        case unknownShowTarget(String)

        public var description: String {
            switch self {
            case let .unknownCommand(text): "unknown admin console command \"\(text)\"; try SHOW HELP"
            case let .unknownShowTarget(target): "unknown SHOW target \"\(target)\"; try SHOW HELP"
            }
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> AdminCommand {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == ";" })
            .map { $0.uppercased() }
        guard let first = words.first else { return .empty }
        switch (first, words.count) {
        case ("SHOW", 2):
            switch words[1] {
            case "CLIENTS": return .showClients
            case "SERVERS": return .showServers
            case "STATS": return .showStats
            case "CONFIG": return .showConfig
            case "VERSION": return .showVersion
            case "HELP": return .showHelp
            case "FLAGS": return .showFlags
            case "ROUTING": return .showRouting
            case "COHORTS": return .showCohorts
            case "DIVERGENCES": return .showDivergences
            case "LATENCY": return .showLatency
            default: throw .unknownShowTarget(words[1].lowercased())
            }
        case ("RELOAD", 1): return .reload
        case ("SET", 5...6) where words[1] == "FLAG" && words[3] == "TO":
            // Names are case-insensitive like SQL identifiers; the original spelling is folded to lower case.
            return .setFlag(name: words[2].lowercased(), stage: words[4].lowercased(), percent: words.count == 6 ? words[5] : nil)
        default:
            throw .unknownCommand(text.trimmingCharacters(in: [" ", "\n", ";"]))
        }
    }

    public static let help: [String] = [
        "SHOW CLIENTS   client sessions: user, database, address, state, traffic",
        "SHOW SERVERS   upstream connections, one per client session",
        "SHOW STATS     totals and request latency percentiles",
        "SHOW CONFIG    the configuration in effect",
        "SHOW VERSION   the Switchyard version",
        "SHOW FLAGS     each flag: migration, stage, canary percent, cohort key, reads routed",
        "SHOW COHORTS   cohort keys seen per canary flag (busiest first): bucket, path, transactions",
        "SHOW ROUTING   reads of routed relations kept on the old path, by fingerprint, with the reason",
        "SHOW DIVERGENCES   writes to migrated tables not mirrored, every instance's, with the reason",
        "SHOW LATENCY   reads of migrated tables: latency per flag, cohort, path and fingerprint",
        "SET FLAG name TO stage [percent]   move a flag: off, dual_write, shadow, canary, live, complete",
        "RELOAD         re-read the configuration file, as SIGHUP does",
    ]
}

/// A result set with text columns, as the console returns it.
public struct AdminResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String?]]
    public var tag: String

    public init(columns: [String], rows: [[String?]], tag: String = "SHOW") {
        self.columns = columns
        self.rows = rows
        self.tag = tag
    }
}

private extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
