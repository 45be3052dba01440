/// Twilio's RFC 2822 dates (`Wed, 18 Aug 2010 20:01:40 +0000`) and the civil-date arithmetic
/// behind them, without Foundation.
enum TwilioDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Seconds since the Unix epoch, or nil when the text is not an RFC 2822 date.
    static func parse(_ text: String) -> Int64? {
        var parts = text.split(separator: " ").map(String.init)
        if let first = parts.first, first.hasSuffix(",") { parts.removeFirst() }
        guard parts.count >= 4, let day = Int64(parts[0]), let monthIndex = months.firstIndex(of: parts[1].lowercased()),
            let year = Int64(parts[2])
        else { return nil }
        let clock = parts[3].split(separator: ":").compactMap { Int64($0) }
        guard clock.count >= 2 else { return nil }
        var seconds =
            daysFromCivil(year: year, month: Int64(monthIndex + 1), day: day) * 86_400
            + clock[0] * 3600 + clock[1] * 60 + (clock.count > 2 ? clock[2] : 0)
        if parts.count > 4, let zone = Int64(parts[4].dropFirst()), parts[4].count == 5 {
            let offset = (zone / 100) * 3600 + (zone % 100) * 60
            seconds += parts[4].hasPrefix("-") ? offset : -offset
        }
        return seconds
    }

    /// `YYYY-MM-DD` (UTC) of the epoch second.
    static func isoDay(_ epochSeconds: Int64) -> String {
        let (year, month, day) = civilFromDays(floorDivide(epochSeconds, 86_400))
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `Wed, 18 Aug 2010 20:01:40 +0000` for the epoch second (used by tests and the fake API).
    static func format(_ epochSeconds: Int64) -> String {
        let days = floorDivide(epochSeconds, 86_400)
        let (year, month, day) = civilFromDays(days)
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][Int(((days % 7) + 7) % 7)]
        let second = epochSeconds - days * 86_400
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let monthName = months[Int(month - 1)].prefix(1).uppercased() + months[Int(month - 1)].dropFirst()
        return "\(weekday), \(two(day)) \(monthName) \(year) \(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60)) +0000"
    }
}
