import Foundation

/// Where a text's recipient may be: every state and IANA zone the lead's addresses and phone
/// point to. The location is uncertain in general (an Austin owner with an El Paso cell phone,
/// a Florida parcel owned from Maryland), so quiet hours and state rules apply in all of them.
public struct RecipientLocation: Sendable, Hashable {
    /// USPS state (or Canadian province) codes, sorted.
    public var states: [String]
    /// IANA zone identifiers, sorted; empty when nothing about the recipient is known.
    public var zones: [String]

    public init(states: [String], zones: [String]) {
        self.states = states
        self.zones = zones
    }

    /// What an area code says about its subscriber: the state or province it serves and every
    /// zone it spans (`area_codes`, migration 0014).
    public struct AreaCode: Sendable, Hashable {
        public var region: String
        public var zones: [String]

        public init(region: String, zones: [String]) {
            self.region = region
            self.zones = zones
        }
    }

    /// The recipient of a lead's phone.
    ///
    /// - States: the property state, the mailing state and the area code's state.
    /// - Zones: the property state's zones narrowed by its county when the county settles it
    ///   (`QuietHours.zones(forState:county:)`), every zone of the mailing state (its county is
    ///   not recorded), and every zone of the area code.
    public static func of(
        propertyState: String?, county: String?, mailingState: String?, phone: String, areaCodes: [String: AreaCode]
    ) -> RecipientLocation {
        var states = Set<String>()
        var zones = Set<String>()
        if let state = stateCode(propertyState) {
            states.insert(state)
            zones.formUnion(QuietHours.zones(forState: state, county: county) ?? [])
        }
        if let state = stateCode(mailingState) {
            states.insert(state)
            zones.formUnion(QuietHours.zones(forState: state) ?? [])
        }
        if let code = areaCode(of: phone), let entry = areaCodes[code] {
            states.insert(entry.region)
            zones.formUnion(entry.zones)
        }
        return RecipientLocation(states: states.sorted(), zones: zones.sorted())
    }

    /// The NANP area code of an E.164 number ("+15125550100" -> "512"); nil outside +1.
    public static func areaCode(of phone: String) -> String? {
        let digits = Array(phone.utf8)
        guard digits.count == 12, digits[0] == UInt8(ascii: "+"), digits[1] == UInt8(ascii: "1") else { return nil }
        return String(decoding: digits[2..<5], as: UTF8.self)
    }

    private static func stateCode(_ text: String?) -> String? {
        guard let text, text.utf8.count == 2 else { return nil }
        let code = text.uppercased()
        return code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") } ? code : nil
    }
}

extension QuietHours {
    /// A state's own window (from `state_messaging_rules`), e.g. Florida 08:00-20:00.
    public typealias StateWindows = [String: Window]

    /// The window that holds for a recipient: federal 08:00-21:00, narrowed by the org's own
    /// quiet hours and by the rule of every state the recipient may be in.
    public static func window(org: Window, states: [String], stateWindows: StateWindows) -> Window {
        var window = Window.federal.intersected(with: org)
        for state in states {
            if let rule = stateWindows[state] { window = window.intersected(with: rule) }
        }
        return window
    }

    /// A wall-clock start ("09:00 on June 3", read in `orgZone` from `instant`) applied in each of
    /// `zones`: the latest of those local instants, so no recipient zone gets it early.
    public static func localStart(of instant: Date, orgZone: TimeZone, in zones: [TimeZone]) -> Date {
        guard !zones.isEmpty else { return instant }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = orgZone
        let wallClock = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: instant)
        var latest = instant
        var first = true
        for zone in zones {
            calendar.timeZone = zone
            guard let local = calendar.date(from: wallClock) else { continue }
            if first || local > latest { latest = local }
            first = false
        }
        return latest
    }
}
