import Foundation
import Testing

@testable import Tower

/// The dispatcher's pure rules: the compliance gate's decisions and the sender planner.
struct DispatchLogicTests {
    static let now = Date(timeIntervalSince1970: 1_780_000_000)
    static let hour: TimeInterval = 3600

    func gate(requireConsent: Bool = false) -> ComplianceGate {
        ComplianceGate(requireConsent: requireConsent, orgWindow: .federal, orgZone: TimeZone(identifier: "America/New_York")!)
    }

    @Test func refusalsComeInOrderAndComplianceMessagesPass() {
        var g = gate(requireConsent: true)
        let noon = [DispatchFixture.zoneInsideWindow(now: Self.now)]
        var facts = GateFacts(optedOut: true, doNotCall: true, consented: false)
        #expect(g.decide(purpose: "campaign", zones: noon, facts: facts, earlierInBatch: 0, now: Self.now) == .skip(reason: "opted_out"))
        #expect(g.decide(purpose: "compliance", zones: noon, facts: facts, earlierInBatch: 0, now: Self.now) == .pass)
        facts.optedOut = false
        #expect(g.decide(purpose: "manual", zones: noon, facts: facts, earlierInBatch: 0, now: Self.now) == .skip(reason: "dnc"))
        facts.doNotCall = false
        #expect(g.decide(purpose: "campaign", zones: noon, facts: facts, earlierInBatch: 0, now: Self.now) == .skip(reason: "no_consent"))
        facts.consented = true
        #expect(g.decide(purpose: "campaign", zones: noon, facts: facts, earlierInBatch: 0, now: Self.now) == .pass)
        var lenient = gate(requireConsent: false)
        #expect(lenient.decide(purpose: "campaign", zones: noon, facts: GateFacts(), earlierInBatch: 0, now: Self.now) == .pass)
    }

    @Test func quietHoursDelayToTheWindowInEveryZone() throws {
        var g = gate()
        let night = DispatchFixture.zoneOutsideWindow(now: Self.now)
        let decision = g.decide(purpose: "campaign", zones: [night], facts: GateFacts(), earlierInBatch: 0, now: Self.now)
        guard case .delay(let until, let reason) = decision else {
            Issue.record("expected a delay, got \(decision)")
            return
        }
        #expect(reason == "quiet_hours")
        #expect(QuietHours.minuteOfDay(until, in: try #require(TimeZone(identifier: night))) == 8 * 60)
        // A state rule narrows the window: at 20:26 local a Florida recipient waits, others do not.
        let evening = DispatchFixture.zone(atLocalHour: 20, now: Self.now)
        let at2030 = Self.now
        var florida = GateFacts()
        florida.stateWindow = QuietHours.Window(start: 480, end: 1200)
        #expect(g.decide(purpose: "campaign", zones: [evening], facts: GateFacts(), earlierInBatch: 0, now: at2030) == .pass)
        if case .delay(_, "quiet_hours") = g.decide(purpose: "campaign", zones: [evening], facts: florida, earlierInBatch: 0, now: at2030) {
        } else {
            Issue.record("a Florida recipient at 20:26 local must wait for 08:00")
        }
    }

    @Test func stateCapDelaysUntilTheOldestSendAgesOut() {
        let recent = [Self.now - 1 * Self.hour, Self.now - 5 * Self.hour, Self.now - 20 * Self.hour]
        // Three in 24 h already: the next waits until the oldest (20 h ago) is 24 h old.
        #expect(
            ComplianceGate.stateCapFreesAt(cap: 3, recentNewestFirst: recent, earlierInBatch: 0, now: Self.now) == recent[2] + 24
                * Self.hour)
        // Two recent plus one earlier in this batch: the next waits for the older recent one.
        let two = Array(recent.prefix(2))
        #expect(ComplianceGate.stateCapFreesAt(cap: 3, recentNewestFirst: two, earlierInBatch: 0, now: Self.now) == nil)
        #expect(ComplianceGate.stateCapFreesAt(cap: 3, recentNewestFirst: two, earlierInBatch: 1, now: Self.now) == two[1] + 24 * Self.hour)
        // Sends older than 24 h do not count.
        #expect(
            ComplianceGate.stateCapFreesAt(cap: 3, recentNewestFirst: [Self.now - 25 * Self.hour], earlierInBatch: 2, now: Self.now) == nil)
    }

    func number(_ index: Int, mps: Double = 1, cap: Int = 100, used: Int = 0, slot: Date = .distantPast) -> SenderNumber {
        SenderNumber(
            id: UUID(uuidString: "00000000-0000-0000-0000-00000000000\(index)")!, phone: "+1512555000\(index)", connectionID: UUID(),
            messagesPerSecond: mps, dailyCap: cap, nextSlot: slot, usedToday: used)
    }

    @Test func plannerPacesEachNumberAndSpreadsTheLoad() {
        let a = number(1, mps: 2), b = number(2, mps: 2)
        var planner = SenderPlanner(numbers: [a, b], horizon: 1)
        var slots: [UUID: [Date]] = [:]
        var deferred: [Date] = []
        for _ in 0..<8 {
            switch planner.choose(
                preset: nil, pool: [a.id, b.id], sticky: nil, campaignMPS: nil, campaignDailyCap: nil, now: Self.now,
                nextDay: Self.now + 86_400)
            {
            case .assigned(let id, let slot): slots[id, default: []].append(slot)
            case .deferred(let until): deferred.append(until)
            case .skip(let reason): Issue.record("unexpected skip \(reason)")
            }
        }
        // 2 MPS within a 1 s horizon: slots at 0, 0.5 and 1.0 s on each number, the rest deferred.
        #expect(slots[a.id] == [Self.now, Self.now + 0.5, Self.now + 1])
        #expect(slots[b.id] == [Self.now, Self.now + 0.5, Self.now + 1])
        #expect(deferred == [Self.now + 1.5, Self.now + 1.5])
        #expect(planner.reservations == [a.id: 3, b.id: 3])
    }

    @Test func presetWinsThenStickyThenLeastLoadedAndCapsHold() {
        let a = number(1, used: 10), b = number(2, used: 0), full = number(3, cap: 5, used: 5)
        var planner = SenderPlanner(numbers: [a, b, full], horizon: 5)
        let pool = [a.id, b.id, full.id]
        func choose(preset: UUID? = nil, sticky: UUID? = nil, cap: Int? = nil) -> SenderChoice {
            planner.choose(
                preset: preset, pool: pool, sticky: sticky, campaignMPS: nil, campaignDailyCap: cap, now: Self.now,
                nextDay: Self.now + 86_400)
        }
        #expect(choose(preset: a.id) == .assigned(number: a.id, slot: Self.now))
        #expect(choose(sticky: a.id) == .assigned(number: a.id, slot: Self.now + 1))
        #expect(choose() == .assigned(number: b.id, slot: Self.now))
        // The full number is never chosen, even when sticky; a campaign cap below the counts defers.
        #expect(choose(sticky: full.id) == .assigned(number: b.id, slot: Self.now + 1))
        #expect(choose(cap: 2) == .deferred(until: Self.now + 86_400))
        #expect(choose(preset: UUID()) == .skip(reason: "sender_unavailable"))
        var empty = SenderPlanner(numbers: [], horizon: 1)
        #expect(
            empty.choose(preset: nil, pool: [], sticky: nil, campaignMPS: nil, campaignDailyCap: nil, now: Self.now, nextDay: Self.now)
                == .skip(reason: "no_sender"))
    }
}
