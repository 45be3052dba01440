import Foundation
import TowerProto
import TowerStore

/// Stores what carriers report: delivery statuses against our outbound messages (found by the
/// carrier's message id) and inbound messages. Both are idempotent, so a redelivered webhook or
/// event changes nothing: statuses by carrier event id, inbound messages by provider message id.
enum CarrierEventRecorder {
    /// A delivery status for a message still being handed to the carrier: store it later.
    struct StatusBeforeSend: Error, Sendable {
        var idempotencyKey: String
    }

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
        else {
            // A carrier can report on a message before the dispatcher has written down the
            // carrier's id for it (the answer to Send and the status race). Such a status is
            // not dropped: the caller leaves it unacknowledged and the carrier sends it again.
            // The send may also have been recorded between the insert above and this check (each
            // statement sees what was committed when it began): then too the status must come
            // again, unless this very event is already stored (a plain redelivery).
            if !status.idempotencyKey.isEmpty,
                try await tx.query(
                    """
                    SELECT 1 AS one FROM messages m
                    WHERE m.idempotency_key = \(status.idempotencyKey) AND m.direction = 'outbound'
                      AND ((m.status IN ('claimed', 'sending') AND m.provider_message_id IS NULL)
                           OR (m.carrier_connection_id = \(connectionID) AND m.provider_message_id = \(status.providerMessageID)))
                      AND NOT EXISTS (SELECT 1 FROM message_status_events e
                                      WHERE e.message_id = m.id AND e.carrier_event_id = \(eventID))
                    """
                ).firstRow != nil
            {
                throw StatusBeforeSend(idempotencyKey: status.idempotencyKey)
            }
            return false
        }
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

    /// Stores an inbound message on its lead's thread and handles its compliance keywords
    /// (Messaging/InboundProcessor): opt-out, resubscribe, HELP, free-text revocation.
    static func record(_ message: Carrier_InboundMessage, orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Bool {
        try await InboundProcessor.record(message, orgID: orgID, connectionID: connectionID, tx: tx) != nil
    }
}
