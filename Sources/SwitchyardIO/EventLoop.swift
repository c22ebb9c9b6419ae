// An epoll event loop on a thread of its own; handlers are called on that thread only.
import CShims
import Foundation
import Glibc
import Synchronization

/// Readiness a handler wants to hear about.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = Interest(rawValue: UInt32(SY_EPOLLIN))
    public static let writable = Interest(rawValue: UInt32(SY_EPOLLOUT))
    public static let none: Interest = []
}

/// Readiness reported for a file descriptor.
public struct Readiness: Sendable {
    public let rawValue: UInt32
    public var isReadable: Bool { rawValue & UInt32(SY_EPOLLIN) != 0 }
    public var isWritable: Bool { rawValue & UInt32(SY_EPOLLOUT) != 0 }
    /// Error or hang-up: the handler should try its read to learn what happened.
    public var isErrorOrHangup: Bool { rawValue & UInt32(SY_EPOLLERR | SY_EPOLLHUP) != 0 }
}

/// Something that owns file descriptors on a loop. Called on the loop's thread only.
public protocol EventHandler: AnyObject {
    func handle(fd: Int32, readiness: Readiness, loop: EventLoop)
}

/// Something that needs a periodic call on its loop (timeouts, shutdown checks).
public protocol TickHandler: AnyObject {
    func tick(now: UInt64, loop: EventLoop)
}

/// One epoll instance and the thread that waits on it. Handlers registered here are
/// confined to this loop's thread: every call into them happens on it, which is why
/// they need no locks. Other threads talk to the loop only through `execute`.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    public let clock: any ClockSource
    private let epfd: Int32
    private let wakeFD: Int32
    private let tasks = Mutex<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)

    // Loop-thread state.
    private struct Registration {
        var handler: any EventHandler
        var generation: UInt32
        var interest: Interest
    }
    /// Indexed by fd (small, reused numbers): found with no hashing on every event.
    private var registrations: [Registration?] = []
    private var nextGeneration: UInt32 = 1
    private var tickers: [ObjectIdentifier: any TickHandler] = [:]
    private var lastTick: UInt64 = 0
    /// Read buffer shared by every handler on this loop: reads are forwarded before the next one.
    public let scratch: UnsafeMutableRawBufferPointer

    public static let scratchSize = 256 * 1024
    static let tickIntervalNanos: UInt64 = 100_000_000

    public init(index: Int, clock: any ClockSource = SystemClock()) throws(SocketError) {
        self.index = index
        self.clock = clock
        epfd = sy_epoll_create()
        guard epfd >= 0 else { throw SocketError("epoll_create") }
        wakeFD = sy_eventfd()
        guard wakeFD >= 0 else { throw SocketError("eventfd") }
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.scratchSize, alignment: 16)
        // Bound to bytes once: handlers read a message in place as `UInt8`s as well as raw.
        _ = scratch.bindMemory(to: UInt8.self)
        guard sy_epoll_add(epfd, wakeFD, UInt32(SY_EPOLLIN), 0) == 0 else { throw SocketError("epoll_ctl wake") }
    }

    deinit {
        Glibc.close(epfd)
        Glibc.close(wakeFD)
        scratch.deallocate()
    }

    /// True on the loop's own thread.
    public var inLoop: Bool { threadID.load(ordering: .acquiring) == UInt(pthread_self()) }

    /// Runs `task` on the loop's thread, soon. Safe from any thread.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        let wasEmpty = tasks.withLock { list in
            list.append(task)
            return list.count == 1
        }
        if wasEmpty { _ = sy_eventfd_signal(wakeFD) }
    }

    // MARK: Registration (loop thread only)

    public func register(fd: Int32, interest: Interest, handler: any EventHandler) throws(SocketError) {
        let generation = nextGeneration
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        guard sy_epoll_add(epfd, fd, interest.rawValue | UInt32(SY_EPOLLRDHUP), token(fd, generation)) == 0 else {
            throw SocketError("epoll_ctl add")
        }
        if Int(fd) >= registrations.count {
            registrations.append(contentsOf: repeatElement(nil, count: max(Int(fd) + 1, registrations.count * 2) - registrations.count))
        }
        registrations[Int(fd)] = Registration(handler: handler, generation: generation, interest: interest)
    }

    private func registration(_ fd: Int32) -> Registration? {
        fd >= 0 && Int(fd) < registrations.count ? registrations[Int(fd)] : nil
    }

    public func setInterest(fd: Int32, _ interest: Interest) {
        guard var r = registration(fd), r.interest != interest else { return }
        r.interest = interest
        registrations[Int(fd)] = r
        _ = sy_epoll_mod(epfd, fd, interest.rawValue | UInt32(SY_EPOLLRDHUP), token(fd, r.generation))
    }

    /// Removes `fd` from the loop; the caller still owns and closes it.
    public func deregister(fd: Int32) {
        guard registration(fd) != nil else { return }
        registrations[Int(fd)] = nil
        _ = sy_epoll_del(epfd, fd)
    }

    public func addTicker(_ ticker: any TickHandler) { tickers[ObjectIdentifier(ticker)] = ticker }
    public func removeTicker(_ ticker: any TickHandler) { tickers.removeValue(forKey: ObjectIdentifier(ticker)) }

    private func token(_ fd: Int32, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    // MARK: Running

    /// Asks the loop to return from `run` after its current iteration.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        _ = sy_eventfd_signal(wakeFD)
    }

    /// The loop body; returns after `stop()`.
    public func run() {
        threadID.store(UInt(pthread_self()), ordering: .releasing)
        var events = [sy_event](repeating: sy_event(), count: 256)
        lastTick = clock.monotonicNanoseconds()
        while !stopRequested.load(ordering: .acquiring) {
            let n = events.withUnsafeMutableBufferPointer { sy_epoll_wait(epfd, $0.baseAddress, 256, 100) }
            if n > 0 {
                for i in 0..<Int(n) {
                    let ev = events[i]
                    if ev.token == 0 {
                        _ = sy_eventfd_drain(wakeFD)
                        continue
                    }
                    let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: ev.token))
                    let generation = UInt32(truncatingIfNeeded: ev.token >> 32)
                    // A handler earlier in this batch may have closed this fd (and another opened it).
                    guard let r = registration(fd), r.generation == generation else { continue }
                    r.handler.handle(fd: fd, readiness: Readiness(rawValue: ev.events), loop: self)
                }
            }
            runTasks()
            let now = clock.monotonicNanoseconds()
            if now &- lastTick >= Self.tickIntervalNanos {
                lastTick = now
                for t in Array(tickers.values) { t.tick(now: now, loop: self) }
            }
        }
        runTasks()
    }

    private func runTasks() {
        // Taken whole, leaving the empty array: clearing a list while `copy` shares its storage
        // would allocate a new one, on every pass through the loop.
        let pending = tasks.withLock { list -> [@Sendable () -> Void] in
            guard !list.isEmpty else { return [] }
            let copy = list
            list = []
            return copy
        }
        for task in pending { task() }
    }
}

