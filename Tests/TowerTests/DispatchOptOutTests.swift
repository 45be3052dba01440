import Foundation
import Testing
import TowerStore

@testable import Tower

/// The opt-out race rule under load: an opt-out recorded the way inbound handling records it
/// (exclusive phone lock, insert, cancel queued messages) while a large batch is mid-flight.
/// Nothing to that phone may reach the carrier once the opt-out holds its lock.
@Suite("Dispatcher and opt-outs", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchOptOutTests {
    @Test func noSendReachesTheCarrierAfterAnOptOutCommits() async throws {
        let phones = 20
        let fixture = try await DispatchFixture.make(numberCount: 4, settings: ["latency_ms": "3"])
        try await fixture.queue(4000, phones: phones)
        var configuration = Dispatcher.Configuration()
        configuration.batchSize = 250
        // Other suites queue messages in the same database; this dispatcher must not send theirs.
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: DispatchFixture.registry, configuration: configuration)
        try await dispatcher.start()

        #expect(try await DispatchFixture.waitUntil(timeout: .seconds(60)) { fixture.ledger().count >= 800 })
        // The phone that has had the most messages so far: it certainly has more queued and in flight.
        let counts = Dictionary(fixture.ledger().map { ($0.to, 1) }, uniquingKeysWith: +)
        let phone = counts.max { $0.value < $1.value }!.key
        let org = fixture.org
        let (linesAtOptOut, cancelled) = try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(ctower_phone_lock_key(\(org), \(phone)))")
            try await tx.execute(
                "INSERT INTO opt_outs (org_id, phone, keyword, channel) VALUES (\(org), \(phone), 'STOP', 'sms_keyword')")
            let cancelled = try await tx.execute(
                """
                UPDATE messages SET status = 'cancelled', skip_reason = 'opted_out'
                WHERE to_phone = \(phone) AND status = 'queued' AND direction = 'outbound'
                """)
            // Holding the exclusive lock: every hand-off to this phone has finished, none can start.
            return (fixture.ledger().count, cancelled)
        }
        #expect(try await DispatchFixture.waitUntil(timeout: .seconds(120)) { try await fixture.unfinished() == 0 })
        await dispatcher.stop()

        let ledger = fixture.ledger()
        let afterOptOut = ledger[linesAtOptOut...].filter { $0.to == phone }
        let sentBefore = ledger[..<linesAtOptOut].filter { $0.to == phone }.count
        let rows = try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT status, skip_reason, count(*) AS n FROM messages WHERE to_phone = \(phone) AND direction = 'outbound'
                GROUP BY status, skip_reason
                """
            ).map {
                (try $0.decode("status", as: String.self), try $0.decode("skip_reason", as: String?.self), try $0.decode("n", as: Int.self))
            }
        }
        let sentInDatabase = rows.filter { $0.0 == "sent" }.reduce(0) { $0 + $1.2 }
        let refused = rows.filter { $0.1 == "opted_out" }.reduce(0) { $0 + $1.2 }
        print("opt-out race: \(sentBefore) sent before, \(cancelled) cancelled in the queue, \(refused) refused in all; \(rows)")
        #expect(afterOptOut.isEmpty, "\(afterOptOut.count) messages reached the carrier after the opt-out")
        #expect(sentBefore > 0 && refused > 0, "the opt-out should land mid-campaign")
        #expect(sentInDatabase == sentBefore, "the database and the ledger agree on what reached the phone")
        #expect(sentInDatabase + refused == 4000 / phones)
        // The whole run: each message exactly once, and the database agrees.
        let keys = Set(ledger.map(\.key))
        #expect(keys.count == ledger.count)
        let sentKeys = try await fixture.messages().filter { $0.status == "sent" }.map(\.key)
        #expect(Set(sentKeys) == keys)
    }
}
