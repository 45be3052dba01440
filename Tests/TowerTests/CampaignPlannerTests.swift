import Foundation
import Testing

@testable import Tower

/// The campaign planner's pure logic: recipient location, send times, rotation, rendering.
@Suite("Campaign message planning (pure)")
struct CampaignPlannerTests {
    static let areaCodes: [String: RecipientLocation.AreaCode] = [
        "305": .init(region: "FL", zones: ["America/New_York"]),
        "850": .init(region: "FL", zones: ["America/Chicago", "America/New_York"]),
        "512": .init(region: "TX", zones: ["America/Chicago"]),
        "915": .init(region: "TX", zones: ["America/Denver"]),
        "405": .init(region: "OK", zones: ["America/Chicago"]),
    ]
    static let stateWindows: QuietHours.StateWindows = [
        "FL": .init(start: 480, end: 1200), "OK": .init(start: 480, end: 1200), "MD": .init(start: 480, end: 1200),
    ]

    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    static func planner(
        start: Date, variants: [String] = ["Hi {first_name|there}, {brand} here. Reply STOP to opt out."],
        orgZone: String = "America/New_York", recipientClock: Bool = false
    ) throws -> CampaignMessagePlanner {
        CampaignMessagePlanner(
            variants: try variants.enumerated().map { .init(id: "v\($0.offset)", text: try TemplateText(parsing: $0.element)) },
            start: start, recipientClock: recipientClock, orgZone: TimeZone(identifier: orgZone)!, orgWindow: .federal,
            stateWindows: stateWindows, areaCodes: areaCodes, brand: "Sunbelt Land")
    }

    static func recipient(
        _ lead: String = "l1", phone: String, state: String? = nil, county: String? = nil, mailing: String? = nil, first: String? = nil
    ) -> CampaignMessagePlanner.Recipient {
        .init(
            leadID: lead, leadPhoneID: "p-" + lead, phone: phone, firstName: first, county: county, propertyState: state,
            mailingState: mailing)
    }

    static func message(_ outcome: CampaignMessagePlanner.Outcome) -> CampaignMessagePlanner.Message? {
        if case .queue(let m) = outcome { return m }
        return nil
    }

    @Test func locationJoinsAddressCountyAndAreaCode() {
        // Travis County is Central; the El Paso cell phone adds Mountain.
        let elPaso = RecipientLocation.of(
            propertyState: "TX", county: "Travis", mailingState: nil, phone: "+19155550100", areaCodes: Self.areaCodes)
        #expect(elPaso.states == ["TX"])
        #expect(elPaso.zones == ["America/Chicago", "America/Denver"])
        // A panhandle county is Central even though Florida's main zone is Eastern.
        let panhandle = RecipientLocation.of(
            propertyState: "FL", county: "Santa Rosa County", mailingState: nil, phone: "+13055550100", areaCodes: Self.areaCodes)
        #expect(panhandle.zones == ["America/Chicago", "America/New_York"])
        #expect(QuietHours.zones(forState: "FL", county: "MIAMI-DADE") == ["America/New_York"])
        #expect(QuietHours.zones(forState: "TX", county: "el paso county") == ["America/Denver"])
        // No county in a split state: every zone it spans.
        #expect(QuietHours.zones(forState: "TX", county: nil) == ["America/Chicago", "America/Denver"])
        // Kentucky's county list is not complete: an unlisted county keeps both zones.
        #expect(QuietHours.zones(forState: "KY", county: "Pike") == ["America/New_York", "America/Chicago"])
        #expect(QuietHours.zones(forState: "IN", county: "LaPorte") == ["America/Chicago"])
        // An Oklahoma area code puts a Texas lead under Oklahoma's rule too.
        let okPhone = RecipientLocation.of(
            propertyState: "TX", county: "Travis", mailingState: "MD", phone: "+14055550100", areaCodes: Self.areaCodes)
        #expect(okPhone.states == ["MD", "OK", "TX"])
        #expect(QuietHours.window(org: .federal, states: okPhone.states, stateWindows: Self.stateWindows) == .init(start: 480, end: 1200))
        #expect(RecipientLocation.areaCode(of: "+4930123456") == nil)
        #expect(RecipientLocation.of(propertyState: "zz", county: nil, mailingState: "", phone: "+15005550006", areaCodes: [:]).zones == [])
    }

    @Test func floridaEveningWaitsForEightNextMorning() throws {
        // 20:30 in Miami (EST, UTC-5): Florida's window closed at 20:00.
        var planner = try Self.planner(start: Self.utc("2030-01-16T01:30:00Z"))
        let m = try #require(Self.message(planner.plan(Self.recipient(phone: "+13055550100", state: "FL", county: "Miami-Dade"))))
        #expect(m.sendAfter == Self.utc("2030-01-16T13:00:00Z"))
        #expect(m.delayedByQuietHours)
        #expect(m.location.states == ["FL"])
    }

