import Foundation
import TowerProto
import TowerStore

/// Stores what carriers report: delivery statuses against our outbound messages (found by the
/// carrier's message id) and inbound messages. Both are idempotent, so a redelivered webhook or
/// event changes nothing: statuses by carrier event id, inbound messages by provider message id.
///
/// A status can beat the record of the send it reports on (the answer to Send and the carrier's
/// callback race, and Twilio's callbacks name only the MessageSid). A status naming its recipient
/// first waits (at most 2 s) for the hand-off holding that phone's lock and looks again; one still
/// unmatched is parked in `parked_delivery_statuses` and applied when the send's provider id is
/// written (a trigger, in that transaction). `CarrierUpkeep` applies the rare one that raced the
/// trigger and expires, audited, those whose send never appears.
enum CarrierEventRecorder {
    /// What one batch of events left behind.
    struct Recorded: Sendable, Equatable {
        /// Events stored or parked (not redeliveries).
        var stored = 0
        /// Provider ids of statuses that were parked: try them again once this transaction commits.
        var parkedProviderIDs: [String] = []
    }

    /// Records events of one connection in the tenant transaction `tx`.
    static func record(_ events: [Carrier_Event], orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Recorded {
        var recorded = Recorded()
        for event in events {
            switch event.kind {
            case .deliveryStatus(let status)?:
                switch try await record(status, orgID: orgID, connectionID: connectionID, tx: tx) {
                case .stored: recorded.stored += 1
                case .parked:
                    recorded.stored += 1
                    recorded.parkedProviderIDs.append(status.providerMessageID)
                case .duplicate, .ignored: break
                }
            case .inboundMessage(let message)?:
                if try await record(message, orgID: orgID, connectionID: connectionID, tx: tx) { recorded.stored += 1 }
            case .throttle?, nil:
                continue
            }
        }
        return recorded
    }

    /// Applies statuses parked by an earlier transaction whose sends were recorded meanwhile. Run
    /// right after the transaction that parked them: the dispatcher's trigger cannot see a parked
    /// row that commits after its own statement.
    static func applyParked(providerIDs: [String], orgID: OrgID, connectionID: UUIDText, store: Store) async throws {
        guard !providerIDs.isEmpty else { return }
        try await store.withTransaction(tenant: orgID) { tx in
            try await tx.execute(
                """
                SELECT ctower_apply_parked_statuses(ARRAY(
                    SELECT m.id FROM messages m
                    WHERE m.carrier_connection_id = \(connectionID) AND m.provider_message_id = ANY (\(providerIDs)::text[])))
                """)
        }
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

    enum StatusOutcome: String, Sendable {
        /// Applied to its message.
        case stored
        /// Kept until the send it reports on is recorded.
        case parked
        /// Already stored or parked (a redelivery).
        case duplicate
        /// Not a status we store (no provider id, or a state with no message status).
        case ignored
    }

    /// The carrier's price as the messages table keeps it; nil when absent or malformed.
    static func cost(_ price: Carrier_Price?) -> (micros: Int64, currency: String)? {
        guard let price, price.amountMicros >= 0, price.currency.wholeMatch(of: /[A-Z]{3}/) != nil else { return nil }
        return (price.amountMicros, price.currency)
    }

    /// Applies one delivery status (ranked: a later 'sent' never replaces 'delivered'), or parks it
    /// when no message of this connection carries its provider id yet. A status that says the
    /// recipient unsubscribed at the carrier (21610) records an opt-out (CarrierOptOuts).
    static func record(_ status: Carrier_DeliveryStatus, orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws
        -> StatusOutcome
    {
        guard let newStatus = messageStatus(status.state), !status.providerMessageID.isEmpty else { return .ignored }
        let occurred = date(status.occurTime)
        let errorCode = status.errorCode.isEmpty ? nil : status.errorCode
        let eventID = status.carrierEventID.isEmpty ? nil : status.carrierEventID
        let cost = cost(status.price)
        // The recipient lets the status wait for a hand-off still recording its send (see migration 0020).
        let recipient = isE164(status.to) ? status.to : nil
        let outcome = try await tx.query(
            """
            SELECT ctower_record_delivery_status(\(orgID), \(connectionID), \(status.providerMessageID), \(recipient), \(newStatus),
                \(status.carrierStatus), \(errorCode), \(occurred), \(eventID), \(cost?.micros), \(cost?.currency),
                \(status.jsonValue().serialized())::jsonb) AS outcome
            """
        ).one().decode("outcome", as: String.self)
        let result = StatusOutcome(rawValue: outcome) ?? .ignored
        if result == .stored, errorCode == CarrierOptOuts.unsubscribedCode {
            let message = try await tx.query(
                """
                SELECT m.id FROM messages m
                WHERE m.carrier_connection_id = \(connectionID) AND m.provider_message_id = \(status.providerMessageID)
                """
            ).one().decode("id", as: UUID.self)
            try await CarrierOptOuts.record(tx, orgID: orgID, messageIDs: [message])
        }
        return result
    }

    /// Stores an inbound message on its lead's thread and handles its compliance keywords
    /// (Messaging/InboundProcessor): opt-out, resubscribe, HELP, free-text revocation.
    static func record(_ message: Carrier_InboundMessage, orgID: UUIDText, connectionID: UUIDText, tx: Transaction) async throws -> Bool {
        try await InboundProcessor.record(message, orgID: orgID, connectionID: connectionID, tx: tx) != nil
    }
}
