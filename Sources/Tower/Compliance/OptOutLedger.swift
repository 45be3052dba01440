import TowerStore

/// The org-wide suppression list (`opt_outs`) and what recording an opt-out implies, in SQL.
///
/// The opt-out race rule: handing a message to a carrier holds the phone's lock shared while it
/// re-checks `opt_outs`; `record` holds it exclusive while it inserts the opt-out and cancels the
/// phone's queued messages, in the caller's transaction. Once that transaction commits, no
/// message to the phone can still be between its check and its hand-off.
enum OptOutLedger {
    struct Recorded: Sendable, Hashable {
        /// The active opt-out (new, or the one already there).
        var optOutID: String
        /// False when the phone was already opted out (a repeated STOP).
        var isNew: Bool
        /// The confirmation already sent for this opt-out, if any.
        var confirmationMessageID: String?
        /// Queued non-compliance messages to the phone that were cancelled.
        var cancelledMessages: Int
        /// Campaign targets moved to opted_out.
        var optedOutTargets: Int
    }

    /// Takes the phone's exclusive lock for the rest of the transaction.
    static func lockPhone(_ tx: Transaction, orgID: UUIDText, phone: String) async throws {
        try await tx.execute("SELECT pg_advisory_xact_lock(ctower_phone_lock_key(\(orgID), \(phone)))")
    }

    /// Records an opt-out for `phone` across the whole org (every number), cancels the phone's
    /// queued messages (`skip_reason = 'opted_out'`; compliance replies still go), moves its
    /// campaign targets to opted_out and records the consent revocation. Idempotent: an
    /// already opted-out phone changes nothing and comes back with `isNew == false`.
    static func record(
        _ tx: Transaction, orgID: UUIDText, phone: String, leadID: UUIDText?, keyword: String?, channel: String,
        sourceMessageID: UUIDText?, phoneNumberID: UUIDText?
    ) async throws -> Recorded {
        try await lockPhone(tx, orgID: orgID, phone: phone)
        // The explicit org_id (row-level security applies anyway) lets the planner see which org
        // it is: with only the policy's ctower_current_org() it cannot tell the phone index from
        // the org's whole-queue index, and might scan a large campaign's queue under the lock.
        if let row = try await tx.query(
            """
            INSERT INTO opt_outs (org_id, phone, keyword, channel, source_message_id)
            VALUES (\(orgID), \(phone), \(keyword), \(channel), \(sourceMessageID))
            ON CONFLICT (org_id, phone) WHERE revoked_at IS NULL DO NOTHING
            RETURNING id::text AS id
            """
        ).firstRow {
            let id = try row.decode("id", as: String.self)
            let cancelled = try await tx.execute(
                """
                UPDATE messages SET status = 'cancelled', skip_reason = 'opted_out'
                WHERE org_id = \(orgID) AND to_phone = \(phone) AND status = 'queued' AND direction = 'outbound'
                  AND purpose <> 'compliance'
                """)
            let targets = try await tx.execute(
                """
                UPDATE campaign_targets ct SET status = 'opted_out'
                WHERE ct.status IN ('pending', 'active', 'replied', 'completed')
                  AND ct.lead_id IN (SELECT lp.lead_id FROM lead_phones lp WHERE lp.phone = \(phone))
                  AND (ct.lead_phone_id IS NULL OR ct.lead_phone_id IN (SELECT lp.id FROM lead_phones lp WHERE lp.phone = \(phone)))
                """)
            try await tx.execute(
                "UPDATE lead_phones SET consent_status = 'revoked' WHERE phone = \(phone) AND consent_status <> 'revoked'")
            try await tx.execute(
                """
                INSERT INTO consent_records (org_id, lead_id, phone, action, source, channel)
                VALUES (\(orgID), \(leadID), \(phone), 'revoked', \(keyword.map { "\(channel):\($0)" } ?? channel), 'sms')
                """)
            if let phoneNumberID {
                try await tx.execute("UPDATE phone_numbers SET opt_out_count = opt_out_count + 1 WHERE id = \(phoneNumberID)")
            }
            return Recorded(optOutID: id, isNew: true, confirmationMessageID: nil, cancelledMessages: cancelled, optedOutTargets: targets)
        }
        let existing = try await tx.query(
            """
            SELECT id::text AS id, confirmation_message_id::text AS confirmation
            FROM opt_outs WHERE phone = \(phone) AND revoked_at IS NULL
            """
        ).one()
        return Recorded(
            optOutID: try existing.decode("id"), isNew: false, confirmationMessageID: try existing.decode("confirmation"),
            cancelledMessages: 0, optedOutTargets: 0)
    }

    /// Notes that `messageID` confirms the opt-out, so it is never confirmed twice.
    static func markConfirmed(_ tx: Transaction, optOutID: String, messageID: UUIDText) async throws {
        try await tx.execute("UPDATE opt_outs SET confirmation_message_id = \(messageID) WHERE id = \(UUIDText(optOutID))")
    }

    /// Ends the phone's active opt-out (START, UNSTOP, YES, ALTA…); returns its id, or nil when
    /// the phone was not opted out.
    static func revoke(_ tx: Transaction, orgID: UUIDText, phone: String) async throws -> String? {
        try await lockPhone(tx, orgID: orgID, phone: phone)
        guard
            let id = try await tx.query(
                "UPDATE opt_outs SET revoked_at = now() WHERE phone = \(phone) AND revoked_at IS NULL RETURNING id::text AS id"
            ).firstRow?.decode("id", as: String.self)
        else { return nil }
        // Undo what the opt-out did to the phone's consent: back to granted when consent had been
        // recorded, else unknown. (START is not itself written consent; no grant is recorded.)
        try await tx.execute(
            """
            UPDATE lead_phones lp SET consent_status = CASE
                WHEN EXISTS (SELECT 1 FROM consent_records c WHERE c.phone = lp.phone AND c.action = 'granted') THEN 'granted'
                ELSE 'unknown' END
            WHERE lp.phone = \(phone) AND lp.consent_status = 'revoked'
            """)
        return id
    }

    /// The phone's active opt-out: when and by which keyword (nil keyword for non-keyword channels).
    static func active(_ tx: Transaction, phone: String) async throws -> (id: String, keyword: String?, channel: String, micros: Int64)? {
        guard
            let row = try await tx.query(
                """
                SELECT id::text AS id, keyword, channel, \(unsafeRaw: Timestamps.micros("created_at")) AS created_us
                FROM opt_outs WHERE phone = \(phone) AND revoked_at IS NULL
                """
            ).firstRow
        else { return nil }
        return (try row.decode("id"), try row.decode("keyword"), try row.decode("channel"), try row.decode("created_us"))
    }
}
