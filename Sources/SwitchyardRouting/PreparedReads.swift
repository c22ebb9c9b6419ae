// The reads a session has prepared on its server connection (see PreparedRead).

/// A session's ``PreparedRead``s on its server connection, by id: the name each is prepared
/// under, and the one whose PREPARE is on its way. Names are never reused: `switchyard_r`, a
/// token of the process, the session's number and a serial number. So a PREPARE cannot meet a name
/// the server still holds after the session lost track of it (a DISCARD ALL that failed, a
/// DEALLOCATE that did not run), and where server connections are shared (a pooler between
/// Switchyard and PostgreSQL), no session runs another's statement by its name.
public struct PreparedReads: Sendable {
    /// What to send for a read.
    public enum Plan: Sendable, Equatable {
        /// The read is prepared: `EXECUTE name(…)`; `head` is `EXECUTE name` in bytes, made once.
        case execute(name: String, head: [UInt8])
        /// Prepare it first, in the same Query (whose answer then begins with the PREPARE's
        /// CommandComplete, which the client must not see; the session reports through
        /// ``prepareEnded(succeeded:)`` whether it came), and with the limit reached deallocate
        /// the oldest, in a Query of the session's own sent before.
        case prepare(name: String, deallocating: String?)
    }

    public static let namePrefix = "switchyard_r"
    /// Random, once per process: the names of two Switchyard processes differ.
    public static let processToken = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    /// How many times a session may find its statements gone before it stops preparing.
    public static let missingLimit = 3
    /// The most reads a session keeps prepared: beyond, the oldest goes.
    public let limit: Int
    private let prefix: String
    private var missing = 0
    private var names: [Int: (name: String, head: [UInt8])] = [:]
    /// Ids in the order they were prepared.
    private var order: [Int] = []
    private var serial = 0
    private var pending: (id: Int, name: String)?

    /// `session`: what makes the names the session's own.
    public init(session: String, limit: Int = 100) {
        self.limit = max(1, limit)
        prefix = Self.namePrefix + session + "_"
    }

    /// The session prepares no more: its statements kept disappearing (``noteMissing()``).
    public var isOff: Bool { missing >= Self.missingLimit }

    /// The server did not have a statement the session had prepared.
    public mutating func noteMissing() { missing += 1 }

    public var count: Int { names.count }

    /// The plan for read `id`: nil when it is not prepared and `canPrepare` is false (the
    /// session cannot tell its answer apart now), while another PREPARE is on its way, or once
    /// the session prepares no more (``isOff``), unless `evenIfOff`: a read whose EXECUTE was
    /// refused must still be run.
    public mutating func plan(for id: Int, canPrepare: Bool, evenIfOff: Bool = false) -> Plan? {
        if let found = names[id] { return .execute(name: found.name, head: found.head) }
        guard canPrepare, pending == nil, !isOff || evenIfOff else { return nil }
        serial += 1
        let name = prefix + String(serial)
        var evicted: String?
        if names.count >= limit, !order.isEmpty {
            evicted = names.removeValue(forKey: order.removeFirst())?.name
        }
        pending = (id, name)
        return .prepare(name: name, deallocating: evicted)
    }

    /// The answer to the last ``Plan/prepare`` began with all its CommandCompletes (`succeeded`),
    /// or with something else: an error, after which the read is prepared again next time.
    public mutating func prepareEnded(succeeded: Bool) {
        guard let p = pending else { return }
        pending = nil
        if succeeded {
            names[p.id] = (p.name, Self.executeHead(p.name))
            order.append(p.id)
        }
    }

    /// `EXECUTE name`, what every EXECUTE of statement `name` begins with.
    public static func executeHead(_ name: String) -> [UInt8] { Array("EXECUTE \(name)".utf8) }

    /// Read `id` must be prepared again: the server dropped it or will not run it as prepared.
    public mutating func discard(_ id: Int) {
        guard names.removeValue(forKey: id) != nil else { return }
        order.removeAll { $0 == id }
    }

    /// The session may have deallocated them (DISCARD ALL, DEALLOCATE ALL, or one of these names).
    public mutating func forgetAll() {
        names.removeAll()
        order.removeAll()
    }
}
