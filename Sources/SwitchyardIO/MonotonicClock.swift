// Time sources, injected so the core can be tested with a fixed clock.
import Glibc

public protocol ClockSource: Sendable {
    /// Monotonic nanoseconds, for latencies and timeouts.
    func monotonicNanoseconds() -> UInt64
}

public struct SystemClock: ClockSource {
    public init() {}
    public func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
