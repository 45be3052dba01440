import Synchronization
import TowerProto

/// Honours the plugin's Throttle events: per connection, sends are spaced to at most `max_mps`,
/// or paused (`max_mps` 0) until the throttle's duration ends or another Throttle lifts it.
final class SendPacer: Sendable {
    private struct Limit {
        var maxMPS: Double
        var until: ContinuousClock.Instant?
        var nextSlot: ContinuousClock.Instant
    }

    /// How long a paused sender waits before looking again (a pause may be lifted any time).
    static let pausePoll: Duration = .milliseconds(100)

    private let limits = Mutex<[String: Limit]>([:])

    func apply(_ throttle: Carrier_Throttle, connection: String, now: ContinuousClock.Instant = .now) {
        let until = throttle.duration.map { now + .seconds($0.seconds) + .nanoseconds(Int64($0.nanos)) }
        limits.withLock { all in
            if throttle.maxMps.isInfinite || throttle.maxMps < 0 {
                all[connection] = nil  // a plugin lifting its own limit
            } else {
                all[connection] = Limit(maxMPS: throttle.maxMps, until: until, nextSlot: now)
            }
        }
    }

    /// nil when a send may go now (and takes its slot); otherwise how long to wait before asking again.
    func delay(for connection: String, now: ContinuousClock.Instant = .now) -> Duration? {
        limits.withLock { all in
            guard var limit = all[connection] else { return nil }
            if let until = limit.until, now >= until {
                all[connection] = nil
                return nil
            }
            if limit.maxMPS <= 0 {
                let remaining = limit.until.map { now.duration(to: $0) } ?? Self.pausePoll
                return min(remaining, Self.pausePoll)
            }
            if now < limit.nextSlot { return now.duration(to: limit.nextSlot) }
            limit.nextSlot = now + .nanoseconds(Int64(1e9 / limit.maxMPS))
            all[connection] = limit
            return nil
        }
    }
}
