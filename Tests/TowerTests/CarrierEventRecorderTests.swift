import Foundation
import Logging
import Testing
import TowerCarrierHost
import TowerProto
import TowerStore

@testable import Tower

/// A carrier may report on a message before the dispatcher has written down the carrier's id for
/// it. Such a status must come again later, not be acknowledged and lost.
@Suite("Carrier statuses that beat their send's record")
struct CarrierEventRecorderTests {
    @Test func aStatusBeforeTheSendIsRecordedIsLeftForRedeliveryThenStored() async throws {
        let fixture = try await DispatchFixture.make(numberCount: 1)
        let org = fixture.org
        let number = fixture.numbers[0]
        let id = UUID()
        let key = id.uuidString.lowercased()
        let providerID = "MK-early-\(UUID().uuidString.prefix(8))"
        // Handed to the carrier, the carrier's answer not yet written.
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, campaign_id, direction, to_phone, body, status, send_after, idempotency_key,
                                      phone_number_id, from_phone, carrier_connection_id, claimed_at, claimed_by)
                VALUES (\(id), \(org), \(fixture.campaignID), 'outbound', '+12125550199', 'Hello', 'sending', now(), \(key),
                        \(number.id), \(number.phone), \(fixture.connectionID), now(), 'test-dispatcher')
                """)
        }
        var status = Carrier_DeliveryStatus()
        status.providerMessageID = providerID
        status.idempotencyKey = key
        status.state = .delivered
        status.carrierStatus = "delivered"
        status.carrierEventID = providerID + ":delivered"
        let event = CarrierEvent(connectionID: fixture.connectionID.uuidString.lowercased(), kind: .deliveryStatus(status))
        let logger = Logger(label: "test.recorder")
        func state() async throws -> (status: String, events: Int) {
            try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
                let row = try await tx.query(
                    "SELECT m.status, (SELECT count(*) FROM message_status_events e WHERE e.message_id = m.id)::int8 AS n FROM messages m WHERE m.id = \(id)"
                ).one()
                return (try row.decode("status"), Int(try row.decode("n", as: Int64.self)))
            }
        }

        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: fixture.env.store, logger: logger) == false)
        #expect(try await state() == ("sending", 0))

        // The dispatcher writes the carrier's answer; the redelivered status now lands.
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute(
                "UPDATE messages SET status = 'sent', sent_at = now(), provider_message_id = \(providerID) WHERE id = \(id)")
        }
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: fixture.env.store, logger: logger) == true)
        #expect(try await state() == ("delivered", 1))
        // A plain redelivery of a stored status is acknowledged and changes nothing.
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: fixture.env.store, logger: logger) == true)
        #expect(try await state() == ("delivered", 1))
    }
}
