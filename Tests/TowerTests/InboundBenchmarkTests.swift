import Foundation
import Testing
import TowerStore

@testable import Tower

/// Numbers, not assertions: how fast inbound messages are handled, and what a STOP costs in an
/// org with a large queue (the cancel runs under the phone's exclusive lock, so it must not scan
/// the queue). Run with `CTOWER_BENCH=1 swift test --skip-build --filter InboundBenchmarkTests`.
@Suite("Inbound benchmark", .enabled(if: ProcessInfo.processInfo.environment["CTOWER_BENCH"] == "1"))
struct InboundBenchmarkTests {
    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    @Test func inboundThroughputAndStopUnderALargeQueue() async throws {
        let f = try await InboundFixture.make("Inbound bench")
        let clock = ContinuousClock()
        let phones = (0..<1000).map { _ in InboundFixture.randomPhone() }
        // 1,000 leads, 200 queued campaign messages each: 200,000 queued rows in the org.
        try await f.env.store.withTransaction(tenant: f.org) { tx in
            try await tx.execute(
                """
                WITH l AS (
                    INSERT INTO leads (org_id, first_name) SELECT \(f.orgText), 'Bench' FROM generate_series(1, 1000) RETURNING id
                ), numbered AS (SELECT id, row_number() OVER () AS n FROM l)
                INSERT INTO lead_phones (org_id, lead_id, position, phone)
                SELECT \(f.orgText), id, 1, (\(phones))[n] FROM numbered
                """, prepared: false)
            try await tx.execute(
                """
                INSERT INTO messages (org_id, lead_id, lead_phone_id, direction, to_phone, body, status, purpose, send_after, idempotency_key)
                SELECT \(f.orgText), lp.lead_id, lp.id, 'outbound', lp.phone, 'Hi, still own the land?', 'queued', 'campaign',
                       now() + interval '1 hour', gen_random_uuid()::text
                FROM lead_phones lp, generate_series(1, 200)
                """, prepared: false)
            try await tx.execute("ANALYZE messages", prepared: false)
        }

        let conversational = 500
        let started = clock.now
        for i in 0..<conversational { try await f.receive(from: phones[i % phones.count], body: "Maybe, call me") }
        let conversationSeconds = Self.seconds(clock.now - started)

        let stops = 200
        let stopStarted = clock.now
        for i in 0..<stops { try await f.receive(from: phones[i], body: "STOP") }
        let stopSeconds = Self.seconds(clock.now - stopStarted)
        let cancelled = try await f.count("SELECT count(*) FROM messages WHERE status = 'cancelled'")
        print(
            String(
                format:
                    "inbound bench: %d conversational replies in %.2f s (%.0f/s, %.2f ms each); %d STOPs cancelling %d of 200,000 queued in %.2f s (%.2f ms each)",
                conversational, conversationSeconds, Double(conversational) / conversationSeconds,
                conversationSeconds * 1000 / Double(conversational),
                stops, cancelled, stopSeconds, stopSeconds * 1000 / Double(stops)))
        #expect(cancelled == stops * 200)
    }
}
