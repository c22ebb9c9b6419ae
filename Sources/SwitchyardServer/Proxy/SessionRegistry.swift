// The live sessions, for the admin console, cancel routing and shutdown.
import Foundation
import Synchronization
import SwitchyardIO
import SwitchyardProtocol

/// What the console shows about one session. Loop-written fields are atomics so a
/// console on another thread can read them without stopping the loop.
public final class SessionInfo: Sendable {
    public let id: UInt64
    public let clientAddress: String
    public let connectedAt: Date
    public let loopIndex: Int
    let details = Mutex<Details>(Details())
    public let bytesIn = Atomic<UInt64>(0)
    public let bytesOut = Atomic<UInt64>(0)
    public let statements = Atomic<UInt64>(0)
    /// 0 startup, 1 idle, 2 active, 3 idle in transaction, 4 idle in failed transaction.
    public let state = Atomic<Int>(0)

    public struct Details: Sendable {
        public var user = ""
        public var database = ""
        public var applicationName = ""
        public var backendKey: BackendKey?
        public var upstream = ""
        public var upstreamAddress: SocketAddress?
        public var isAdminConsole = false
    }

    init(id: UInt64, clientAddress: String, loopIndex: Int) {
        self.id = id
        self.clientAddress = clientAddress
        self.connectedAt = Date()
        self.loopIndex = loopIndex
    }

    public var snapshotDetails: Details { details.withLock { $0 } }

    public var stateName: String {
        switch state.load(ordering: .relaxed) {
        case 1: "idle"
        case 2: "active"
        case 3: "idle in transaction"
        case 4: "idle in transaction (aborted)"
        default: "startup"
        }
    }
}

/// Something registered here can be asked, on its own loop, to stop.
protocol ShutdownTarget: AnyObject, Sendable {
    /// Close now if idle, or as soon as the current transaction ends.
    func closeWhenIdle()
    /// Close now, whatever is in flight.
    func forceClose(reason: String)
}

public final class SessionRegistry: Sendable {
    struct Entry: @unchecked Sendable {
        let info: SessionInfo
        let loop: EventLoop
        let target: any ShutdownTarget
    }
    private let entries = Mutex<[UInt64: Entry]>([:])
    private let byKey = Mutex<[BackendKey: UInt64]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init() {}

    func makeID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

    func add(_ info: SessionInfo, loop: EventLoop, target: any ShutdownTarget) {
        entries.withLock { $0[info.id] = Entry(info: info, loop: loop, target: target) }
    }

    func remove(_ id: UInt64, key: BackendKey?) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
        if let key { byKey.withLock { if $0[key] == id { $0.removeValue(forKey: key) } } }
    }

    func setBackendKey(_ key: BackendKey, for id: UInt64) {
        byKey.withLock { $0[key] = id }
    }

    /// The session a CancelRequest names, by the key the server gave it.
    func session(for key: BackendKey) -> SessionInfo? {
        guard let id = byKey.withLock({ $0[key] }) else { return nil }
        return entries.withLock { $0[id]?.info }
    }

    public var count: Int { entries.withLock { $0.count } }

    public func all() -> [SessionInfo] {
        entries.withLock { $0.values.map(\.info) }.sorted { $0.id < $1.id }
    }

    func allEntries() -> [Entry] { entries.withLock { Array($0.values) } }
}