    @Test func elPasoPhoneOnTexasLeadWaitsForBothZones() throws {
        // 07:30 Central: Central opens at 08:00 (14:00Z), Mountain at 08:00 MST (15:00Z).
        var planner = try Self.planner(start: Self.utc("2030-01-15T13:30:00Z"))
        let m = try #require(
            Self.message(planner.plan(Self.recipient(phone: "+19155550100", state: "TX", county: "Travis"))))
        #expect(m.sendAfter == Self.utc("2030-01-15T15:00:00Z"))
        // In the evening the Central end (21:00 CST = 03:00Z) closes first: 20:30 CST is fine
        // for Mountain (19:30) and for Central.
        var evening = try Self.planner(start: Self.utc("2030-01-16T02:30:00Z"))
        let e = try #require(Self.message(evening.plan(Self.recipient(phone: "+19155550100", state: "TX", county: "Travis"))))
        #expect(e.sendAfter == Self.utc("2030-01-16T02:30:00Z"))
        #expect(!e.delayedByQuietHours)
    }

    @Test func unknownLocationUsesTheOrgZone() throws {
        // 06:00 in Los Angeles; nothing known about the recipient (non-geographic 500 number).
        var planner = try Self.planner(start: Self.utc("2030-01-15T14:00:00Z"), orgZone: "America/Los_Angeles")
        let m = try #require(Self.message(planner.plan(Self.recipient(phone: "+15005550006"))))
        #expect(m.location.zones.isEmpty)
        #expect(m.sendAfter == Self.utc("2030-01-15T16:00:00Z"))
    }

    @Test func recipientClockAppliesTheWallClockInEachZone() throws {
        // 10:00 New York time on Jan 15, read in the recipient's zone: 10:00 Central = 16:00Z.
        var planner = try Self.planner(start: Self.utc("2030-01-15T15:00:00Z"), recipientClock: true)
        let m = try #require(Self.message(planner.plan(Self.recipient(phone: "+15125550100", state: "TX", county: "Travis"))))
        #expect(m.sendAfter == Self.utc("2030-01-15T16:00:00Z"))
        #expect(!m.delayedByQuietHours)
    }

    @Test func rotationIsEvenAndDeterministic() throws {
        let variants = ["A {first_name}", "B {first_name}", "C {first_name}", "D {first_name}"]
        var first = try Self.planner(start: Self.utc("2030-01-15T16:00:00Z"), variants: variants)
        var second = try Self.planner(start: Self.utc("2030-01-15T16:00:00Z"), variants: variants)
        var picks: [Int] = []
        for i in 0..<1001 {
            let r = Self.recipient("l\(i)", phone: "+15125550100", state: "TX", county: "Travis", first: "Ana")
            let a = try #require(Self.message(first.plan(r)))
            let b = try #require(Self.message(second.plan(r)))
            #expect(a.variantIndex == b.variantIndex)
            picks.append(a.variantIndex)
        }
        #expect(first.usage.max()! - first.usage.min()! <= 1)
        #expect(first.usage.reduce(0, +) == 1001)
        #expect(Array(picks.prefix(5)) == [0, 1, 2, 3, 0])
        // A lead that already had variants 0 and 1 gets the least-used of the others.
        var r = Self.recipient("again", phone: "+15125550100")
        r.alreadySent = [0, 1]
        let m = try #require(Self.message(first.plan(r)))
        #expect(m.variantIndex == 2 || m.variantIndex == 3)
        r.alreadySent = [0, 1, 2, 3]
        guard case .skip(let reason) = first.plan(r) else { Issue.record("expected a skip"); return }
        #expect(reason == "no_unused_variant")
    }

    @Test func bodiesRenderWithFallbacksAndCountSegments() throws {
        var planner = try Self.planner(
            start: Self.utc("2030-01-15T16:00:00Z"),
            variants: ["Hola {first_name|amigo}, ¿vende su terreno en {county|su condado}? {brand}. Responda ALTO para salir."])
        let m = try #require(Self.message(planner.plan(Self.recipient(phone: "+15125550100", state: "TX", county: "Travis"))))
        #expect(m.body == "Hola amigo, ¿vende su terreno en Travis? Sunbelt Land. Responda ALTO para salir.")
        #expect(m.encoding == "gsm7")
        #expect(m.segments == 1)
        var accented = try Self.planner(start: Self.utc("2030-01-15T16:00:00Z"), variants: ["Está {first_name}"])
        let u = try #require(Self.message(accented.plan(Self.recipient(phone: "+15125550100", first: "Ana"))))
        #expect(u.encoding == "ucs2")
        var long = try Self.planner(start: Self.utc("2030-01-15T16:00:00Z"), variants: [String(repeating: "ó", count: 1600)])
        guard case .skip(let reason) = long.plan(Self.recipient(phone: "+15125550100")) else { Issue.record("expected a skip"); return }
        #expect(reason == "message_too_long")
    }

    @Test func copyTimestampsArePostgresUTC() {
        #expect(Self.utc("2030-01-16T13:00:00Z").postgresUTC == "2030-01-16 13:00:00.000000+00")
        #expect(Date(timeIntervalSince1970: 951_782_400.25).postgresUTC == "2000-02-29 00:00:00.250000+00")
        #expect(CampaignMessagePlanner.acreage("40.0000") == "40")
        #expect(CampaignMessagePlanner.acreage("12.5000") == "12.5")
    }
}
