/// A token bucket: `rate` tokens per second, holding at most `burst`.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    init(rate: Double, burst: Double, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now
    }

    /// Takes one token, or returns how long until one is available.
    mutating func take(now: ContinuousClock.Instant = .now) -> Duration? {
        let elapsed = now - updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * rate)
        updated = now
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return .milliseconds(Int64(((1 - tokens) / rate * 1000).rounded(.up)))
    }
}
