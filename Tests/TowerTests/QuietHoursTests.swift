import Foundation
import Testing

@testable import Tower

@Suite("Quiet hours")
struct QuietHoursTests {
    let chicago = TimeZone(identifier: "America/Chicago")!
    let denver = TimeZone(identifier: "America/Denver")!
    let newYork = TimeZone(identifier: "America/New_York")!

    func date(_ text: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: text)!
    }

    @Test func insideTheWindowSendsNow() {
        let t = date("2026-11-26T15:00:00Z")  // 09:00 Chicago
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [chicago], window: .federal) == t)
    }

    @Test func beforeEightWaitsForEightLocal() {
        let t = date("2026-11-26T12:00:00Z")  // 06:00 Chicago
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [chicago], window: .federal) == date("2026-11-26T14:00:00Z"))
    }

    @Test func afterNineWaitsForTomorrow() {
        let t = date("2026-11-27T03:30:00Z")  // 21:30 Chicago on the 26th
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [chicago], window: .federal) == date("2026-11-27T14:00:00Z"))
    }

    @Test func twoPossibleZonesMeanTheStricterReadingWins() {
        // 08:30 Chicago is 07:30 Denver: wait for 08:00 Denver.
        let t = date("2026-11-26T14:30:00Z")
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [chicago, denver], window: .federal) == date("2026-11-26T15:00:00Z"))
        // 20:30 Denver is 21:30 Chicago: too late in Chicago, so the next morning in Denver.
        let late = date("2026-11-27T03:30:00Z")
        #expect(QuietHours.nextAllowedSendTime(after: late, in: [chicago, denver], window: .federal) == date("2026-11-27T15:00:00Z"))
    }

    @Test func floridaWindowEndsAtEight() {
        let florida = QuietHours.Window.federal.intersected(with: QuietHours.Window(start: 8 * 60, end: 20 * 60))
        let t = date("2026-11-27T01:30:00Z")  // 20:30 New York
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [newYork], window: florida) == date("2026-11-27T13:00:00Z"))
    }

    @Test func windowsThatNeverOverlapGiveNoTime() {
        let narrow = QuietHours.Window(start: 8 * 60, end: 8 * 60 + 30)
        let honolulu = TimeZone(identifier: "Pacific/Honolulu")!
        #expect(QuietHours.nextAllowedSendTime(after: date("2026-11-26T12:00:00Z"), in: [newYork, honolulu], window: narrow) == nil)
    }

    @Test func daylightSavingIsHandledByTheZone() {
        // 2026-03-08: clocks go forward in the US. 06:00 EST the day before, 08:00 EDT that morning.
        let t = date("2026-03-08T10:00:00Z")  // 05:00 EST / 06:00 EDT after the change
        #expect(QuietHours.nextAllowedSendTime(after: t, in: [newYork], window: .federal) == date("2026-03-08T12:00:00Z"))
    }

    @Test func statesMapToEveryZoneTheySpan() {
        #expect(QuietHours.zones(forState: "tx") == ["America/Chicago", "America/Denver"])
        #expect(QuietHours.zones(forState: "CA") == ["America/Los_Angeles"])
        #expect(QuietHours.zones(forState: "ZZ") == nil)
        #expect(QuietHours.stateZones.count == 56)  // 50 states, DC, 5 territories
        for zones in QuietHours.stateZones.values {
            for zone in zones { #expect(TimeZone(identifier: zone) != nil, "\(zone) is not a known time zone") }
        }
    }
}
