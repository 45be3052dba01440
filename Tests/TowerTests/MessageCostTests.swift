import Foundation
import Testing
import TowerStore

@testable import Tower

/// Prices a carrier reports only when asked after the message is final (as Twilio does): the
/// upkeep asks the real mock plugin through QueryStatus and stores what it says; a carrier that
/// never prices is asked three times, then left alone, its messages delivered with no cost.
@Suite("Message cost by query", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct MessageCostTests {
    static func deliver(_ count: Int, settings: [String: String]) async throws -> DispatchFixture {
        let fixture = try await DispatchFixture.make(
            numberCount: 1, settings: ["status_events": "true", "delivery_delay_ms": "1", "delivery_rate": "1"].merging(settings) { $1 })
        try await fixture.queue(count, phones: count)
        var configuration = Dispatcher.Configuration()
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: try await InboundWholePathTests.registry.value,
            configuration: configuration)
        try await dispatcher.start()
        let delivered = try await DispatchFixture.waitUntil(timeout: .seconds(30)) {
            try await fixture.statusCounts()["delivered"] == count
        }
        await dispatcher.stop()
        #expect(delivered)
        return fixture
    }

    static func costs(_ fixture: DispatchFixture) async throws -> (priced: Int, checks: [Int]) {
        try await fixture.env.store.withTransaction(tenant: fixture.org, readOnly: true) { tx in
            let priced = try await tx.query(
                "SELECT count(*)::int8 AS n FROM messages WHERE cost_micros = 7900 AND currency = 'USD'"
            ).one().decode("n", as: Int64.self)
            let checks = try await tx.query("SELECT attempts::int8 AS a FROM message_cost_checks ORDER BY attempts").map {
                Int(try $0.decode("a", as: Int64.self))
            }
            return (Int(priced), checks)
        }
    }

    static func upkeep(_ fixture: DispatchFixture) async throws -> CarrierUpkeep {
        var configuration = CarrierUpkeep.Configuration()
        configuration.orgs = [fixture.org]
        return CarrierUpkeep(
            store: fixture.env.store, configuration: configuration,
            carriers: (try await InboundWholePathTests.registry.value, fixture.env.keys))
    }

    @Test func pricesAreAskedForOnceDueAndStored() async throws {
        let fixture = try await Self.deliver(
            5, settings: ["price_per_segment_micros": "7900", "price_in_status_events": "false", "seed": "11"])
        #expect(try await Self.costs(fixture) == (0, [0, 0, 0, 0, 0]))
        let upkeep = try await Self.upkeep(fixture)
        // Not due yet: the carrier gets two minutes to price the message.
        #expect(try await upkeep.runOnce().priceQueries == 0)
        let pass = try await upkeep.runOnce(now: Date().addingTimeInterval(180))
        #expect(pass.priceQueries == 5 && pass.pricedMessages == 5)
        #expect(try await Self.costs(fixture) == (5, []))
    }

    /// A carrier that prices at submission: the dispatcher stores the Send answer's price with
    /// the send, so no lookup is queued when the final status comes without one.
    @Test func aPriceOnTheSendAnswerIsStoredWithTheSend() async throws {
        let fixture = try await Self.deliver(
            4, settings: ["price_per_segment_micros": "7900", "price_in_status_events": "false", "price_on_send": "true", "seed": "13"])
        #expect(try await Self.costs(fixture) == (4, []))
        let pass = try await Self.upkeep(fixture).runOnce(now: Date().addingTimeInterval(180))
        #expect(pass.priceQueries == 0)
    }

    @Test func aCarrierThatNeverPricesIsAskedThreeTimesThenLeftAlone() async throws {
        let fixture = try await Self.deliver(3, settings: ["seed": "12"])
        let upkeep = try await Self.upkeep(fixture)
        let start = Date()
        for (offset, expected) in [(180.0, [1, 1, 1]), (180 + 1900, [2, 2, 2]), (180 + 1900 + 22_000, [])] {
            let pass = try await upkeep.runOnce(now: start.addingTimeInterval(offset))
            #expect(pass.priceQueries == 3 && pass.pricedMessages == 0)
            #expect(try await Self.costs(fixture) == (0, expected))
        }
        #expect(try await fixture.statusCounts()["delivered"] == 3)
    }
}
