// Remembers which queries disagree with themselves, so their later samples need no calibration run.

/// The fingerprints found nondeterministic, so later samples of them are noise without a second run.
/// Bounded: past `capacity` the fingerprint recorded first is forgotten (and found again by a later calibration).
public struct NoiseRegistry: Sendable, Equatable {
    public static let defaultCapacity = 10_000

    public let capacity: Int
    private var members: Set<String> = []
    /// Insertion order, as a ring: `order[next]` is the oldest once the ring is full.
    private var order: [String] = []
    private var next = 0

    public init(capacity: Int = NoiseRegistry.defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { members.count }

    public func isNondeterministic(_ fingerprint: String) -> Bool { members.contains(fingerprint) }

    /// Remembers `fingerprint` as nondeterministic; returns false when it already was.
    @discardableResult
    public mutating func markNondeterministic(_ fingerprint: String) -> Bool {
        guard !members.contains(fingerprint) else { return false }
        if order.count < capacity {
            order.append(fingerprint)
        } else {
            members.remove(order[next])
            order[next] = fingerprint
            next = (next + 1) % capacity
        }
        members.insert(fingerprint)
        return true
    }

    /// The fingerprints remembered, oldest first.
    public var fingerprints: [String] { Array(order[next...] + order[..<next]) }
}
