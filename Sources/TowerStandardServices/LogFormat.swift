import Logging
import Synchronization
import TowerProtoRuntime

#if canImport(Glibc)
    import Glibc
#endif

/// How executables print logs: human-readable lines for a terminal, or one JSON object per line
/// for log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    /// Installs the process-wide log handler at `level`, writing to stderr.
    public func bootstrap(level: Logger.Level) {
        let format = self
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
    }
}

/// A swift-log handler writing one line per event to stderr, as text or JSON.
struct StderrLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    private static let lock = Mutex(())

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let time = Self.timestamp()
        let line: String
        switch format {
        case .text:
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(time) \(event.level) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)\n"
        case .json:
            var out = "{\"time\":\"\(time)\",\"level\":\"\(event.level)\",\"logger\":"
            Self.appendJSONString(label, to: &out)
            out += ",\"message\":"
            Self.appendJSONString("\(event.message)", to: &out)
            for (key, value) in all.sorted(by: { $0.key < $1.key }) {
                out += ","
                Self.appendJSONString(key, to: &out)
                out += ":"
                Self.appendJSONString("\(value)", to: &out)
            }
            line = out + "}\n"
        }
        let bytes = Array(line.utf8)
        Self.lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &tm)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return
            "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    static func appendJSONString(_ s: String, to out: inout String) {
        out += JSONValue.string(s).serialized()
    }
}
