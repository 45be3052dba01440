import Foundation
import TowerProto
import TowerStore

/// Stores what carriers report: delivery statuses against our outbound messages (found by the
/// carrier's message id) and inbound messages. Both are idempotent, so a redelivered webhook or
/// event changes nothing: statuses by carrier event id, inbound messages by provider message id.
enum CarrierEventRecorder {
    /// Records events of one connection in the tenant transaction `tx`; returns how many were new.
    static func record(_ events: [Carrier_Event], orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Int {
        var stored = 0
        for event in events {
            switch event.kind {
            case .deliveryStatus(let status)?:
                if try await record(status, orgID: orgID, connectionID: connectionID, tx: tx) { stored += 1 }
            case .inboundMessage(let message)?:
                if try await record(message, orgID: orgID, connectionID: connectionID, tx: tx) { stored += 1 }
            case .throttle?, nil:
                continue
            }
        }
        return stored
    }

    static func messageStatus(_ state: Carrier_DeliveryState) -> String? {
        switch state {
        case .queued: "queued"
        case .sent: "sent"
        case .delivered: "delivered"
        case .undelivered: "undelivered"
        case .failed: "failed"
        case .canceled: "cancelled"
        default: nil
        }
    }

    static func date(_ timestamp: Google_Protobuf_Timestamp?) -> Date {
        guard let timestamp, timestamp.seconds > 0 else { return Date() }
        return Date(timeIntervalSince1970: Double(timestamp.seconds) + Double(timestamp.nanos) / 1e9)
    }

    static func isE164(_ phone: String) -> Bool {
        phone.wholeMatch(of: /\+[1-9][0-9]{7,14}/) != nil
    }

    /// A status for a message we did not send through this connection is dropped (e.g. a test
    /// message, or another system sharing the carrier account).
    static func record(_ status: Carrier_DeliveryStatus, orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Bool {
        guard let newStatus = messageStatus(status.state), !status.providerMessageID.isEmpty else { return false }
        let occurred = date(status.occurTime)
        let errorCode = status.errorCode.isEmpty ? nil : status.errorCode
        let eventID = status.carrierEventID.isEmpty ? nil : status.carrierEventID
        guard
            let row = try await tx.query(
                """
                INSERT INTO message_status_events (org_id, message_id, status, provider_status, error_code, occurred_at, carrier_event_id)
                SELECT \(orgID), m.id, \(newStatus), \(status.carrierStatus), \(errorCode), \(occurred), \(eventID)
                FROM messages m
                WHERE m.carrier_connection_id = \(connectionID) AND m.provider_message_id = \(status.providerMessageID)
                ON CONFLICT (org_id, carrier_event_id) WHERE carrier_event_id IS NOT NULL DO NOTHING
                RETURNING message_id::text AS message_id
                """
            ).firstRow
        else { return false }
        let messageID = try IdentityRecords.id(try row.decode("message_id", as: String.self), field: "message_id")
        // Callbacks arrive out of order: only move forward (sending -> sent -> final state).
        guard ["sent", "delivered", "undelivered", "failed"].contains(newStatus) else { return true }
        try await tx.execute(
            """
            UPDATE messages SET status = \(newStatus),
                sent_at = COALESCE(sent_at, \(occurred)),
                delivered_at = CASE WHEN \(newStatus) = 'delivered' THEN \(occurred) ELSE delivered_at END,
                failed_at = CASE WHEN \(newStatus) IN ('failed', 'undelivered') THEN \(occurred) ELSE failed_at END,
                error_code = COALESCE(\(errorCode), error_code)
            WHERE id = \(messageID) AND direction = 'outbound'
              AND (status = 'sending' OR (status = 'sent' AND \(newStatus) <> 'sent'))
            """)
        return true
    }

    /// Stores an inbound message, linked to the lead whose phone sent it and to our number.
    static func record(_ message: Carrier_InboundMessage, orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Bool {
        guard isE164(message.from), isE164(message.to) else { return false }
        let providerID = message.providerMessageID.isEmpty ? nil : message.providerMessageID
        let body = String(message.body.prefix(1600))
        let inserted = try await tx.execute(
            """
            INSERT INTO messages (org_id, lead_id, lead_phone_id, phone_number_id, direction, from_phone, to_phone, body, status,
                                  carrier_connection_id, provider_message_id, received_at)
            SELECT \(orgID), lp.lead_id, lp.id,
                   (SELECT n.id FROM phone_numbers n WHERE n.phone = \(message.to) AND n.state <> 'released' LIMIT 1),
                   'inbound', \(message.from), \(message.to), \(body), 'received', \(connectionID), \(providerID), \(date(message.receiveTime))
            FROM (SELECT 1) one
            LEFT JOIN LATERAL (SELECT l.id, l.lead_id FROM lead_phones l WHERE l.phone = \(message.from) ORDER BY l.position LIMIT 1) lp ON true
            ON CONFLICT (carrier_connection_id, provider_message_id) WHERE provider_message_id IS NOT NULL DO NOTHING
            """)
        return inserted > 0
    }
}
