import Synchronization

/// Slows password guessing: after `maxFailures` failed sign-ins for one email or from one address
/// within `window`, further attempts are refused until the window passes. In memory, per server
/// process: with several servers, each enforces its own budget.
public final class LoginThrottle: Sendable {
    public let maxFailures: Int
    public let window: Duration
    private let failures = Mutex<[String: [ContinuousClock.Instant]]>([:])

    public init(maxFailures: Int = 5, window: Duration = .seconds(15 * 60)) {
        self.maxFailures = maxFailures
        self.window = window
    }

    /// Seconds until another attempt is allowed for any of `keys`, or nil when allowed now.
    public func retryAfter(_ keys: [String], now: ContinuousClock.Instant = .now) -> Int? {
        failures.withLock { all in
            var wait: Duration = .zero
            for key in keys {
                let recent = (all[key] ?? []).filter { $0.duration(to: now) < window }
                all[key] = recent
                if recent.count >= maxFailures, let oldest = recent.first {
                    wait = max(wait, window - oldest.duration(to: now))
                }
            }
            return wait == .zero ? nil : max(1, Int(wait.components.seconds) + 1)
        }
    }

    public func recordFailure(_ keys: [String], now: ContinuousClock.Instant = .now) {
        failures.withLock { all in for key in keys { all[key, default: []].append(now) } }
    }

    public func recordSuccess(_ keys: [String]) {
        failures.withLock { all in for key in keys { all[key] = nil } }
    }
}
