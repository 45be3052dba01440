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

    /// The earliest real instant at or after `date` that the window allows in every zone, judged
    /// on this clock (see `QuietHours.nextAllowedSendTime`).
    public func nextAllowedSendTime(after date: Date, in zones: [TimeZone], window: QuietHours.Window) -> Date? {
        QuietHours.nextAllowedSendTime(after: date.addingTimeInterval(shift), in: zones, window: window)?.addingTimeInterval(-shift)
    }
}
