import TowerStore

/// One LISTEN connection per server for every progress watcher: notifications on
/// `ctower_campaign_progress` (payload: a campaign id, sent by the `messages` trigger of
/// migration 0014 and by campaign state changes) wake the watchers of that campaign. A watcher's
/// wake-ups coalesce (it re-reads counts, it does not need each event); after the listener
/// reconnects, every watcher wakes, since notifications may have been missed.
actor CampaignProgressHub {
    static let channel = "ctower_campaign_progress"

    private let store: Store
    private var listening: Task<NotificationListener, Error>?
    private var pump: Task<Void, Never>?
    private var watchers: [String: [Int: AsyncStream<Void>.Continuation]] = [:]
    private var nextID = 0

    init(store: Store) { self.store = store }

    deinit {
        pump?.cancel()
    }

    /// Wake-ups for `campaignID`, from now on; call `unsubscribe` with the token when done.
    func subscribe(_ campaignID: String) async throws -> (token: Int, wakes: AsyncStream<Void>) {
        try await startListening()
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = nextID
        nextID += 1
        watchers[campaignID, default: [:]][token] = continuation
        return (token, stream)
    }

    func unsubscribe(_ campaignID: String, token: Int) {
        watchers[campaignID]?.removeValue(forKey: token)?.finish()
        if watchers[campaignID]?.isEmpty == true { watchers[campaignID] = nil }
        // The last watcher gone: give the LISTEN connection back (and nothing is left listening
        // when the server stops its database).
        if watchers.isEmpty, let listening {
            self.listening = nil
            pump?.cancel()
            pump = nil
            Task { (try? await listening.value)?.stop() }
        }
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
