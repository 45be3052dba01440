import Synchronization
import TowerProtoRuntime

/// Logging for plugins: one JSON object per line on stderr (`{"level":"info","msg":"…",…}`),
/// which the host parses and forwards into its own log tagged with the plugin's name.
///
/// Never log credentials: the host's log is read by operators of every tenant.
public struct PluginLog: Sendable {
    /// Severity, named like swift-log's levels so the host can map them one to one.
    public enum Level: String, Sendable, Comparable {
        case trace, debug, info, notice, warning, error, critical

        private var rank: Int {
            switch self {
            case .trace: 0
            case .debug: 1
            case .info: 2
            case .notice: 3
            case .warning: 4
            case .error: 5
            case .critical: 6
            }
        }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rank < rhs.rank }
    }

    /// The process-wide logger.
    public static let shared = PluginLog()

    private static let minimumLevel = Mutex<Level>(.info)
    private static let lock = Mutex<Void>(())

    /// Sets the lowest level that is written.
    public static func setMinimumLevel(_ level: Level) {
        minimumLevel.withLock { $0 = level }
    }

    public func log(_ level: Level, _ message: String, metadata: [String: String] = [:]) {
        guard level >= PluginLog.minimumLevel.withLock({ $0 }) else { return }
        var members: [(String, JSONValue)] = [("level", .string(level.rawValue)), ("msg", .string(message))]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            members.append((key, .string(value)))
        }
        let line = JSONValue.object(members).serialized() + "\n"
        PluginLog.lock.withLock { _ in StandardStreams.writeStderr(line) }
    }

    public func debug(_ message: String, metadata: [String: String] = [:]) { log(.debug, message, metadata: metadata) }
    public func info(_ message: String, metadata: [String: String] = [:]) { log(.info, message, metadata: metadata) }
    public func warning(_ message: String, metadata: [String: String] = [:]) { log(.warning, message, metadata: metadata) }
    public func error(_ message: String, metadata: [String: String] = [:]) { log(.error, message, metadata: metadata) }
    public func critical(_ message: String, metadata: [String: String] = [:]) { log(.critical, message, metadata: metadata) }
}
