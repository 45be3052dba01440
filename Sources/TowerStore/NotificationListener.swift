import Foundation
import Logging
import Synchronization

/// A notification received on a LISTENed channel.
public struct StoreNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process that sent it; 0 for a `reconnected` marker.
    public var backendPID: Int32
    /// True for the marker the listener emits after it lost its connection and LISTENed again:
    /// notifications sent in between were missed, so a consumer should re-read what it watches.
    public var isReconnect: Bool

    public init(channel: String, payload: String, backendPID: Int32, isReconnect: Bool = false) {
        self.channel = channel
        self.payload = payload
        self.backendPID = backendPID
        self.isReconnect = isReconnect
    }
}

/// LISTENs on a dedicated connection and its own thread, and yields notifications as an
/// `AsyncSequence`. When the connection drops it reconnects with backoff, LISTENs again and emits
/// one `isReconnect` marker per channel. Iterate it from one task. `stop()`, releasing the
/// listener, or cancelling the iteration closes the connection and ends the sequence.
public final class NotificationListener: AsyncSequence, Sendable {
    public typealias Element = StoreNotification

    private let stream: AsyncStream<StoreNotification>
    private let state: PollState
    public let channels: [String]

    /// What the poll thread shares with the listener. The thread holds only this, so dropping the
    /// listener stops the thread.
    private final class PollState: Sendable {
        let stopped = Mutex(false)
        let continuation: AsyncStream<StoreNotification>.Continuation
        init(continuation: AsyncStream<StoreNotification>.Continuation) { self.continuation = continuation }
        var isStopped: Bool { stopped.withLock { $0 } }
        func stop() { stopped.withLock { $0 = true } }
    }

    private init(channels: [String]) {
        self.channels = channels
        let (stream, continuation) = AsyncStream.makeStream(
            of: StoreNotification.self, bufferingPolicy: .bufferingNewest(65_536))
        self.stream = stream
        self.state = PollState(continuation: continuation)
    }

    deinit {
        state.stop()
    }

    static func start(
        conninfo: String, options: PGConnection.Options, channels: [String], logger: Logger
    ) async throws -> NotificationListener {
        let listener = NotificationListener(channels: channels)
        // Connect once up front so a bad URL or a down server is reported to the caller.
        let worker = BlockingWorker(name: "ctower-pg-listen-setup")
        defer { worker.stop() }
        let connection = try await worker.run {
            try Self.connectAndListen(conninfo: conninfo, options: options, channels: channels)
        }
        let state = listener.state
        state.continuation.onTermination = { [weak state] _ in state?.stop() }
        let thread = Thread { [state] in
            Self.pollLoop(
                state: state, first: connection, conninfo: conninfo, options: options, channels: channels, logger: logger)
        }
        thread.name = "ctower-pg-listen"
        thread.start()
        return listener
    }

    public func makeAsyncIterator() -> AsyncStream<StoreNotification>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Stops listening and ends the sequence.
    public func stop() {
        state.stop()
    }

    private static func connectAndListen(
        conninfo: String, options: PGConnection.Options, channels: [String]
    ) throws -> PGConnection {
        var options = options
        options.statementCacheCapacity = 0
        let connection = try PGConnection.connect(conninfo: conninfo, options: options)
        for channel in channels {
            try connection.simpleQuery("LISTEN \(SQL.quoteIdentifier(channel))")
        }
        return connection
    }

    private static func pollLoop(
        state: PollState, first: PGConnection, conninfo: String, options: PGConnection.Options, channels: [String],
        logger: Logger
    ) {
        let continuation = state.continuation
        var connection: PGConnection? = first
        var backoff = 0.05
        while !state.isStopped {
            guard let current = connection else {
                do {
                    connection = try Self.connectAndListen(conninfo: conninfo, options: options, channels: channels)
                    backoff = 0.05
                    logger.info("LISTEN connection re-established", metadata: ["channels": "\(channels)"])
                    for channel in channels {
                        continuation.yield(StoreNotification(channel: channel, payload: "", backendPID: 0, isReconnect: true))
                    }
                } catch {
                    Thread.sleep(forTimeInterval: backoff)
                    backoff = Swift.min(backoff * 2, 2)
                }
                continue
            }
            var descriptor = pollfd(fd: current.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready < 0 && errno != EINTR {
                connection = nil
                continue
            }
            if ready > 0 || current.isBroken {
                do {
                    for notification in try current.drainNotifications() { continuation.yield(notification) }
                } catch {
                    logger.warning("LISTEN connection lost; reconnecting")
                    connection = nil
                }
            }
        }
        connection = nil
        continuation.finish()
    }
}
