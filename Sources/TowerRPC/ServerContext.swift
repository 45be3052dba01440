import Logging
import Synchronization

/// What a handler knows about its call, and where it adds response metadata.
///
/// Thread-safe: handlers may touch it from any task.
public final class ServerContext: Sendable {
    /// Metadata the client sent, without transport headers (`:path`, `content-type`, `grpc-*`, ...).
    public let requestMetadata: Metadata
    /// When the client stops waiting (`grpc-timeout`); nil when it sent none.
    public let deadline: ContinuousClock.Instant?
    /// The remote address, e.g. `127.0.0.1:52114`, or `in-process`.
    public let peer: String
    public let method: MethodDescriptor
    /// The compression the client accepts for responses (from `grpc-accept-encoding`).
    let acceptedCompression: [CompressionAlgorithm]
    private let connectionID: UInt64
    private let streamID: Int32
    private let baseLogger: Logger

    private struct State {
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
        var cancelled = false
        var deadlineExceeded = false
        var responseCompression: CompressionAlgorithm?
        var lastRequestCompressed = false
    }
    private let state = Mutex(State())

    init(
        method: MethodDescriptor, requestMetadata: Metadata, deadline: ContinuousClock.Instant?, peer: String,
        acceptedCompression: [CompressionAlgorithm], connectionID: UInt64, streamID: Int32, logger: Logger
    ) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
        self.acceptedCompression = acceptedCompression
        self.connectionID = connectionID
        self.streamID = streamID
        self.baseLogger = logger
    }

    /// The client's `x-request-id` if it sent one, else an id unique within this process
    /// (connection and stream number).
    public var requestID: String {
        if let given = requestMetadata.firstString("x-request-id"), !given.isEmpty, given.utf8.count <= 128 {
            return given
        }
        return "\(connectionID)-\(streamID)"
    }

    /// The server's logger with `rpc.method` and `rpc.request_id` attached.
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "rpc.method"] = "\(method.path)"
        logger[metadataKey: "rpc.request_id"] = "\(requestID)"
        return logger
    }

    /// Replaces the response headers' metadata. Takes effect if called before the first response
    /// message is written.
    public func setInitialMetadata(_ metadata: Metadata) {
        state.withLock { $0.initialMetadata = metadata }
    }

    public func addInitialMetadata(_ key: String, _ value: Metadata.Value) {
        state.withLock { $0.initialMetadata.add(key, value) }
    }

    public func addInitialMetadata(_ metadata: Metadata) {
        state.withLock { $0.initialMetadata.add(contentsOf: metadata) }
    }

    /// Adds to the trailers sent with the final status.
    public func addTrailingMetadata(_ metadata: Metadata) {
        state.withLock { $0.trailingMetadata.add(contentsOf: metadata) }
    }

    public func addTrailingMetadata(_ key: String, _ value: Metadata.Value) {
        state.withLock { $0.trailingMetadata.add(key, value) }
    }

    /// True once the client cancelled, the deadline passed or the connection went away.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Compress response messages with this algorithm if the client accepts it. Set before the
    /// first response message.
    public var responseCompression: CompressionAlgorithm? {
        get { state.withLock { $0.responseCompression } }
        set { state.withLock { $0.responseCompression = newValue } }
    }

    /// Whether the most recently received request message arrived compressed.
    public var lastRequestWasCompressed: Bool { state.withLock { $0.lastRequestCompressed } }

    // MARK: - Transport side

    var initialMetadata: Metadata { state.withLock { $0.initialMetadata } }
    var trailingMetadata: Metadata { state.withLock { $0.trailingMetadata } }
    var deadlineExceeded: Bool { state.withLock { $0.deadlineExceeded } }

    /// The compression actually used for responses: requested by the handler and accepted by the client.
    var negotiatedResponseCompression: CompressionAlgorithm? {
        guard let wanted = responseCompression, wanted != .identity, acceptedCompression.contains(wanted) else {
            return nil
        }
        return wanted
    }

    func markCancelled(deadlineExceeded: Bool = false) {
        state.withLock {
            $0.cancelled = true
            if deadlineExceeded { $0.deadlineExceeded = true }
        }
    }

    func noteRequestCompressed(_ compressed: Bool) {
        state.withLock { $0.lastRequestCompressed = compressed }
    }
}
