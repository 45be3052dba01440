import Logging
import NIOCore

extension RPCServer {
    public struct Configuration: Sendable {
        /// Address to listen on. Port 0 picks a free port (see `start()`'s result).
        public var host: String
        public var port: Int
        public var limits: Limits
        public var keepalive: Keepalive
        /// Algorithms the server accepts and may use for responses (identity is always accepted).
        public var compression: [CompressionAlgorithm]
        /// Run around every call, outermost first.
        public var interceptors: [any RPCServerInterceptor]
        public var logger: Logger
        public var handlerExecution: HandlerExecution
        /// nil uses NIO's shared `MultiThreadedEventLoopGroup.singleton`.
        public var eventLoopGroup: (any EventLoopGroup)?
        /// Serve TLS (HTTP/2 and HTTP/1.1 alike) instead of cleartext.
        public var tls: TLSConfiguration?
        /// Plain HTTP/1.1 routes served on the same port (see `HTTPRoute`); `/healthz` is built in.
        public var httpRoutes: [HTTPRoute]

        public init(
            host: String = "127.0.0.1", port: Int = 7070, limits: Limits = Limits(), keepalive: Keepalive = Keepalive(),
            compression: [CompressionAlgorithm] = [.gzip], interceptors: [any RPCServerInterceptor] = [],
            logger: Logger = Logger(label: "ctower.rpc"), handlerExecution: HandlerExecution = .connectionEventLoop,
            eventLoopGroup: (any EventLoopGroup)? = nil, tls: TLSConfiguration? = nil, httpRoutes: [HTTPRoute] = []
        ) {
            self.host = host
            self.port = port
            self.limits = limits
            self.keepalive = keepalive
            self.compression = compression
            self.interceptors = interceptors
            self.logger = logger
            self.handlerExecution = handlerExecution
            self.eventLoopGroup = eventLoopGroup
            self.tls = tls
            self.httpRoutes = httpRoutes
        }
    }

    /// Server certificate and key, both PEM files. TLS 1.2 or newer; ALPN selects `h2` (or
    /// `http/1.1` for HTTP/1 clients); a client whose ALPN list has neither is refused with the
    /// `no_application_protocol` alert, and one without ALPN gets whatever its first bytes say.
    public struct TLSConfiguration: Sendable {
        /// The leaf certificate first, then intermediates.
        public var certificateChainPath: String
        /// Unencrypted PEM (PKCS#8 or traditional).
        public var privateKeyPath: String

        public init(certificateChainPath: String, privateKeyPath: String) {
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
        }
    }

    /// Where handler tasks run.
    public enum HandlerExecution: Sendable {
        /// On the event loop of the handler's connection: no thread hop per request. Handlers must
        /// not block (they are async code; blocking work belongs on its own threads).
        case connectionEventLoop
        /// On Swift's global concurrent executor.
        case globalExecutor
    }

    /// Resource and abuse limits.
    public struct Limits: Sendable {
        public var maxReceiveMessageSize = 4 * 1024 * 1024
        public var maxSendMessageSize = 4 * 1024 * 1024
        /// SETTINGS_MAX_CONCURRENT_STREAMS.
        public var maxConcurrentStreams: UInt32 = 256
        /// SETTINGS_MAX_HEADER_LIST_SIZE, also enforced on received headers.
        public var maxHeaderListSize = 16 * 1024
        /// SETTINGS_INITIAL_WINDOW_SIZE (per stream).
        public var streamWindowSize: UInt32 = 1024 * 1024
        /// The connection-level receive window (HTTP/2 starts at 64 KiB).
        public var connectionWindowSize: Int32 = 4 * 1024 * 1024
        /// Bytes of partially received messages a connection may hold before the offending call
        /// fails with RESOURCE_EXHAUSTED.
        public var maxBufferedBytesPerConnection = 64 * 1024 * 1024
        /// A streaming writer waits when this many response bytes are queued on its stream.
        public var maxBufferedBytesPerStream = 64 * 1024
        /// Largest HTTP/1.1 request body (Content-Length or chunked) a route receives; larger is 413.
        public var maxHTTPRequestBodySize = 1024 * 1024
        /// Close connections that have not completed TLS and sent their first request by then.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Gracefully close connections without calls for this long (nil: never).
        public var idleTimeout: Duration? = .seconds(30 * 60)
        /// Rapid Reset mitigation: token bucket for received RST_STREAM frames.
        public var streamResetBurst: UInt64 = 1000
        public var streamResetRatePerSecond: UInt64 = 33

        public init() {}
    }

    /// How often clients may ping (gRFC A8 server enforcement).
    public struct Keepalive: Sendable {
        /// Minimum interval between client pings while calls are active.
        public var minPingInterval: Duration = .seconds(300)
        /// Whether pings without active calls are held to `minPingInterval` (else two hours).
        public var permitWithoutCalls = false
        /// Pings arriving too soon beyond this count end the connection with
        /// GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings").
        public var maxPingStrikes = 2

        public init() {}
    }
}
