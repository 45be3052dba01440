import Foundation
import Testing
import TowerProto
import TowerStore

@testable import Tower

/// StartCampaign on a large audience, measured (not asserted against a time): set-based target
/// selection plus COPY of the planned messages. Run with
/// `CTOWER_BENCH_LEADS=100000 swift test --skip-build --filter CampaignStartBenchmark`;
/// results are in Benchmarks/campaign-start.md.
@Suite("StartCampaign on a large audience")
struct CampaignStartBenchmark {
    static let leads = Int(ProcessInfo.processInfo.environment["CTOWER_BENCH_LEADS"] ?? "") ?? 0

    @Test(.enabled(if: leads > 0)) func startLargeAudience() async throws {
        let f = try await CampaignFixture.make(
            name: "Benchmark",
            variants: [
                "Hi {first_name|there}, {brand} here about your {county} parcel. Reply STOP to opt out.",
                "Hello {first_name}! STOP to end.",
            ])
        let count = Self.leads
        let seeded = ContinuousClock.now
        try await f.sql { tx in
            try await tx.execute(
                """
                INSERT INTO leads (org_id, first_name, property_state, county, mailing_state, score)
                SELECT \(f.org.orgID), 'Owner' || i, (ARRAY['TX','FL','OK','CA','NY'])[1 + i % 5],
                       (ARRAY['Travis','Miami-Dade','Tulsa','Kern','Erie'])[1 + i % 5],
                       CASE WHEN i % 7 = 0 THEN 'MD' END, i % 101
                FROM generate_series(1, \(count)) AS i
                """)
            try await tx.execute(
                """
                INSERT INTO lead_phones (org_id, lead_id, position, phone)
                SELECT l.org_id, l.id, 1,
                       '+1' || (ARRAY['512','305','405','661','716','915','850'])[1 + (row_number() OVER ())::int % 7]
                            || lpad((2000000 + row_number() OVER ())::text, 7, '0')
                FROM leads l WHERE l.org_id = \(f.org.orgID)
                """)
            try await tx.execute(
                """
                INSERT INTO opt_outs (org_id, phone, channel)
                SELECT org_id, phone, 'import' FROM lead_phones WHERE org_id = \(f.org.orgID) AND right(phone, 2) = '00'
                """)
        }
        let seedTime = ContinuousClock.now - seeded
        let campaign = try await f.create()
        let began = ContinuousClock.now
        let result = try await f.start(campaign.id)
        let elapsed = ContinuousClock.now - began
        #expect(result.targets == Int64(count))
        #expect(result.queued + result.skipped.reduce(0) { $0 + $1.count } == Int64(count))
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "StartCampaign: \(count) leads, \(result.queued) queued, \(result.skipped.map { "\($0.reason)=\($0.count)" }) skipped, "
                + "\(result.delayedByQuietHours) delayed by quiet hours, in \(elapsed) (\(Int(Double(result.queued) / seconds)) messages/s); seeding took \(seedTime)"
        )
    }
}
