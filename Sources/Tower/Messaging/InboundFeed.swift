import Logging
import TowerStore

/// Live inbound messages for `MessageService.SubscribeInbound`: one LISTEN connection per server
/// on `ctower_inbound` (a trigger notifies on every inbound insert, at commit), fanned out to the
/// subscriptions of the org the notification names. Subscribers then read the message under
/// their own tenant, so even a wrong fan-out could not show another org's row.
public actor InboundFeed {
    /// What a subscription is told.
    enum Signal: Sendable, Hashable {
        /// A committed inbound message of the subscriber's org.
        case message(id: String)
        /// The LISTEN connection was lost and re-established: notifications may have been missed.
        case reconnected
    }

    /// Where the `messages_notify_inbound` trigger notifies.
    public static let defaultChannel = "ctower_inbound"

    private let store: Store
    private let channel: String
    private let logger: Logger
    private var starting: Task<NotificationListener, any Error>?
    private var listener: NotificationListener?
    private var pump: Task<Void, Never>?
    private var subscribers: [String: [Int: AsyncStream<Signal>.Continuation]] = [:]
    private var nextID = 0
    private var stopped = false

    /// `channel` is for tests that need a feed nobody notifies.
    public init(store: Store, channel: String = InboundFeed.defaultChannel, logger: Logger = Logger(label: "ctower.inbound")) {
        self.store = store
        self.channel = channel
        self.logger = logger
    }

    /// Registers a subscription for `org`; LISTEN is active when this returns, so every inbound
    /// message committed afterwards reaches the stream.
    func subscribe(org: String) async throws -> (id: Int, signals: AsyncStream<Signal>) {
        try await ensureListening()
        nextID += 1
        let id = nextID
        // Signals are tiny; a subscriber this far behind has a client that stopped reading.
        let (stream, continuation) = AsyncStream.makeStream(of: Signal.self, bufferingPolicy: .bufferingNewest(10_000))
        if stopped {
            continuation.finish()
        } else {
            subscribers[org, default: [:]][id] = continuation
        }
        return (id, stream)
    }

    func unsubscribe(org: String, id: Int) {
        subscribers[org]?.removeValue(forKey: id)?.finish()
        if subscribers[org]?.isEmpty == true { subscribers[org] = nil }
    }

    /// How many subscriptions are open (for tests and metrics).
    var subscriptionCount: Int { subscribers.values.reduce(0) { $0 + $1.count } }

    private func ensureListening() async throws {
        if listener != nil { return }
        let task: Task<NotificationListener, any Error>
        if let starting {
            task = starting
        } else {
            let (store, channel) = (store, channel)
            task = Task { try await store.listen(to: [channel]) }
            starting = task
        }
        let started: NotificationListener
        do {
            started = try await task.value
        } catch {
            starting = nil
            throw error
        }
        guard listener == nil else { return }
        listener = started
        pump = Task { [started] in
            for await notification in started { self.deliver(notification) }
        }
    }

    private func deliver(_ notification: StoreNotification) {
        if notification.isReconnect {
            announceReconnect()
            return
        }
        // "<org id> <message id>", written by ctower_notify_inbound().
        let parts = notification.payload.split(separator: " ")
        guard parts.count == 2, let subscriptions = subscribers[String(parts[0])] else { return }
        for continuation in subscriptions.values { continuation.yield(.message(id: String(parts[1]))) }
    }

    /// Tells every subscription that notifications may have been missed (the listener does this
    /// after it re-established a lost connection).
    func announceReconnect() {
        for continuation in subscribers.values.flatMap(\.values) { continuation.yield(.reconnected) }
    }

    /// Ends every subscription and closes the LISTEN connection.
    public func shutdown() async {
        stopped = true
        for continuation in subscribers.values.flatMap(\.values) { continuation.finish() }
        subscribers = [:]
        listener?.stop()
        listener = nil
        await pump?.value
        pump = nil
    }
}
