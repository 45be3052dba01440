import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A gRPC server over HTTP/2 on nghttp2, cleartext (h2c with prior knowledge) or TLS with ALPN.
/// The same port answers HTTP/1.1 (`/healthz` and `Configuration.httpRoutes`): the first bytes of
/// each connection choose the protocol.
///
/// ```swift
/// let server = RPCServer(configuration: .init(host: "127.0.0.1", port: 0), services: [EchoService()])
/// let address = try await server.start()
/// ...
/// await server.shutdown(gracePeriod: .seconds(10))
/// ```
public final class RPCServer: Sendable {
    public let configuration: Configuration
    private let shared: ServerShared

    private enum State {
        case idle
        case running(any Channel)
        case stopped
    }

    private typealias Connection = ServerConnectionEntry

    private let state = Mutex(State.idle)
    private let connections = Mutex([ObjectIdentifier: Connection]())
    private let stoppedEvent = AsyncEvent()

    public init(configuration: Configuration, services: [any RPCService]) {
        self.configuration = configuration
        self.shared = ServerShared(router: MethodRouter(services: services), configuration: configuration)
    }

    /// Binds and starts accepting connections. Returns the bound address (useful with port 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let shared = self.shared
        let tls: TLSContext?
        do throws(TLSError) {
            tls = try configuration.tls.map { tls throws(TLSError) in
                try TLSContext.server(
                    certificateChainPath: tls.certificateChainPath, privateKeyPath: tls.privateKeyPath, offerHTTP1: true)
            }
        } catch {
            throw RPCError(code: .failedPrecondition, message: error.message, cause: error)
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let entry = ServerConnectionEntry(channel: channel)
                    guard let self, self.register(entry) else {
                        channel.close(promise: nil)
                        return
                    }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(session: try tls.makeSession(), isClient: false))
                    }
                    try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(shared: shared, entry: entry))
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        let started = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(channel)
            return true
        }
        guard started else {
            try? await channel.close()
            throw RPCError(.failedPrecondition, "The server was already started.")
        }
        configuration.logger.info("RPC server listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return channel.localAddress!
    }

    private func register(_ entry: ServerConnectionEntry) -> Bool {
        let key = ObjectIdentifier(entry)
        let accepted = state.withLock { state -> Bool in
            if case .stopped = state { return false }
            return true
        }
        guard accepted else { return false }
        connections.withLock { $0[key] = entry }
        entry.channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.connections.withLock { $0.removeValue(forKey: key) }
        }
        return true
    }

    /// Stops accepting, tells every connection to drain (GOAWAY + PING, then the final GOAWAY),
    /// waits for in-flight calls up to `gracePeriod`, then closes what is left.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        let listener = state.withLock { state -> (any Channel)? in
            defer { state = .stopped }
            if case .running(let channel) = state { return channel }
            return nil
        }
        shared.beginDraining()
        try? await listener?.close()
        let open = connections.withLock { Array($0.values) }
        for connection in open {
            connection.channel.eventLoop.execute { connection.initiateGracefulShutdown() }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for connection in open { try? await connection.channel.closeFuture.get() }
            }
            group.addTask { try? await Task.sleep(for: gracePeriod) }
            await group.next()
            group.cancelAll()
        }
        let remaining = connections.withLock { Array($0.values) }
        for connection in remaining {
            connection.channel.eventLoop.execute { connection.forceClose() }
        }
        for connection in remaining { try? await connection.channel.closeFuture.get() }
        configuration.logger.info("RPC server stopped")
        stoppedEvent.signal()
    }

    /// Suspends until `shutdown` has finished.
    public func waitUntilStopped() async {
        await stoppedEvent.wait()
    }
}

/// A one-shot event many tasks can wait for.
final class AsyncEvent: Sendable {
    private struct State {
        var signalled = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.signalled = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.signalled { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