/// A fixed set of event loops, one thread each, sized to the cores by default.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let next = Atomic<Int>(0)
    private let threads = Mutex<[Thread]>([])
    private let finished = Atomic<Int>(0)

    public init(count: Int, clock: any ClockSource = SystemClock()) throws(SocketError) {
        var loops: [EventLoop] = []
        for i in 0..<max(1, count) { loops.append(try EventLoop(index: i, clock: clock)) }
        self.loops = loops
    }

    public func start(name: String = "switchyard-loop") {
        threads.withLock { threads in
            for loop in loops {
                let t = Thread { [self] in
                    loop.run()
                    self.finished.add(1, ordering: .releasing)
                }
                t.name = "\(name)-\(loop.index)"
                t.stackSize = 1 << 20
                t.start()
                threads.append(t)
            }
        }
    }

    /// Round-robin choice of the loop for a new session.
    public func nextLoop() -> EventLoop {
        let i = next.add(1, ordering: .relaxed).newValue
        return loops[i % loops.count]
    }

    public func stop() {
        for l in loops { l.stop() }
    }

    /// Waits (bounded) for every loop thread to return from `run`.
    public func join(timeout: Duration = .seconds(5)) {
        let deadline = ContinuousClock.now + timeout
        while finished.load(ordering: .acquiring) < threads.withLock({ $0.count }) && ContinuousClock.now < deadline {
            usleep(5_000)
        }
    }
}
