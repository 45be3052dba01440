import Foundation

/// The clock quiet hours are judged by. In production it is the real clock (`.real`).
/// `ctower demo` run while the United States sleeps sets a shift, so its mock campaign can be
/// watched now instead of at 08:00: windows are computed at `real time + shift` and the answers
/// moved back by the same amount. Only where the windows fall moves; rates, daily caps, the
/// 24-hour state caps and every duration stay on the real clock. Never shifted in `ctower serve`.
public struct ComplianceClock: Sendable, Hashable {
    /// Seconds added to the real time to get the time quiet hours are judged at.
    public var shift: TimeInterval

    public static let real = ComplianceClock(shift: 0)

    public init(shift: TimeInterval) { self.shift = shift }

    /// A shift that puts `date` at `hour:minute` local time in `zone` on the same local day.
    public static func at(hour: Int, minute: Int = 0, in zone: TimeZone, from date: Date = Date()) -> ComplianceClock {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var parts = calendar.dateComponents([.year, .month, .day], from: date)
        parts.hour = hour
        parts.minute = minute
        let target = calendar.date(from: parts) ?? date
        return ComplianceClock(shift: target.timeIntervalSince(date))
    }

    /// The earliest real instant at or after `date` that `window` allows in every zone the
    /// recipient may be in (IANA names), judged on this clock. No known zone, or zones whose
    /// windows never overlap: the org's zone, the conservative default. nil when the window is
    /// empty (an org window and a state window that do not meet).
    public func sendTime(after date: Date, zones: [String], window: QuietHours.Window, orgZone: TimeZone) -> Date? {
        let local = date.addingTimeInterval(shift)
        let known = zones.compactMap(TimeZone.init(identifier:))
        let answer =
            (known.isEmpty ? nil : QuietHours.nextAllowedSendTime(after: local, in: known, window: window))
            ?? QuietHours.nextAllowedSendTime(after: local, in: [orgZone], window: window)
        return answer?.addingTimeInterval(-shift)
    }
}
