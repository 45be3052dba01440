import Synchronization
import TowerProto

/// Delivers plugin events to `CarrierHost.events`, dropping any whose carrier event id was seen
/// recently (plugins deliver at least once, and a restarted plugin or a webhook retry may repeat
/// an event). Runs on the I/O thread that decoded the event, so it is a lock, not an actor.
///
/// With `acknowledgeOnDelivery` off, the Ack is sent only when the consumer settles the event as
/// stored. A copy that arrives while the first is still being stored is dropped without an Ack
/// (the plugin sends it again); a copy of a stored event is acknowledged at once; a rejected
/// event is forgotten, so its next copy is delivered again.
final class EventRouter: Sendable {
    private struct Seen {
        /// false while the consumer has not settled it yet.
        var stored: [String: Bool] = [:]
        var order: [String] = []
        var head = 0
    }

    private let seen = Mutex(Seen())
    private let capacity: Int
    private let acknowledgeOnDelivery: Bool
    private let continuation: AsyncStream<CarrierEvent>.Continuation
    private let onThrottle: @Sendable (Carrier_Throttle, String) -> Void

    init(
        capacity: Int, acknowledgeOnDelivery: Bool = true, continuation: AsyncStream<CarrierEvent>.Continuation,
        onThrottle: @escaping @Sendable (Carrier_Throttle, String) -> Void = { _, _ in }
    ) {
        self.capacity = max(1, capacity)
        self.acknowledgeOnDelivery = acknowledgeOnDelivery
        self.continuation = continuation
        self.onThrottle = onThrottle
    }

    /// Yields the event unless it is a duplicate; `ack` sends the Ack frame. Returns whether the
    /// event was delivered.
    @discardableResult
    func deliver(_ event: Carrier_Event, ack: @escaping @Sendable () -> Void = {}) -> Bool {
        let kind: CarrierEvent.Kind
        switch event.kind {
        case .deliveryStatus(let status): kind = .deliveryStatus(status)
        case .inboundMessage(let message): kind = .inboundMessage(message)
        case .throttle(let throttle):
            onThrottle(throttle, event.connectionID)
            ack()
            continuation.yield(CarrierEvent(connectionID: event.connectionID, kind: .throttle(throttle)))
            return true
        case nil:
            ack()
            return false
        }
        var carrierEvent = CarrierEvent(connectionID: event.connectionID, kind: kind)
        guard let id = carrierEvent.carrierEventID else {
            // Nothing to deduplicate by: every copy goes through, settled on its own.
            if acknowledgeOnDelivery {
                ack()
            } else {
                carrierEvent.acknowledgement = EventAcknowledgement(onAcknowledge: ack, onReject: {})
            }
            continuation.yield(carrierEvent)
            return true
        }
        // Scoped by connection: two tenants' carriers may reuse ids.
        let key = event.connectionID + "\u{1f}" + id
        let earlier = seen.withLock { seen -> Bool? in
            if let stored = seen.stored[key] { return stored }
            seen.stored[key] = acknowledgeOnDelivery
            if seen.order.count < capacity {
                seen.order.append(key)
            } else {
                seen.stored[seen.order[seen.head]] = nil
                seen.order[seen.head] = key
                seen.head = (seen.head + 1) % capacity
            }
            return nil
        }
        switch earlier {
        case true?:
            ack()
            return false
        case false?:
            return false
        case nil:
            break
        }
        if acknowledgeOnDelivery {
            ack()
        } else {
            carrierEvent.acknowledgement = EventAcknowledgement(
                onAcknowledge: { [self] in
                    seen.withLock { if $0.stored[key] != nil { $0.stored[key] = true } }
                    ack()
                },
                onReject: { [self] in
                    seen.withLock { $0.stored[key] = nil }
                })
        }
        continuation.yield(carrierEvent)
        return true
    }

    func finish() { continuation.finish() }
}
