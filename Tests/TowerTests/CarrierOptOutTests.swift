import Foundation
import Logging
import Testing
import TowerCarrierHost
import TowerProto
import TowerStore

@testable import Tower

/// Twilio's 21610 ("Attempt to send to unsubscribed recipient"), from the real mock carrier
/// process through the real dispatcher: on our own STOP confirmation it means the carrier already
/// confirmed (done, not failed); on anything else it is an opt-out at the carrier, recorded
/// org-wide so nothing more is queued to the phone.
@Suite("Carrier opt-outs (21610)", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct CarrierOptOutTests {
    static func insert(
        _ fixture: DispatchFixture, phone: String, purpose: String = "campaign", campaign: Bool = true, dueIn: TimeInterval = 0,
        status: String = "queued", providerID: String? = nil
    ) async throws -> UUID {
        let id = UUID()
        let (org, campaignID, number) = (fixture.org, campaign ? fixture.campaignID : nil, fixture.numbers[0])
        let sent = status == "sent"
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, campaign_id, direction, to_phone, body, status, send_after, idempotency_key, purpose,
                                      recipient_zones, phone_number_id, from_phone, carrier_connection_id, sent_at, provider_message_id)
                VALUES (\(id), \(org), \(campaignID), 'outbound', \(phone), 'Hello', \(status), now() + \(dueIn) * interval '1 second',
                        \(id.uuidString.lowercased()), \(purpose), \([DispatchFixture.zoneInsideWindow()])::text[],
                        \(sent ? number.id : nil), \(sent ? number.phone : nil), \(sent ? fixture.connectionID : nil),
                        \(sent ? Date() : nil), \(providerID))
                """)
            try await tx.notify(channel: Dispatcher.channel)
        }
        return id
    }

    static func row(_ fixture: DispatchFixture, _ id: UUID) async throws -> (
        status: String, reason: String?, code: String?, failedAt: Date?
    ) {
        try await fixture.env.store.withTransaction(tenant: fixture.org, readOnly: true) { tx in
            let row = try await tx.query("SELECT status, skip_reason, error_code, failed_at FROM messages WHERE id = \(id)").one()
            return (try row.decode("status"), try row.decode("skip_reason"), try row.decode("error_code"), try row.decode("failed_at"))
        }
    }

    /// A carrier's FAILED status with 21610 for the message it calls `providerID`.
    static func unsubscribedStatus(_ providerID: String) -> Carrier_DeliveryStatus {
        var status = Carrier_DeliveryStatus()
        status.providerMessageID = providerID
        status.state = .failed
        status.carrierStatus = "failed"
        status.errorCode = "21610"
        status.carrierEventID = providerID + ":failed"
        return status
    }

    static func count(_ fixture: DispatchFixture, _ sql: SQL) async throws -> Int {
        try await fixture.env.store.withTransaction(tenant: fixture.org, readOnly: true) { tx in
            try await tx.query(sql).one().decode(0, as: Int.self)
        }
    }

    @Test func refusalsRecordCarrierOptOutsAndOurRefusedConfirmationCountsAsDone() async throws {
        let unsubscribed = "+12125559001"
        let confirmedByCarrier = "+12125559002"
        let fixture = try await DispatchFixture.make(
            numberCount: 1, settings: ["unsubscribed_recipients": "\(unsubscribed),\(confirmedByCarrier)"])
        let refused = try await Self.insert(fixture, phone: unsubscribed)
        let later = try await Self.insert(fixture, phone: unsubscribed, dueIn: 3600)
        let confirmation = try await Self.insert(fixture, phone: confirmedByCarrier, purpose: "compliance", campaign: false)
        let other = try await Self.insert(fixture, phone: "+12125559003")

        var configuration = Dispatcher.Configuration()
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: DispatchFixture.registry, configuration: configuration)
        try await dispatcher.start()
        let settled = try await DispatchFixture.waitUntil(timeout: .seconds(30)) {
            for id in [refused, confirmation, other]
            where ["queued", "claimed", "sending"].contains(try await Self.row(fixture, id).status) {
                return false
            }
            // The opt-out follows the hand-off's commit.
            return try await Self.count(fixture, "SELECT count(*) FROM opt_outs WHERE phone = \(unsubscribed)") == 1
        }
        await dispatcher.stop()
        #expect(settled)

        let refusedRow = try await Self.row(fixture, refused)
        #expect(refusedRow.status == "failed" && refusedRow.code == "21610")
        // The carrier's opt-out holds across the org: the later message to the phone is cancelled.
        let laterRow = try await Self.row(fixture, later)
        #expect(laterRow.status == "cancelled" && laterRow.reason == "opted_out")
        #expect(
            try await Self.count(
                fixture, "SELECT count(*) FROM opt_outs WHERE phone = \(unsubscribed) AND channel = 'carrier' AND revoked_at IS NULL") == 1)
        #expect(
            try await Self.count(
                fixture,
                "SELECT count(*) FROM audit_events WHERE action = 'opt_out.record' AND metadata->>'channel' = 'carrier' AND metadata->>'refused_message_id' = \(refused.uuidString.lowercased())"
            ) == 1)
        // Our confirmation that the carrier refused is done, not failed, and no opt-out comes of it.
        let confirmationRow = try await Self.row(fixture, confirmation)
        #expect(
            confirmationRow.status == "skipped" && confirmationRow.reason == "carrier_confirmed" && confirmationRow.code == "21610"
                && confirmationRow.failedAt == nil)
        #expect(try await Self.count(fixture, "SELECT count(*) FROM opt_outs WHERE phone = \(confirmedByCarrier)") == 0)
        #expect(
            try await Self.count(
                fixture,
                "SELECT count(*) FROM audit_events WHERE action = 'compliance.confirmed_by_carrier' AND target_id = \(confirmation.uuidString.lowercased())"
            ) == 1)
        #expect(try await Self.row(fixture, other).status == "sent")
        // Neither refusal is the sender number's fault.
        #expect(
            try await Self.count(
                fixture, "SELECT (opt_out_count + failed_count)::int8 FROM phone_numbers WHERE id = \(fixture.numbers[0].id)") == 0)
        // The mock never accepted the refused sends.
        #expect(!fixture.ledger().contains { [unsubscribed, confirmedByCarrier].contains($0.to) })
    }

    /// A carrier that reports 21610 in a status (e.g. through a messaging service) gets the same
    /// treatment: an opt-out for the phone, once.
    @Test func a21610StatusRecordsTheOptOutOnce() async throws {
        let fixture = try await DispatchFixture.make(numberCount: 1)
        let phone = "+12125559004"
        let providerID = "MK-21610-\(UUID().uuidString.prefix(8))"
        let sent = try await Self.insert(fixture, phone: phone, status: "sent", providerID: providerID)
        let queued = try await Self.insert(fixture, phone: phone, dueIn: 3600)
        let status = Self.unsubscribedStatus(providerID)
        let logger = Logger(label: "test.21610")
        let event = CarrierEvent(connectionID: fixture.connectionID.uuidString.lowercased(), kind: .deliveryStatus(status))
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: fixture.env.store, logger: logger))
        var again = status
        again.carrierEventID += ":again"
        let second = CarrierEvent(connectionID: fixture.connectionID.uuidString.lowercased(), kind: .deliveryStatus(again))
        #expect(await CarrierWebhookIngress.recordUnsolicited(second, store: fixture.env.store, logger: logger))

        #expect(try await Self.row(fixture, sent).status == "failed")
        #expect(try await Self.row(fixture, queued).reason == "opted_out")
        #expect(try await Self.count(fixture, "SELECT count(*) FROM opt_outs WHERE phone = \(phone) AND channel = 'carrier'") == 1)
        #expect(try await Self.count(fixture, "SELECT count(*) FROM audit_events WHERE action = 'opt_out.record'") == 1)
    }

    /// A 21610 status that beat its send's record is parked, and applied by the provider-id
    /// trigger while the hand-off records the send; the hand-off then records the opt-out, as it
    /// does for a Send refused with 21610.
    @Test func aParked21610StatusAppliedAtHandOffRecordsTheOptOut() async throws {
        let fixture = try await DispatchFixture.make(numberCount: 1)
        let phone = "+12125559005"
        var configuration = Dispatcher.Configuration(instanceID: "parked-21610-" + UUID().uuidString.prefix(8).lowercased())
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: DispatchFixture.registry, configuration: configuration)
        let id = UUID()
        let key = id.uuidString.lowercased()
        let number = fixture.numbers[0]
        let later = try await Self.insert(fixture, phone: phone, dueIn: 3600)
        try await fixture.env.store.withTransaction(tenant: fixture.org) { tx in
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, campaign_id, direction, to_phone, body, status, send_after, idempotency_key, purpose,
                                      claimed_by, claimed_at, phone_number_id, from_phone, carrier_connection_id)
                VALUES (\(id), \(fixture.org), \(fixture.campaignID), 'outbound', \(phone), 'Hello', 'sending', now(), \(key), 'campaign',
                        \(configuration.instanceID), now(), \(number.id), \(number.phone), \(fixture.connectionID))
                """)
        }
        // The mock's provider id for this key (seed 7, MockCarrier.providerID): FNV-1a of "7\u{1f}KEY".
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "7\u{1f}\(key)".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let digits = String(hash, radix: 16)
        let providerID = "MK" + String(repeating: "0", count: 16 - digits.count) + digits
        let status = Self.unsubscribedStatus(providerID)
        let event = CarrierEvent(connectionID: fixture.connectionID.uuidString.lowercased(), kind: .deliveryStatus(status))
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: fixture.env.store, logger: Logger(label: "test.parked")))
        #expect(try await Self.count(fixture, "SELECT count(*) FROM parked_delivery_statuses") == 1)

        let send = PlannedSend(
            id: id, idempotencyKey: key, purpose: "campaign", toPhone: phone, body: "Hello", attempts: 1, numberID: number.id,
            fromPhone: number.phone, connectionID: fixture.connectionID, slot: Date(), marked: true)
        try await dispatcher.send([send], org: fixture.org)

        #expect(fixture.ledger().map(\.providerID) == [providerID], "the test's provider id must be the mock's")
        let refused = try await Self.row(fixture, id)
        #expect(refused.status == "failed" && refused.code == "21610")
        #expect(try await Self.count(fixture, "SELECT count(*) FROM opt_outs WHERE phone = \(phone) AND channel = 'carrier'") == 1)
        #expect(try await Self.row(fixture, later).reason == "opted_out")
    }
}
