import Foundation
import Testing
import TowerProto
import TowerStore

@testable import Tower

/// A big StartCampaign refreshes the statistics of the tables it filled (the app role cannot
/// ANALYZE; migration 0021's owner function does), so the dispatcher's batch statements are
/// planned from the org's real number of messages.
@Suite("StartCampaign statistics")
struct CampaignStatisticsTests {
    @Test func aBigStartAnalyzesMessagesAndTargets() async throws {
        let f = try await CampaignFixture.make(
            name: "Statistics", variants: ["Hi {first_name|there}, {brand} here. Reply STOP to opt out."])
        let count = CampaignStarter.analyzeAfterMessages + 50
        try await f.sql { tx in
            try await tx.execute(
                """
                INSERT INTO leads (org_id, first_name, property_state, county)
                SELECT \(f.org.orgID), 'Owner' || i, 'TX', 'Travis' FROM generate_series(1, \(count)) AS i
                """)
            try await tx.execute(
                """
                INSERT INTO lead_phones (org_id, lead_id, position, phone)
                SELECT l.org_id, l.id, 1, '+1512' || lpad((3000000 + row_number() OVER ())::text, 7, '0')
                FROM leads l WHERE l.org_id = \(f.org.orgID)
                """)
        }
        func analyzed() async throws -> [String: Int] {
            try await f.env.store.withTransaction(tenant: nil) { tx in
                var counts: [String: Int] = [:]
                for row in try await tx.query(
                    "SELECT relname, analyze_count::int8 AS n FROM pg_stat_user_tables WHERE relname IN ('messages', 'campaign_targets')")
                {
                    counts[try row.decode("relname")] = try row.decode("n")
                }
                return counts
            }
        }
        let before = try await analyzed()
        let campaign = try await f.create()
        let result = try await f.start(campaign.id)
        #expect(result.queued == Int64(count))
        // Explicit ANALYZEs only (autovacuum's are counted apart); other suites may add their own.
        let after = try await analyzed()
        #expect(after["messages", default: 0] > before["messages", default: 0])
        #expect(after["campaign_targets", default: 0] > before["campaign_targets", default: 0])
    }
}
