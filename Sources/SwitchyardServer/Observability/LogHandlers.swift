// Structured log output for swift-log: one line per event, logfmt-style text or JSON.
import Foundation
import Logging
import Synchronization

/// Writes each log event as a single line to standard error. JSON lines suit log
/// shippers; the text form is `key=value` pairs that people and grep both read.
public struct StructuredLogHandler: LogHandler {
    public enum Format: Sendable { case text, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let format: Format
    private static let lock = Mutex<Void>(())

    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        let line: String
        switch format {
        case .json:
            var object: [String: String] = ["ts": time, "level": event.level.rawValue, "msg": event.message.description, "logger": label]
            for (k, v) in all { object[k] = "\(v)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        case .text:
            var parts = ["ts=\(time)", "level=\(event.level.rawValue)", "msg=\(Self.quote(event.message.description))"]
            for k in all.keys.sorted() { parts.append("\(k)=\(Self.quote("\(all[k]!)"))") }
            line = parts.joined(separator: " ")
        }
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty && !s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) { return s }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
