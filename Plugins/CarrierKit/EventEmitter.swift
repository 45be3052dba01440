import Synchronization
import TowerProto

/// Sends unsolicited events to the host and keeps each one until the host acknowledges it,
/// sending it again (same event id) every `redeliveryInterval` until then: delivery is at least
/// once, and the host deduplicates by carrier event id.
///
/// When the host's `max_unacked_events` limit is reached, `emit` waits for an Ack before sending
/// a new event.
public final class EventEmitter: Sendable {
    private struct Pending {
        var envelope: Carrier_Envelope
        var lastSent: ContinuousClock.Instant
    }

    private struct State {
        var nextID: UInt64 = 1
        var unacked: [UInt64: Pending] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
        var maxUnacked: Int
    }

    private let state: Mutex<State>
    private let output: StandardStreams
    let redeliveryInterval: Duration

    init(output: StandardStreams, maxUnacked: Int, redeliveryInterval: Duration) {
        self.output = output
        self.redeliveryInterval = redeliveryInterval
        self.state = Mutex(State(maxUnacked: maxUnacked))
    }

    /// Events sent and not yet acknowledged.
    public var unackedCount: Int { state.withLock { $0.unacked.count } }

    /// Emits an event for `connectionID`.
    public func emit(connectionID: String, _ kind: Carrier_Event.Kind) async {
        var event = Carrier_Event()
        event.connectionID = connectionID
        event.kind = kind
        await emit(event)
    }

    /// Emits an event; returns once it is written (not once it is acknowledged).
    public func emit(_ event: Carrier_Event) async {
        while state.withLock({ $0.maxUnacked > 0 && $0.unacked.count >= $0.maxUnacked }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                state.withLock { state in
                    if state.maxUnacked > 0 && state.unacked.count >= state.maxUnacked {
                        state.waiters.append(continuation)
                    } else {
                        continuation.resume()
                    }
                }
            }
        }
        let envelope = state.withLock { state in
            var envelope = Carrier_Envelope()
            envelope.id = state.nextID
            state.nextID += 1
            envelope.payload = .event(event)
            state.unacked[envelope.id] = Pending(envelope: envelope, lastSent: .now)
            return envelope
        }
        output.write(envelope)
    }

    func acknowledge(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.unacked.removeValue(forKey: id) != nil, !state.waiters.isEmpty else { return nil }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }

    /// Sends again every event unacknowledged for longer than the redelivery interval.
    func redeliverOverdue() {
        let now = ContinuousClock.now
        let due = state.withLock { state -> [Carrier_Envelope] in
            var due: [Carrier_Envelope] = []
            for (id, pending) in state.unacked where now - pending.lastSent >= redeliveryInterval {
                state.unacked[id]?.lastSent = now
                due.append(pending.envelope)
            }
            return due.sorted { $0.id < $1.id }
        }
        for envelope in due { output.write(envelope) }
    }
}
