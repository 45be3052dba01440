import Foundation
import Logging
import TowerProtoRuntime
import TowerStore

/// Opt-outs the carrier tells us about. Twilio answers 21610 ("Attempt to send to unsubscribed
/// recipient") when the recipient texted STOP to it: Twilio blocks that sender number only, so
/// the platform suppresses the phone across the org's whole pool itself (channel `carrier`).
///
/// 21610 on our own opt-out confirmation (purpose `compliance`) is not an opt-out to record: it
/// means Twilio confirmed the STOP itself. Migration 0020's trigger turns such a message into
/// `skipped` / `carrier_confirmed`, audited, so it never counts as a failure of the number.
enum CarrierOptOuts {
    static let unsubscribedCode = "21610"

    /// Records an opt-out for the recipient of each of `messageIDs` that the carrier refused with
    /// 21610 (compliance replies excepted), unless the phone is already opted out; audited as
    /// `opt_out.record`. Takes each phone's lock exclusively (OptOutLedger), so the caller's
    /// transaction must hold no phone lock shared. Returns how many opt-outs are new.
    @discardableResult
    static func record(_ tx: Transaction, orgID: UUIDText, messageIDs: [UUID]) async throws -> Int {
        let refused = try await tx.query(
            """
            SELECT m.id::text AS id, m.to_phone::text AS phone, m.lead_id::text AS lead_id
            FROM messages m
            WHERE m.id = ANY (\(messageIDs)) AND m.direction = 'outbound' AND m.purpose <> 'compliance'
              AND m.error_code = \(unsubscribedCode)
            ORDER BY m.to_phone
            """)
        var recordedCount = 0
        for row in refused {
            let messageID = try row.decode("id", as: String.self)
            let phone = try row.decode("phone", as: String.self)
            let leadID = try row.decode("lead_id", as: String?.self)
            // Not the sender number's fault (the recipient unsubscribed), so no number's
            // opt-out count moves.
            let recorded = try await OptOutLedger.record(
                tx, orgID: orgID, phone: phone, leadID: leadID.flatMap(UUIDText.init), keyword: nil, channel: "carrier",
                sourceMessageID: nil, phoneNumberID: nil)
            guard recorded.isNew else { continue }
            recordedCount += 1
            try await Audit.recordSystem(
                tx, orgID: orgID, action: "opt_out.record", targetType: "opt_out", targetID: recorded.optOutID,
                details: .object([
                    ("phone", .string(phone)), ("channel", .string("carrier")), ("error_code", .string(unsubscribedCode)),
                    ("refused_message_id", .string(messageID)), ("lead_id", leadID.map(JSONValue.string) ?? .null),
                    ("cancelled_messages", .number(String(recorded.cancelledMessages))),
                    ("opted_out_campaign_targets", .number(String(recorded.optedOutTargets))),
                ]))
        }
        return recordedCount
    }

    /// The dispatcher's follow-up once a hand-off has committed (its transaction held the phones'
    /// locks shared, so the opt-outs come after it): one transaction per message. A failure is
    /// logged; the carrier keeps refusing the phone, and the next refusal records it again.
    static func recordRefusals(store: Store, org: OrgID, messageIDs: [UUID], logger: Logger) async {
        guard let orgID = UUIDText(org.description) else { return }
        for id in messageIDs {
            do {
                try await store.withTransaction(tenant: org) { tx in
                    try await record(tx, orgID: orgID, messageIDs: [id])
                }
            } catch {
                logger.error(
                    "recording a carrier opt-out (21610) failed", metadata: ["org": "\(org)", "message": "\(id)", "error": "\(error)"])
            }
        }
    }
}
