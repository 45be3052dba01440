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

    static let channel = "ctower_inbound"

    private let store: Store
    private let logger: Logger
    private var starting: Task<NotificationListener, any Error>?
    private var listener: NotificationListener?
    private var pump: Task<Void, Never>?
    private var subscribers: [String: [Int: AsyncStream<Signal>.Continuation]] = [:]
    private var nextID = 0
    private var stopped = false

    public init(store: Store, logger: Logger = Logger(label: "ctower.inbound")) {
        self.store = store
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
            let store = store
            task = Task { try await store.listen(to: [Self.channel]) }
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
            for continuation in subscribers.values.flatMap(\.values) { continuation.yield(.reconnected) }
            return
        }
        // "<org id> <message id>", written by ctower_notify_inbound().
        let parts = notification.payload.split(separator: " ")
        guard parts.count == 2, let subscriptions = subscribers[String(parts[0])] else { return }
        for continuation in subscriptions.values { continuation.yield(.message(id: String(parts[1]))) }
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
