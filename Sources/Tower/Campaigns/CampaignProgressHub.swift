import TowerStore

/// One LISTEN connection per server for every progress watcher: notifications on
/// `ctower_campaign_progress` (payload: a campaign id, sent by the `messages` trigger of
/// migration 0014 and by campaign state changes) wake the watchers of that campaign. A watcher's
/// wake-ups coalesce (it re-reads counts, it does not need each event); after the listener
/// reconnects, every watcher wakes, since notifications may have been missed. The connection (and
/// its polling thread) exists only while someone watches.
actor CampaignProgressHub {
    static let channel = "ctower_campaign_progress"

    private let store: Store
    private var listening: Task<NotificationListener, Error>?
    private var listener: NotificationListener?
    private var pump: Task<Void, Never>?
    private var watchers: [String: [Int: AsyncStream<Void>.Continuation]] = [:]
    private var nextID = 0

    init(store: Store) { self.store = store }

    deinit {
        listener?.stop()
        pump?.cancel()
    }

    /// Wake-ups for `campaignID`, from now on; call `unsubscribe` with the token when done.
    func subscribe(_ campaignID: String) async throws -> (token: Int, wakes: AsyncStream<Void>) {
        // Registered before the listener starts, so a concurrent last unsubscribe cannot stop the
        // listener this watcher is about to rely on.
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = nextID
        nextID += 1
        watchers[campaignID, default: [:]][token] = continuation
        do {
            try await startListening()
        } catch {
            unsubscribe(campaignID, token: token)
            throw error
        }
        return (token, stream)
    }

    func unsubscribe(_ campaignID: String, token: Int) {
        watchers[campaignID]?.removeValue(forKey: token)?.finish()
        if watchers[campaignID]?.isEmpty == true { watchers[campaignID] = nil }
        if watchers.isEmpty { stopListening() }
    }

    private func stopListening() {
        listener?.stop()
        pump?.cancel()
        (listener, pump, listening) = (nil, nil, nil)
    }

    private func startListening() async throws {
        if let listening {
            _ = try await listening.value
            return
        }
        let store = store
        let task = Task { try await store.listen(to: [Self.channel]) }
        listening = task
        let listener: NotificationListener
        do {
            listener = try await task.value
        } catch {
            listening = nil
            throw error
        }
        // Everyone may have left while the connection was being made.
        guard !watchers.isEmpty, listening == task else {
            listener.stop()
            return
        }
        self.listener = listener
        pump = Task { [weak self] in
            for await notification in listener {
                guard let self else { return }
                await self.deliver(notification)
            }
        }
    }

    private func deliver(_ notification: StoreNotification) {
        if notification.isReconnect {
            for group in watchers.values { for continuation in group.values { continuation.yield() } }
        } else if let group = watchers[notification.payload] {
            for continuation in group.values { continuation.yield() }
        }
    }
}
