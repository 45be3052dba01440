import NIOCore
import NIOPosix
import Synchronization

/// A client connection to a gRPC server over HTTP/2 (h2c with prior knowledge), on nghttp2.
///
/// Connects lazily on the first call and reconnects when the connection was closed or drained.
public final class HTTP2ClientChannel: RPCChannel {
    public struct Configuration: Sendable {
        /// nil uses NIO's shared `MultiThreadedEventLoopGroup.singleton`.
        public var eventLoopGroup: (any EventLoopGroup)?
        public var connectTimeout: Duration
        public var userAgent: String

        public init(eventLoopGroup: (any EventLoopGroup)? = nil, connectTimeout: Duration = .seconds(10), userAgent: String = "ctower-rpc/1") {
            self.eventLoopGroup = eventLoopGroup
            self.connectTimeout = connectTimeout
            self.userAgent = userAgent
        }
    }

    public let host: String
    public let port: Int
    public let configuration: Configuration

    private struct Connection {
        let channel: any Channel
        let handler: ClientConnectionHandler
    }
    private let current = Mutex<Connection?>(nil)
    private let closed = Atomic<Bool>(false)

    public init(host: String, port: Int, configuration: Configuration = Configuration()) {
        self.host = host
        self.port = port
        self.configuration = configuration
    }

    public func makeCall(_ method: MethodDescriptor, options: CallOptions) async throws(RPCError) -> ClientCall {
        let connection = try await connection()
        let handler = connection.handler
        // Received DATA goes back to the flow-control window once the reader has caught up.
        let streamBox = WeakStreamBox()
        let loop = connection.channel.eventLoop
        let response = ClientResponseState(maxReceiveMessageSize: options.maxReceiveMessageSize) {
            loop.execute {
                guard let stream = streamBox.stream else { return }
                stream.connection.replenishWindow(streamID: stream.id)
            }
        }
        let stream = HTTP2ClientStream(
            connection: handler, loop: connection.channel.eventLoop, response: response, compression: options.compression)
        streamBox.stream = stream
        let openResult: Result<Void, RPCError>
        do {
            openResult = try await connection.channel.eventLoop.submit { () -> Result<Void, RPCError> in
                if let error = handler.open(stream, method: method, options: options) { return .failure(error) }
                return .success(())
            }.get()
        } catch {
            throw RPCError(code: .unavailable, message: "The connection is gone.", cause: error)
        }
        try openResult.get()
        return ClientCall(method: method, transport: stream, response: response, maxSendMessageSize: options.maxSendMessageSize)
    }

    private func connection() async throws(RPCError) -> Connection {
        if closed.load(ordering: .relaxed) { throw RPCError(.unavailable, "The channel is closed.") }
        if let existing = current.withLock({ $0 }), existing.handler.acceptsNewCalls, existing.channel.isActive {
            return existing
        }
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let authority = "\(host):\(port)"
        let userAgent = configuration.userAgent
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.init(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(authority: authority, userAgent: userAgent))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw RPCError(code: .unavailable, message: "Could not connect to \(authority).", cause: error)
        }
        let handler: ClientConnectionHandler
        do {
            handler = try await channel.pipeline.handler(type: ClientConnectionHandler.self).get()
        } catch {
            throw RPCError(code: .unavailable, message: "Could not set up the connection.", cause: error)
        }
        let connection = Connection(channel: channel, handler: handler)
        // Another task may have connected meanwhile; either connection works.
        current.withLock { $0 = connection }
        return connection
    }

    /// Closes the connection; in-flight calls fail with UNAVAILABLE.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        let connection = current.withLock { value -> Connection? in
            defer { value = nil }
            return value
        }
        try? await connection?.channel.close()
    }
}

/// Lets the response queue reach its stream without a retain cycle. Only touched on the event loop
/// (set before the stream opens).
private final class WeakStreamBox: @unchecked Sendable {
    weak var stream: HTTP2ClientStream?
}
