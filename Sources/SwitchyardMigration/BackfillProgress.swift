// Where a backfill stands: counts, rate and ETA, rendered as a terminal progress bar or as log fields.

/// A snapshot of a backfill's progress. Counts are totals since the backfill began (earlier runs that were
/// resumed included); the rate is this run's.
public struct BackfillProgress: Sendable, Equatable {
    public var rowsRead: Int
    public var rowsInserted: Int
    public var batches: Int
    /// Rows read by this run, over `elapsed`.
    public var rowsThisRun: Int
    public var elapsed: Duration
    /// The old relation's estimated row count (pg_class.reltuples, or count(*) when never analyzed).
    public var estimatedTotal: Int?
    public var batchSize: Int

    public init(
        rowsRead: Int, rowsInserted: Int, batches: Int, rowsThisRun: Int, elapsed: Duration, estimatedTotal: Int?,
        batchSize: Int
    ) {
        self.rowsRead = rowsRead
        self.rowsInserted = rowsInserted
        self.batches = batches
        self.rowsThisRun = rowsThisRun
        self.elapsed = elapsed
        self.estimatedTotal = estimatedTotal
        self.batchSize = batchSize
    }

    /// Rows read by this run per second.
    public var rowsPerSecond: Double {
        let seconds = elapsed / .seconds(1)
        return seconds > 0 ? Double(rowsThisRun) / seconds : 0
    }

    /// The share done, 0...1; nil without an estimate. An estimate can be stale, so this stops short of 1.
    public var fraction: Double? {
        guard let estimatedTotal, estimatedTotal > 0 else { return nil }
        return min(Double(rowsRead) / Double(estimatedTotal), 0.99)
    }

    /// The time left at this run's rate; nil without an estimate or a rate yet.
    public var eta: Duration? {
        guard let estimatedTotal, rowsPerSecond > 0 else { return nil }
        return .seconds(Double(max(estimatedTotal - rowsRead, 0)) / rowsPerSecond)
    }

    /// One terminal line: `[#######-----------------]  30%  3,000/~10,000 rows  2,410 rows/s  ETA 0:03`.
    public func bar(width: Int = 24) -> String {
        var line = ""
        if let fraction {
            let filled = Int((fraction * Double(width)).rounded(.down))
            line += "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            line += pad(String(Int((fraction * 100).rounded(.down))) + "%", to: 4) + "  "
        }
        line += Self.grouped(rowsRead)
        if let estimatedTotal { line += "/~" + Self.grouped(estimatedTotal) }
        line += " rows  " + Self.grouped(Int(rowsPerSecond.rounded())) + " rows/s"
        line += "  ETA " + (eta.map(Self.clock) ?? "?")
        return line
    }

    /// 1234567 -> "1,234,567".
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// 75 s -> "1:15", 3725 s -> "1:02:05".
    public static func clock(_ duration: Duration) -> String {
        let total = max(0, Int((duration / .seconds(1)).rounded(.up)))
        let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60)
        let twoDigits = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(twoDigits(minutes)):\(twoDigits(seconds))" : "\(minutes):\(twoDigits(seconds))"
    }

    private func pad(_ text: String, to width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
