import Foundation
import Testing
import TowerCarrierHost
import TowerStore

@testable import Tower

/// A message already `sending` (committed, waiting for its hand-off) to a phone that UpdateLead
/// has since taken off its lead must not reach the carrier: the hand-off's last check refuses it
/// as `phone_removed`, audited, while a message to the lead's remaining phone goes out.
@Suite("Dispatcher last-moment phone check", .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchPhoneRemovedTests {
    @Test func aSendingMessageToARemovedPhoneIsRefusedAtHandOff() async throws {
        let fixture = try await DispatchFixture.make(numberCount: 1)
        let org = fixture.org
        var configuration = Dispatcher.Configuration(instanceID: "phone-removed-" + UUID().uuidString.prefix(8).lowercased())
        configuration.orgs = [org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: DispatchFixture.registry, configuration: configuration)
        let leadID = UUID()
        let (kept, removed) = ("+12125550181", "+12125550182")
        let number = fixture.numbers[0]
        let sends = [kept, removed].map { phone in
            let id = UUID()
            return PlannedSend(
                id: id, idempotencyKey: id.uuidString.lowercased(), purpose: "campaign", toPhone: phone, body: "Hello \(phone)",
                attempts: 1, numberID: number.id, fromPhone: number.phone, connectionID: fixture.connectionID, slot: Date(), marked: true)
        }
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute("INSERT INTO leads (id, org_id, first_name) VALUES (\(leadID), \(org), 'Ada')")
            try await tx.execute(
                """
                INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(org), \(leadID), 1, \(kept)), (\(org), \(leadID), 2, \(removed))
                """)
            // As the claim leaves them: committed `sending`, claimed by this dispatcher.
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, campaign_id, lead_id, direction, to_phone, body, status, send_after, idempotency_key,
                                      purpose, segments, encoding, claimed_by, claimed_at, phone_number_id, from_phone, carrier_connection_id)
                SELECT v.id, \(org), \(fixture.campaignID), \(leadID), 'outbound', v.phone, v.body, 'sending', now(), v.id::text,
                       'campaign', 1, 'gsm7', \(configuration.instanceID), now(), \(number.id), \(number.phone), \(fixture.connectionID)
                FROM unnest(\(sends.map(\.id)), \(sends.map(\.toPhone))::text[], \(sends.map(\.body))::text[]) AS v(id, phone, body)
                """)
            // UpdateLead took the second phone off after the claim.
            try await tx.execute("DELETE FROM lead_phones WHERE lead_id = \(leadID) AND phone = \(removed)")
        }

        try await dispatcher.send(sends, org: org)

        let rows = try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
            var rows: [String: (status: String, reason: String?)] = [:]
            for row in try await tx.query("SELECT to_phone, status, skip_reason FROM messages WHERE lead_id = \(leadID)") {
                rows[try row.decode("to_phone")] = (try row.decode("status"), try row.decode("skip_reason"))
            }
            return rows
        }
        let audited = try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT metadata->>'reason' AS reason FROM audit_events
                WHERE action = 'message.skipped' AND target_id = \(sends[1].id.uuidString.lowercased())
                """
            ).map { try $0.decode("reason", as: String.self) }
        }
        let ledger = fixture.ledger()
        #expect(rows[kept]?.status == "sent")
        #expect(rows[removed]?.status == "skipped" && rows[removed]?.reason == "phone_removed", "\(String(describing: rows[removed]))")
        #expect(audited == ["phone_removed"])
        #expect(ledger.map(\.to) == [kept], "the carrier got \(ledger.map(\.to))")
    }
}
