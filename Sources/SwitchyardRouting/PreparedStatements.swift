// The named prepared statements of one session, and which text the server holds under each name.
import SwitchyardSQL

/// A named prepared statement is rewritten once, when the client prepares it, but it may be
/// executed for the rest of the session. So that a flip (or a session moving to another cohort)
/// reaches it from the session's next transaction, like it reaches simple queries, the session
/// remembers each statement's text and the text the server prepared under its name, and
/// between transactions re-prepares the statements whose path changed.
///
/// Pure bookkeeping: the I/O shell sends the swaps and reports how each ended.
public struct PreparedStatements: Sendable {
    public struct Statement: Sendable, Equatable {
        /// The text the client prepared.
        public var sql: String
        public var parameterTypes: [Int32]
        /// The text the server holds under the name: the client's, or its rewrite.
        public var serverText: String
    }

    /// Re-prepare statement `name` as `text` (it holds `previous`).
    public struct Swap: Sendable, Equatable {
        public var name: String
        public var text: String
        public var parameterTypes: [Int32]
        public var previous: String

        public init(name: String, text: String, parameterTypes: [Int32], previous: String) {
            self.name = name
            self.text = text
            self.parameterTypes = parameterTypes
            self.previous = previous
        }
    }

    public enum SwapOutcome: Sendable, Equatable {
        /// The server holds the new text.
        case done
        /// The server has no statement by that name (the client's own Parse failed).
        case statementMissing
        /// The new text did not prepare; the server still holds the previous one.
        case failed
    }

    public private(set) var statements: [String: Statement] = [:]
    /// Statements are tracked up to this many per session; later ones keep the path they were prepared on.
    public let limit: Int
    /// Named statements prepared beyond the limit, or whose server text became unknown.
    public private(set) var untracked = 0

    public init(limit: Int = 5_000) {
        self.limit = limit
    }

    public var isEmpty: Bool { statements.isEmpty }

    /// The client prepared `sql` as `name`, and `sentText` went to the server. The unnamed
    /// statement is prepared anew for each use and needs no tracking. Preparing a name already
    /// tracked fails on the server unless the client closed it in a way not seen here, so the
    /// name is dropped: which text the server holds is no longer certain.
    public mutating func parsed(name: String, sql: String, parameterTypes: [Int32], sentText: String) {
        guard !name.isEmpty else { return }
        if statements.removeValue(forKey: name) != nil {
            untracked += 1
            return
        }
        guard statements.count < limit else {
            untracked += 1
            return
        }
        statements[name] = Statement(sql: sql, parameterTypes: parameterTypes, serverText: sentText)
    }

    /// Close of a statement, or `DEALLOCATE name`.
    public mutating func closed(name: String) {
        statements.removeValue(forKey: name)
    }

    /// `DEALLOCATE ALL` or `DISCARD ALL`.
    public mutating func closedAll() {
        statements.removeAll()
    }

    /// The swaps that give every statement the text `desired` returns for its SQL; each is
    /// recorded as done, to be confirmed or undone by ``finished(_:outcome:)``.
    public mutating func swaps(desired: (String) -> String) -> [Swap] {
        var out: [Swap] = []
        for (name, statement) in statements {
            let text = desired(statement.sql)
            guard text != statement.serverText else { continue }
            // A refusal declares the client's parameters typed, so its Bind still fits.
            let types = WriteMirror.isRefusal(text)
                ? WriteMirror.refusalParameterTypes(declared: statement.parameterTypes, sql: statement.sql) : statement.parameterTypes
            out.append(Swap(name: name, text: text, parameterTypes: types, previous: statement.serverText))
            statements[name]?.serverText = text
        }
        // A stable order, so the same state always sends the same bytes.
        return out.sorted { $0.name < $1.name }
    }

    public mutating func finished(_ swap: Swap, outcome: SwapOutcome) {
        switch outcome {
        case .done:
            break
        case .statementMissing:
            statements.removeValue(forKey: swap.name)
        case .failed:
            if statements[swap.name]?.serverText == swap.text { statements[swap.name]?.serverText = swap.previous }
        }
    }

    /// What a `DEALLOCATE` or `DISCARD` statement closes: nil when it closes no prepared
    /// statement (`DISCARD PLANS`), `.all` for `DEALLOCATE ALL` and `DISCARD ALL`.
    public enum Deallocation: Sendable, Equatable {
        case all
        case named(String)
    }

    public static func deallocation(_ statement: StatementAnalysis) -> Deallocation? {
        guard statement.statementType == "DeallocateStmt" || statement.statementType == "DiscardStmt" else { return nil }
        guard let words = try? SQLAnalyzer.words(in: statement.text).filter({ $0 != ";" }) else { return .all }
        guard let last = words.last else { return nil }
        if statement.statementType == "DiscardStmt" {
            return last.uppercased() == "ALL" ? .all : nil
        }
        // DEALLOCATE [PREPARE] { name | ALL }: the parser accepted it, so the last word is the name or ALL.
        if last.uppercased() == "ALL", words.count >= 2 { return .all }
        guard let name = ReadRewriter.foldedIdentifier(last) else { return .all }
        return .named(name)
    }
}
