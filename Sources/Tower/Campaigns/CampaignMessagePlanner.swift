import Foundation

/// Turns a started campaign's targets into outbound messages, one target at a time, without I/O:
/// where the recipient may be, when the message may go (quiet hours in every zone of the
/// recipient, the start time read in the org's or the recipient's clock), which variant (fair
/// rotation), and the rendered body with its encoding and segments.
struct CampaignMessagePlanner {
    struct Variant: Sendable {
        var id: String
        var text: TemplateText
    }

    /// One target with the lead fields templates and quiet hours need.
    struct Recipient: Sendable {
        var leadID: String
        var leadPhoneID: String
        var phone: String
        var firstName: String?
        var lastName: String?
        var ownerName: String?
        var county: String?
        var propertyState: String?
        var mailingState: String?
        var propertyAddress: String?
        var propertyCity: String?
        var mailingCity: String?
        var acreage: String?
        var apn: String?
        /// The lead's own IANA zone, when recorded.
        var timeZone: String?
        /// Variants (by index) this lead already got in the campaign.
        var alreadySent: Set<Int> = []
    }

    struct Message: Sendable {
        var variantIndex: Int
        var body: String
        var segments: Int
        var encoding: String
        var location: RecipientLocation
        var sendAfter: Date
        /// Quiet hours moved it past the scheduled start.
        var delayedByQuietHours: Bool
    }

    enum Outcome: Sendable {
        case queue(Message)
        case skip(reason: String)
    }

    let variants: [Variant]
    let start: Date
    let recipientClock: Bool
    let orgZone: TimeZone
    let orgWindow: QuietHours.Window
    let stateWindows: QuietHours.StateWindows
    let areaCodes: [String: RecipientLocation.AreaCode]
    let brand: String?
    /// Messages per variant so far in this campaign (fair rotation).
    private(set) var usage: [Int]
    /// The clock quiet hours are judged by.
    var clock = ComplianceClock.real
    private var sendTimes: [SendTimeKey: (Date, Bool)] = [:]
    private var locations: [LocationKey: RecipientLocation] = [:]

    private struct LocationKey: Hashable {
        var propertyState: String?
        var county: String?
        var mailingState: String?
        var areaCode: String?
        var timeZone: String?
    }

    private struct SendTimeKey: Hashable {
        var zones: [String]
        var window: QuietHours.Window
    }

    init(
        variants: [Variant], start: Date, recipientClock: Bool, orgZone: TimeZone, orgWindow: QuietHours.Window,
        stateWindows: QuietHours.StateWindows, areaCodes: [String: RecipientLocation.AreaCode], brand: String?, usage: [Int]? = nil
    ) {
        self.variants = variants
        self.start = start
        self.recipientClock = recipientClock
        self.orgZone = orgZone
        self.orgWindow = orgWindow
        self.stateWindows = stateWindows
        self.areaCodes = areaCodes
        self.brand = brand
        self.usage = usage ?? Array(repeating: 0, count: variants.count)
    }

    static let maxBodyLength = 1600
    static let maxSegments = 20

    mutating func plan(_ recipient: Recipient) -> Outcome {
        let location = location(of: recipient)
        guard let index = VariantRotation.next(usage: usage, alreadySent: recipient.alreadySent) else {
            return .skip(reason: "no_unused_variant")
        }
        let body = variants[index].text.render(values(recipient)).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !body.isEmpty else { return .skip(reason: "empty_message") }
        let encoding = MessageEncoding(body)
        guard body.count <= Self.maxBodyLength, encoding.segments <= Self.maxSegments else { return .skip(reason: "message_too_long") }
        usage[index] += 1
        let window = QuietHours.window(org: orgWindow, states: location.states, stateWindows: stateWindows)
        let (sendAfter, delayed) = sendTime(location: location, window: window)
        return .queue(
            Message(
                variantIndex: index, body: body, segments: encoding.segments, encoding: encoding.charset == .gsm7 ? "gsm7" : "ucs2",
                location: location, sendAfter: sendAfter, delayedByQuietHours: delayed))
    }

    /// Audiences cluster in a few states, counties and area codes: each combination is resolved once.
    private mutating func location(of r: Recipient) -> RecipientLocation {
        let key = LocationKey(
            propertyState: r.propertyState, county: r.county, mailingState: r.mailingState,
            areaCode: RecipientLocation.areaCode(of: r.phone), timeZone: r.timeZone)
        if let known = locations[key] { return known }
        var location = RecipientLocation.of(
            propertyState: r.propertyState, county: r.county, mailingState: r.mailingState, phone: r.phone, areaCodes: areaCodes)
        if let zone = r.timeZone, TimeZone(identifier: zone) != nil, !location.zones.contains(zone) {
            location.zones = (location.zones + [zone]).sorted()
        }
        locations[key] = location
        return location
    }

    /// Recipients share a handful of (zones, window) pairs, so each is computed once.
    private mutating func sendTime(location: RecipientLocation, window: QuietHours.Window) -> (Date, Bool) {
        let key = SendTimeKey(zones: location.zones, window: window)
        if let known = sendTimes[key] { return known }
        let zones = location.zones.compactMap(TimeZone.init(identifier:))
        let earliest = recipientClock ? QuietHours.localStart(of: start, orgZone: orgZone, in: zones.isEmpty ? [orgZone] : zones) : start
        let time = clock.sendTime(after: earliest, zones: location.zones, window: window, orgZone: orgZone) ?? earliest
        let result = (time, time > earliest)
        sendTimes[key] = result
        return result
    }

    func values(_ r: Recipient) -> [String: String] {
        var values: [String: String] = [:]
        values["first_name"] = r.firstName
        values["last_name"] = r.lastName
        let full = [r.firstName, r.lastName].compactMap { $0?.isEmpty == false ? $0 : nil }.joined(separator: " ")
        values["full_name"] = full.isEmpty ? r.ownerName : full
        values["brand"] = brand
        values["county"] = r.county
        values["state"] = r.propertyState
        values["property_address"] = r.propertyAddress
        values["property_city"] = r.propertyCity
        values["mailing_city"] = r.mailingCity
        values["acreage"] = r.acreage.map(Self.acreage)
        values["apn"] = r.apn
        return values
    }

    /// "12.5000" -> "12.5", "40.0000" -> "40".
    static func acreage(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var trimmed = text
        while trimmed.hasSuffix("0") { trimmed.removeLast() }
        if trimmed.hasSuffix(".") { trimmed.removeLast() }
        return trimmed
    }
}

extension Date {
    /// `2026-06-03 13:00:00.250000+00`: PostgreSQL's timestamptz input, for COPY rows.
    var postgresUTC: String {
        let micros = Int64((timeIntervalSince1970 * 1_000_000).rounded(.up))
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):"
            + "\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))+00"
    }
}
