import Synchronization
import TowerProto

/// Delivers plugin events to `CarrierHost.events`, dropping any whose carrier event id was seen
/// recently (plugins deliver at least once, and a restarted plugin or a webhook retry may repeat
/// an event). Runs on the I/O thread that decoded the event, so it is a lock, not an actor.
final class EventRouter: Sendable {
    private struct Seen {
        var ids: Set<String> = []
        var order: [String] = []
        var head = 0
    }

    private let seen = Mutex(Seen())
    private let capacity: Int
    private let continuation: AsyncStream<CarrierEvent>.Continuation
    private let onThrottle: @Sendable (Carrier_Throttle, String) -> Void

    init(
        capacity: Int, continuation: AsyncStream<CarrierEvent>.Continuation,
        onThrottle: @escaping @Sendable (Carrier_Throttle, String) -> Void = { _, _ in }
    ) {
        self.capacity = max(1, capacity)
        self.continuation = continuation
        self.onThrottle = onThrottle
    }

    /// Yields the event unless it is a duplicate; returns whether it was new.
    @discardableResult
    func deliver(_ event: Carrier_Event) -> Bool {
        let kind: CarrierEvent.Kind
        switch event.kind {
        case .deliveryStatus(let status): kind = .deliveryStatus(status)
        case .inboundMessage(let message): kind = .inboundMessage(message)
        case .throttle(let throttle):
            onThrottle(throttle, event.connectionID)
            kind = .throttle(throttle)
        case nil: return false
        }
        let carrierEvent = CarrierEvent(connectionID: event.connectionID, kind: kind)
        if let id = carrierEvent.carrierEventID {
            let isNew = seen.withLock { seen -> Bool in
                // Scoped by connection: two tenants' carriers may reuse ids.
                let key = event.connectionID + "\u{1f}" + id
                guard seen.ids.insert(key).inserted else { return false }
                if seen.order.count < capacity {
                    seen.order.append(key)
                } else {
                    seen.ids.remove(seen.order[seen.head])
                    seen.order[seen.head] = key
                    seen.head = (seen.head + 1) % capacity
                }
                return true
            }
            guard isNew else { return false }
        }
        continuation.yield(carrierEvent)
        return true
    }

    func finish() { continuation.finish() }
}
