import Foundation
import Testing
import TowerProto
import TowerStore

@testable import Tower

/// The warming ramp: 50 messages on a warming number's first UTC day, doubling daily up to its
/// daily cap. Dates are set explicitly (the ramp's start and "today"), so nothing depends on
/// when the test runs.
@Suite("Warming ramp", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct WarmingRampTests {
    /// The schedule as the database computes it, at fixed dates.
    @Test func theScheduleDoublesFromFiftyUpToTheCap() async throws {
        let env = try await IdentityEnvironment.get()
        let rows = try await env.store.withTransaction(tenant: nil, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT d::int8 AS day,
                       ctower_effective_daily_cap('warming', 1000, DATE '2026-03-01', DATE '2026-03-01' + d)::int8 AS warming,
                       ctower_effective_daily_cap('active', 1000, DATE '2026-03-01', DATE '2026-03-01' + d)::int8 AS active,
                       ctower_effective_daily_cap('warming', 30, DATE '2026-03-01', DATE '2026-03-01' + d)::int8 AS small
                FROM generate_series(-1, 6) d ORDER BY d
                """)
        }
        let warming = try rows.map { try $0.decode("warming", as: Int64.self) }
        #expect(warming == [50, 50, 100, 200, 400, 800, 1000, 1000])  // day -1 (clock behind the start) counts as day 0
        #expect(try rows.allSatisfy { try $0.decode("active", as: Int64.self) == 1000 })
        #expect(try rows.allSatisfy { try $0.decode("small", as: Int64.self) == 30 })
    }

    /// NumberService shows the ramp day and today's cap; putting a number back into WARMING
    /// restarts the ramp; the upkeep pass makes a number active once the ramp reaches its cap.
    @Test func numbersShowTheirRampAndBecomeActiveAtTheCap() async throws {
        let f = try await CampaignFixture.make(name: "Warming")
        var add = AddNumberRequest()
        add.carrierConnectionID = f.connectionID
        add.phone = CampaignFixture.uniquePhone()
        add.dailyCap = 300
        let added = try await f.numbers.addNumber(add, options: f.options)
        #expect(added.state == .warming && added.warmingDay == 0 && added.effectiveDailyCap == 50 && added.dailyCap == 300)

        try await f.env.store.withTransaction(tenant: f.org.orgID) { tx in
            try await tx.execute(
                "UPDATE phone_numbers SET warming_started_on = (now() AT TIME ZONE 'UTC')::date - 2 WHERE id = \(UUIDText(added.id))")
        }
        let listed = try await f.numbers.listNumbers(ListNumbersRequest(), options: f.options).numbers.first { $0.id == added.id }
        #expect(listed?.warmingDay == 2 && listed?.effectiveDailyCap == 200)

        var configuration = CarrierUpkeep.Configuration()
        configuration.orgs = [f.org.orgID]
        let upkeep = CarrierUpkeep(store: f.env.store, configuration: configuration)
        // Day 2: 200 < 300, still warming. Day 3 (tomorrow): 400 >= 300, active.
        #expect(try await upkeep.runOnce().warmedNumbers == 0)
        #expect(try await upkeep.runOnce(now: Date().addingTimeInterval(86_400)).warmedNumbers == 1)
        let active = try await f.numbers.listNumbers(ListNumbersRequest(), options: f.options).numbers.first { $0.id == added.id }
        #expect(active?.state == .active && active?.warmingDay == 0 && active?.effectiveDailyCap == 300)
        let audited = try await f.env.store.withTransaction(tenant: f.org.orgID, readOnly: true) { tx in
            try await tx.query(
                "SELECT count(*)::int8 AS n FROM audit_events WHERE action = 'phone_number.warmed' AND target_id = \(added.id)"
            ).one().decode("n", as: Int64.self)
        }
        #expect(audited == 1)

        var update = UpdateNumberRequest()
        update.phoneNumberID = added.id
        update.state = .warming
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["state"]
        let rewarming = try await f.numbers.updateNumber(update, options: f.options)
        #expect(rewarming.state == .warming && rewarming.warmingDay == 0 && rewarming.effectiveDailyCap == 50)
    }

    /// The dispatcher applies the ramp's cap: a warming number on ramp day 1 sends 100 of 130
    /// queued messages today; an active number with the same cap would send them all.
    @Test func theDispatcherSendsNoMoreThanTheRampAllowsToday() async throws {
        // The ramp day and the daily usage both turn over at UTC midnight: start well clear of it.
        let secondsToMidnight = 86_400 - Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400)
        if secondsToMidnight < 90 { try await Task.sleep(for: .seconds(secondsToMidnight + 2)) }
        let fixture = try await DispatchFixture.make(numberCount: 1, dailyCap: 1000)
        try await fixture.env.store.withTransaction(tenant: fixture.org) { tx in
            try await tx.execute(
                """
                UPDATE phone_numbers SET state = 'warming', warming_started_on = (clock_timestamp() AT TIME ZONE 'UTC')::date - 1
                WHERE id = \(fixture.numbers[0].id)
                """)
        }
        try await fixture.queue(130, phones: 130)
        var configuration = Dispatcher.Configuration()
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: DispatchFixture.registry, configuration: configuration)
        try await dispatcher.start()
        let settled = try await DispatchFixture.waitUntil(timeout: .seconds(30)) {
            let counts = try await fixture.statusCounts()
            return counts["sent"] == 100 && (counts["claimed"] ?? 0) + (counts["sending"] ?? 0) == 0
        }
        await dispatcher.stop()
        #expect(settled)
        let counts = try await fixture.statusCounts()
        #expect(counts["sent"] == 100 && counts["queued"] == 30)
        #expect(Set(fixture.ledger().map(\.key)).count == 100)
    }
}
