import Foundation
import TowerStore

/// Queues outbound messages the way the sending contract (migration 0011) says: a `queued` row
/// with an explicit id as its idempotency key, due now, then `NOTIFY ctower_dispatch` in the same
/// transaction so the dispatcher wakes when it commits. The dispatcher picks the sender unless
/// `phoneNumberID` is set (replies go from the number the lead texted).
enum OutboundQueue {
    struct Outbound: Sendable {
        var id = UUIDText(UUID().uuidString.lowercased())!
        var leadID: UUIDText?
        var leadPhoneID: UUIDText?
        var toPhone: String
        var phoneNumberID: UUIDText?
        var body: String
        /// campaign, compliance, manual or test.
        var purpose: String
        /// USPS codes and IANA zones the recipient may be in, for the dispatcher's quiet-hours
        /// and state-cap checks (compliance replies skip those checks).
        var recipientStates: [String] = []
        var recipientZones: [String] = []
    }

    /// The most segments a message may have (the `messages_segments_range` constraint).
    static let maxSegments = 20

    /// Inserts the message and wakes the dispatcher; returns the id. A row with the same id
    /// already there is left alone (a retried request), and the call reports false.
    @discardableResult
    static func enqueue(_ tx: Transaction, orgID: UUIDText, _ message: Outbound) async throws -> Bool {
        let encoding = MessageEncoding(message.body)
        let inserted = try await tx.execute(
            """
            INSERT INTO messages (id, org_id, lead_id, lead_phone_id, phone_number_id, direction, to_phone, body, status, purpose,
                                  segments, encoding, send_after, idempotency_key, recipient_states, recipient_zones)
            VALUES (\(message.id), \(orgID), \(message.leadID), \(message.leadPhoneID), \(message.phoneNumberID), 'outbound',
                    \(message.toPhone), \(message.body), 'queued', \(message.purpose), \(max(1, encoding.segments)),
                    \(encoding.charset == .gsm7 ? "gsm7" : "ucs2"), now(), \(message.id.text), \(message.recipientStates),
                    \(message.recipientZones))
            ON CONFLICT (id) DO NOTHING
            """)
        guard inserted > 0 else { return false }
        try await tx.notify(channel: "ctower_dispatch")
        return true
    }
}
