// Emptying the short lists a session and its router keep per statement.

extension Array {
    /// Empties the array and keeps its storage. The standard `removeAll(keepingCapacity: true)`
    /// goes through a general range replacement; the lists emptied after every statement hold
    /// one or two elements, and removing them from the end costs a fraction of that.
    @inlinable public mutating func removeAllKeepingStorage() {
        while !isEmpty { removeLast() }
    }
}
