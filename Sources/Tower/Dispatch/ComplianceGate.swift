import Foundation

/// The facts the gate needs about one claimed message, read in one set-based query per batch.
struct GateFacts: Sendable, Hashable {
    /// An active opt-out for the phone, anywhere in the org.
    var optedOut = false
    /// An unexpired do-not-call entry for the phone.
    var doNotCall = false
    /// The most recent consent record (or, without one, the lead phone's consent status) grants.
    var consented = false
    /// The strictest `max_messages_per_24h` among the recipient's possible states, if any.
    var capPer24Hours: Int?
    /// The narrowest state window among the recipient's possible states, if any rule applies.
    var stateWindow: QuietHours.Window?
    /// Outbound messages to the phone in the last 24 hours (sent, sending or claimed elsewhere),
    /// newest first. Read only when a cap applies.
    var recentSends: [Date] = []
}

/// What the gate decided for one message.
enum GateDecision: Sendable, Hashable {
    case pass
    /// Refused for good: the message becomes `skipped` with this reason.
    case skip(reason: String)
    /// Not now: the message goes back to the queue with `send_after = until`.
    case delay(until: Date, reason: String)
}

/// The compliance gate at claim time: opt-out, do-not-call, consent (when the org requires it),
/// quiet hours in every zone the recipient may be in, and the state caps (Florida, Oklahoma,
/// Maryland: at most 3 messages per 24 hours). `purpose == "compliance"` messages (STOP
/// confirmations, HELP replies) are never gated. Pure logic: the caller reads the facts.
struct ComplianceGate: Sendable {
    var requireConsent: Bool
    /// The org's own window (already inside the federal one).
    var orgWindow: QuietHours.Window
    /// Where a recipient with no known zone is assumed to be.
    var orgZone: TimeZone
    /// The clock quiet hours are judged by (real, except in `ctower demo`).
    var clock = ComplianceClock.real

    /// Quiet-hours answers for this batch, keyed by zones and window: most messages share them.
    private var cache: [QuietHoursKey: Date] = [:]

    private struct QuietHoursKey: Hashable {
        var zones: [String]
        var window: QuietHours.Window
    }

    init(requireConsent: Bool, orgWindow: QuietHours.Window, orgZone: TimeZone) {
        self.requireConsent = requireConsent
        self.orgWindow = orgWindow
        self.orgZone = orgZone
    }

    /// Decides for one message at `now`. `earlierInBatch` counts messages to the same phone that
    /// already passed earlier in this batch (they count against the state cap too).
    mutating func decide(purpose: String, zones: [String], facts: GateFacts, earlierInBatch: Int, now: Date) -> GateDecision {
        if purpose == "compliance" { return .pass }
        if facts.optedOut { return .skip(reason: "opted_out") }
        if facts.doNotCall { return .skip(reason: "dnc") }
        if requireConsent && !facts.consented { return .skip(reason: "no_consent") }
        var window = QuietHours.Window.federal.intersected(with: orgWindow)
        if let stateWindow = facts.stateWindow { window = window.intersected(with: stateWindow) }
        let allowedAt = nextAllowedTime(zones: zones, window: window, now: now)
        if allowedAt > now { return .delay(until: allowedAt, reason: "quiet_hours") }
        if let cap = facts.capPer24Hours,
            let freeAt = Self.stateCapFreesAt(cap: cap, recentNewestFirst: facts.recentSends, earlierInBatch: earlierInBatch, now: now)
        {
            return .delay(until: freeAt, reason: "state_cap")
        }
        return .pass
    }

    private mutating func nextAllowedTime(zones: [String], window: QuietHours.Window, now: Date) -> Date {
        let key = QuietHoursKey(zones: zones, window: window)
        if let cached = cache[key] { return cached }
        // An empty window never opens: look again in an hour (the message is never sent early).
        let answer = clock.sendTime(after: now, zones: zones, window: window, orgZone: orgZone) ?? now.addingTimeInterval(3600)
        cache[key] = answer
        return answer
    }

    /// nil when one more message now stays within `cap` per rolling 24 hours; otherwise when
    /// enough of the recent messages have aged out of the window.
    static func stateCapFreesAt(cap: Int, recentNewestFirst recent: [Date], earlierInBatch: Int, now: Date) -> Date? {
        let day: TimeInterval = 86_400
        let inWindow = recent.filter { now.timeIntervalSince($0) < day }
        if inWindow.count + earlierInBatch < cap { return nil }
        // After this message, at most cap - 1 - earlierInBatch of the recent ones may remain.
        let mustAgeOut = cap - 1 - earlierInBatch
        guard mustAgeOut >= 0, mustAgeOut < inWindow.count else { return now.addingTimeInterval(day) }
        return inWindow[mustAgeOut].addingTimeInterval(day)
    }
}
