import NIOCore
import NIOPosix
import Synchronization

/// A client connection to a gRPC server over HTTP/2 on nghttp2: cleartext (h2c with prior
/// knowledge) or TLS with ALPN `h2`.
///
/// Connects lazily on the first call and reconnects when the connection was closed or drained.
public final class HTTP2ClientChannel: RPCChannel {
    public struct Configuration: Sendable {
        /// nil uses NIO's shared `MultiThreadedEventLoopGroup.singleton`.
        public var eventLoopGroup: (any EventLoopGroup)?
        public var connectTimeout: Duration
        public var userAgent: String
        /// nil: cleartext h2c.
        public var tls: TLSConfiguration?

        public init(
            eventLoopGroup: (any EventLoopGroup)? = nil, connectTimeout: Duration = .seconds(10), userAgent: String = "ctower-rpc/1",
            tls: TLSConfiguration? = nil
        ) {
            self.eventLoopGroup = eventLoopGroup
            self.connectTimeout = connectTimeout
            self.userAgent = userAgent
            self.tls = tls
        }
    }

    /// How the client authenticates the server. The certificate chain is always verified and the
    /// connection fails unless the server selects `h2` through ALPN.
    public struct TLSConfiguration: Sendable {
        /// A PEM bundle of trusted CA certificates; nil uses the system trust store.
        public var trustRootsPath: String?
        /// The name sent as SNI and checked against the certificate; nil uses the channel's host.
        public var serverName: String?
        /// Check the certificate's names against `serverName` (leave on outside tests).
        public var verifyHostname: Bool

        public init(trustRootsPath: String? = nil, serverName: String? = nil, verifyHostname: Bool = true) {
            self.trustRootsPath = trustRootsPath
            self.serverName = serverName
            self.verifyHostname = verifyHostname
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
    /// Built on first use; holds the configuration's error if it could not be.
    private let tlsContext = Mutex<Result<TLSContext, TLSError>?>(nil)

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
        let tls = try tlsContextIfConfigured()
        let handshake = Mutex<EventLoopFuture<String?>?>(nil)
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.init(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let session = try tls.makeSession()
                        let promise = channel.eventLoop.makePromise(of: String?.self)
                        handshake.withLock { $0 = promise.futureResult }
                        // Cannot fail: the pipeline is fresh; the handler now owns the promise.
                        try channel.pipeline.syncOperations.addHandler(
                            TLSHandler(session: session, isClient: true, handshakePromise: promise))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ClientConnectionHandler(authority: authority, userAgent: userAgent, scheme: tls == nil ? "http" : "https"))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw RPCError(code: .unavailable, message: "Could not connect to \(authority).", cause: error)
        }
        if let handshakeDone = handshake.withLock({ $0 }) {
            do {
                _ = try await handshakeDone.withTimeout(configuration.connectTimeout, on: channel.eventLoop).get()
            } catch {
                channel.close(promise: nil)
                let reason = (error as? TLSError)?.message ?? "\(error)"
                throw RPCError(code: .unavailable, message: "TLS with \(authority) failed: \(reason)", cause: error)
            }
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

    private func tlsContextIfConfigured() throws(RPCError) -> TLSContext? {
        guard let tls = configuration.tls else { return nil }
        let host = self.host
        let result = tlsContext.withLock { cached -> Result<TLSContext, TLSError> in
            if let cached { return cached }
            let made = Result { () throws(TLSError) -> TLSContext in
                try TLSContext.client(
                    trustRootsPath: tls.trustRootsPath, serverName: tls.serverName ?? host, verifyHostname: tls.verifyHostname)
            }
            cached = made
            return made
        }
        switch result {
        case .success(let context): return context
        case .failure(let error): throw RPCError(code: .failedPrecondition, message: error.message, cause: error)
        }
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

extension EventLoopFuture where Value: Sendable {
    /// Fails with `ChannelError.connectTimeout` unless the future completes within `timeout`.
    fileprivate func withTimeout(_ timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<Value> {
        let promise = loop.makePromise(of: Value.self)
        let timer = loop.scheduleTask(in: .init(timeout)) { promise.fail(ChannelError.connectTimeout(.init(timeout))) }
        self.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}
