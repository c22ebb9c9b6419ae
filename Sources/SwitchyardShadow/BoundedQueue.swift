// A first-in, first-out queue of fixed capacity that refuses instead of growing.

/// A FIFO ring of at most `capacity` elements: `push` returns false when full, so a producer never
/// waits and memory never grows. Not thread-safe; the side-connection pool keeps it behind a lock.
public struct BoundedQueue<Element: Sendable>: Sendable {
    public let capacity: Int
    private var slots: [Element?]
    private var head = 0
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        slots = Array(repeating: nil, count: self.capacity)
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    /// Appends `element`; false (and nothing changes) when the queue is full.
    public mutating func push(_ element: Element) -> Bool {
        guard count < capacity else { return false }
        slots[(head + count) % capacity] = element
        count += 1
        return true
    }

    /// Removes and returns the oldest element.
    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let element = slots[head]
        slots[head] = nil
        head = (head + 1) % capacity
        count -= 1
        return element
    }

    /// Empties the queue, returning how many elements it held.
    @discardableResult
    public mutating func removeAll() -> Int {
        let removed = count
        while pop() != nil {}
        return removed
    }
}
