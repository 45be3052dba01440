/// Per-call settings on the client.
public struct CallOptions: Sendable {
    /// Sent as `grpc-timeout`; the call fails with DEADLINE_EXCEEDED and is reset when it passes.
    public var timeout: Duration?
    /// Request metadata.
    public var metadata: Metadata
    /// Compress request messages (sent as `grpc-encoding`).
    public var compression: CompressionAlgorithm?
    public var maxReceiveMessageSize: Int
    public var maxSendMessageSize: Int

    public init(
        timeout: Duration? = nil, metadata: Metadata = [:], compression: CompressionAlgorithm? = nil,
        maxReceiveMessageSize: Int = 4 * 1024 * 1024, maxSendMessageSize: Int = 4 * 1024 * 1024
    ) {
        self.timeout = timeout
        self.metadata = metadata
        self.compression = compression
        self.maxReceiveMessageSize = maxReceiveMessageSize
        self.maxSendMessageSize = maxSendMessageSize
    }

    public static let `default` = CallOptions()
}
