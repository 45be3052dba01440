import Foundation

/// When a message may reach a recipient: inside a daily local-time window (federal 08:00-21:00;
/// Florida, Oklahoma and Maryland 08:00-20:00; an org may be stricter) in every time zone the
/// recipient might be in. A lead in Texas with an El Paso area code could be in Central or
/// Mountain time, so a send must fit the window in both: the stricter reading wins.
public enum QuietHours {
    /// Minutes after local midnight: a send is allowed at `start <= minute < end`.
    public struct Window: Sendable, Hashable {
        public var start: Int
        public var end: Int

        public static let federal = Window(start: 8 * 60, end: 21 * 60)

        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }

        /// The narrower of two windows (both must hold).
        public func intersected(with other: Window) -> Window {
            Window(start: max(start, other.start), end: min(end, other.end))
        }
    }

    /// The earliest instant at or after `date` that lies inside `window` in every zone of
    /// `zones`, or nil when the zones' windows never overlap (the caller then falls back to the
    /// org's conservative default zone).
    public static func nextAllowedSendTime(after date: Date, in zones: [TimeZone], window: Window) -> Date? {
        guard !zones.isEmpty, window.start < window.end else { return nil }
        var candidate = date
        // Each step moves to the latest "next window start" among zones that refuse the
        // candidate; a handful of steps settles any real combination of US zones.
        for _ in 0..<8 {
            var next = candidate
            var allAllow = true
            for zone in zones {
                let minute = minuteOfDay(candidate, in: zone)
                if minute >= window.start && minute < window.end { continue }
                allAllow = false
                let start = nextWindowStart(after: candidate, in: zone, window: window)
                if start > next { next = start }
            }
            if allAllow { return candidate }
            candidate = next
        }
        return nil
    }

    static func minuteOfDay(_ date: Date, in zone: TimeZone) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        return (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
    }

    /// The next local `window.start` strictly after `date` (today's if still ahead, else tomorrow's).
    static func nextWindowStart(after date: Date, in zone: TimeZone, window: Window) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let today = calendar.startOfDay(for: date)
        let hour = window.start / 60
        let minute = window.start % 60
        let todayStart = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: today) ?? today
        if todayStart > date { return todayStart }
        let tomorrow = calendar.date(byAdding: .day, value: 1, to: today) ?? today.addingTimeInterval(86_400)
        return calendar.date(bySettingHour: hour, minute: minute, second: 0, of: tomorrow) ?? tomorrow
    }

    /// The IANA zones a US state spans (all of them, so the caller can take the stricter reading
    /// when the county or area code does not settle it). nil for an unknown code.
    public static func zones(forState code: String) -> [String]? {
        stateZones[code.uppercased()]
    }

    static let stateZones: [String: [String]] = [
        "AL": ["America/Chicago"], "AK": ["America/Anchorage", "America/Adak"], "AZ": ["America/Phoenix"],
        "AR": ["America/Chicago"], "CA": ["America/Los_Angeles"], "CO": ["America/Denver"], "CT": ["America/New_York"],
        "DE": ["America/New_York"], "DC": ["America/New_York"], "FL": ["America/New_York", "America/Chicago"],
        "GA": ["America/New_York"], "HI": ["Pacific/Honolulu"], "ID": ["America/Boise", "America/Los_Angeles"],
        "IL": ["America/Chicago"], "IN": ["America/Indiana/Indianapolis", "America/Chicago"], "IA": ["America/Chicago"],
        "KS": ["America/Chicago", "America/Denver"], "KY": ["America/New_York", "America/Chicago"],
        "LA": ["America/Chicago"], "ME": ["America/New_York"], "MD": ["America/New_York"], "MA": ["America/New_York"],
        "MI": ["America/Detroit", "America/Menominee"], "MN": ["America/Chicago"], "MS": ["America/Chicago"],
        "MO": ["America/Chicago"], "MT": ["America/Denver"], "NE": ["America/Chicago", "America/Denver"],
        "NV": ["America/Los_Angeles"], "NH": ["America/New_York"], "NJ": ["America/New_York"], "NM": ["America/Denver"],
        "NY": ["America/New_York"], "NC": ["America/New_York"], "ND": ["America/Chicago", "America/Denver"],
        "OH": ["America/New_York"], "OK": ["America/Chicago"], "OR": ["America/Los_Angeles", "America/Boise"],
        "PA": ["America/New_York"], "RI": ["America/New_York"], "SC": ["America/New_York"],
        "SD": ["America/Chicago", "America/Denver"], "TN": ["America/Chicago", "America/New_York"],
        "TX": ["America/Chicago", "America/Denver"], "UT": ["America/Denver"], "VT": ["America/New_York"],
        "VA": ["America/New_York"], "WA": ["America/Los_Angeles"], "WV": ["America/New_York"], "WI": ["America/Chicago"],
        "WY": ["America/Denver"], "PR": ["America/Puerto_Rico"], "GU": ["Pacific/Guam"], "VI": ["America/St_Thomas"],
        "AS": ["Pacific/Pago_Pago"], "MP": ["Pacific/Saipan"],
    ]
}
