import Foundation
import TowerProto
import TowerProtoRuntime
import TowerStore

/// Stores an inbound message on its lead's thread and acts on what it asks for, in the caller's
/// tenant transaction, so the message, the lead's status, the opt-out, the cancelled queue, the
/// reply and the audit events commit together or not at all.
///
/// Idempotent: the sender's phone lock is taken first, then a message already stored (same
/// carrier connection and provider id) ends the call with nothing changed, so a redelivered event
/// never creates a second lead, opt-out or reply.
enum InboundProcessor {
    /// What handling one inbound message did (for callers and tests).
    struct Outcome: Sendable, Hashable {
        var messageID: String
        var leadID: String
        var createdUnknownLead: Bool
        var intent: InboundIntent
        var replyMessageID: String?
        var flaggedForReview: Bool
    }

    /// Leads created for a phone no lead of the org has carry this `leads.source`.
    static let unknownSenderSource = "inbound_unknown"

    /// Returns nil when the message was stored before (a redelivery) or is not an SMS between
    /// E.164 numbers.
    static func record(
        _ inbound: Carrier_InboundMessage, orgID: UUIDText, connectionID: UUIDText, tx: Transaction
    ) async throws -> Outcome? {
        guard CarrierEventRecorder.isE164(inbound.from), CarrierEventRecorder.isE164(inbound.to) else { return nil }
        let from = inbound.from
        let providerID = inbound.providerMessageID.isEmpty ? nil : inbound.providerMessageID
        // Serialises everything about this phone: redeliveries, two STOPs racing, a dispatcher
        // about to hand a message to it (the opt-out race rule).
        try await OptOutLedger.lockPhone(tx, orgID: orgID, phone: from)
        if let providerID {
            let seen = try await tx.query(
                """
                SELECT EXISTS (SELECT 1 FROM messages WHERE carrier_connection_id = \(connectionID)
                                                        AND provider_message_id = \(providerID)) AS seen
                """
            ).one().decode("seen", as: Bool.self)
            if seen { return nil }
        }

        let (lead, leadPhone, createdLead) = try await leadForSender(tx, orgID: orgID, phone: from)
        let numberID = try await tx.query(
            "SELECT id::text AS id FROM phone_numbers WHERE phone = \(inbound.to) AND state <> 'released' LIMIT 1"
        ).firstRow.flatMap { try $0.decode("id", as: String?.self) }.flatMap(UUIDText.init)
        let body = String(inbound.body.prefix(1600))
        let intent = KeywordClassifier.classify(body)
        let messageID = UUIDText(UUID().uuidString.lowercased())!
        let inserted = try await tx.execute(
            """
            INSERT INTO messages (id, org_id, lead_id, lead_phone_id, phone_number_id, direction, from_phone, to_phone, body, status,
                                  carrier_connection_id, provider_message_id, received_at, intent)
            VALUES (\(messageID), \(orgID), \(lead), \(leadPhone), \(numberID), 'inbound', \(from), \(inbound.to), \(body), 'received',
                    \(connectionID), \(providerID), \(CarrierEventRecorder.date(inbound.receiveTime)), \(intent.name))
            ON CONFLICT (carrier_connection_id, provider_message_id) WHERE provider_message_id IS NOT NULL DO NOTHING
            """)
        guard inserted > 0 else { return nil }

        // A reply moves the lead forward (never back from interested, under contract…) and marks
        // it replied in the campaigns running now.
        try await tx.execute("UPDATE leads SET status = 'replied' WHERE id = \(lead) AND status IN ('new', 'contacted')")
        try await tx.execute(
            """
            UPDATE campaign_targets ct SET status = 'replied'
            FROM campaigns c
            WHERE c.id = ct.campaign_id AND c.status = 'running' AND ct.lead_id = \(lead)
              AND ct.status IN ('pending', 'active', 'completed')
            """)

        var outcome = Outcome(
            messageID: messageID.text, leadID: lead.text, createdUnknownLead: createdLead, intent: intent, replyMessageID: nil,
            flaggedForReview: false)
        let context = Context(
            tx: tx, orgID: orgID, phone: from, lead: lead, leadPhone: leadPhone, numberID: numberID, messageID: messageID)
        switch intent {
        case .optOut(let keyword):
            outcome.replyMessageID = try await optOut(context, keyword: keyword, spanish: intent.isSpanish)
        case .resubscribe(let keyword):
            outcome.replyMessageID = try await resubscribe(context, keyword: keyword, spanish: intent.isSpanish)
        case .help(let keyword):
            outcome.replyMessageID = try await help(context, keyword: keyword, spanish: intent.isSpanish)
        case .revocation(let phrase):
            try await freeTextRevocation(context, phrase: phrase)
            outcome.flaggedForReview = true
        case .possibleRevocation(let word):
            let optedOut = try await OptOutLedger.active(tx, phone: from) != nil
            try await flag(context, reason: "possible_revocation", phrase: word, optedOut: optedOut)
            outcome.flaggedForReview = true
        case .message:
            break
        }
        return outcome
    }

    /// Everything the compliance steps need about the message being handled.
    struct Context {
        var tx: Transaction
        var orgID: UUIDText
        var phone: String
        var lead: UUIDText
        var leadPhone: UUIDText
        var numberID: UUIDText?
        var messageID: UUIDText
    }

    /// The lead whose phone sent the message: the one we last wrote to from that phone, else
    /// the phone's first listing; with none, a new "unknown sender" lead (source
    /// `inbound_unknown`, status replied) holding the phone.
    static func leadForSender(_ tx: Transaction, orgID: UUIDText, phone: String) async throws -> (
        lead: UUIDText, leadPhone: UUIDText, created: Bool
    ) {
        if let row = try await tx.query(
            """
            SELECT lp.id::text AS phone_id, lp.lead_id::text AS lead_id
            FROM lead_phones lp
            WHERE lp.phone = \(phone)
            ORDER BY (SELECT max(m.created_at) FROM messages m
                      WHERE m.lead_id = lp.lead_id AND m.to_phone = lp.phone AND m.direction = 'outbound') DESC NULLS LAST,
                     lp.position, lp.created_at, lp.id
            LIMIT 1
            """
        ).firstRow {
            return (
                try IdentityRecords.id(try row.decode("lead_id"), field: "lead_id"),
                try IdentityRecords.id(try row.decode("phone_id"), field: "lead_phone_id"), false
            )
        }
        let lead = try await tx.query(
            """
            INSERT INTO leads (org_id, source, status, custom_fields)
            VALUES (\(orgID), \(unknownSenderSource), 'replied', jsonb_build_object('unknown_sender', true))
            RETURNING id::text AS id
            """
        ).one().decode("id", as: String.self)
        let leadPhone = try await tx.query(
            "INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(orgID), \(UUIDText(lead)), 1, \(phone)) RETURNING id::text AS id"
        ).one().decode("id", as: String.self)
        try await Audit.recordSystem(
            tx, orgID: orgID, action: "lead.create_unknown_sender", targetType: "lead", targetID: lead,
            details: .object([("phone", .string(phone))]))
        return (UUIDText(lead)!, UUIDText(leadPhone)!, true)
    }

    static func orgTexts(_ tx: Transaction, orgID: UUIDText) async throws -> (texts: ComplianceReplies.OrgTexts, freeTextOptOut: Bool) {
        let row = try await tx.query(
            """
            SELECT coalesce(nullif(brand_name, ''), name) AS brand, stop_reply_text, help_reply_text, free_text_opt_out
            FROM orgs WHERE id = \(orgID)
            """
        ).one()
        return (
            ComplianceReplies.OrgTexts(
                brand: try row.decode("brand"), stopReply: try row.decode("stop_reply_text"),
                helpReply: try row.decode("help_reply_text")),
            try row.decode("free_text_opt_out")
        )
    }

    /// Queues a compliance reply from the number the lead texted.
    static func reply(_ c: Context, body: String) async throws -> UUIDText {
        var reply = OutboundQueue.Outbound(toPhone: c.phone, body: body, purpose: "compliance")
        reply.leadID = c.lead
        reply.leadPhoneID = c.leadPhone
        reply.phoneNumberID = c.numberID
        try await OutboundQueue.enqueue(c.tx, orgID: c.orgID, reply)
        return reply.id
    }

    /// STOP and the other opt-out keywords: suppress the phone org-wide, then confirm once per
    /// opt-out (a repeated STOP finds the confirmation and sends nothing).
    static func optOut(_ c: Context, keyword: String, spanish: Bool) async throws -> String? {
        let recorded = try await OptOutLedger.record(
            c.tx, orgID: c.orgID, phone: c.phone, leadID: c.lead, keyword: keyword, channel: "sms_keyword",
            sourceMessageID: c.messageID, phoneNumberID: c.numberID)
        var replyID: UUIDText?
        if recorded.confirmationMessageID == nil {
            let texts = try await orgTexts(c.tx, orgID: c.orgID).texts
            let id = try await reply(c, body: ComplianceReplies.optOutConfirmation(texts, spanish ? .spanish : .english))
            try await OptOutLedger.markConfirmed(c.tx, optOutID: recorded.optOutID, messageID: id)
            replyID = id
        }
        if recorded.isNew || replyID != nil {
            try await Audit.recordSystem(
                c.tx, orgID: c.orgID, action: recorded.isNew ? "opt_out.record" : "opt_out.confirm", targetType: "opt_out",
                targetID: recorded.optOutID,
                details: .object([
                    ("phone", .string(c.phone)), ("channel", .string("sms_keyword")), ("keyword", .string(keyword)),
                    ("inbound_message_id", .string(c.messageID.text)), ("lead_id", .string(c.lead.text)),
                    ("cancelled_messages", .number(String(recorded.cancelledMessages))),
                    ("opted_out_campaign_targets", .number(String(recorded.optedOutTargets))),
                    ("confirmation_message_id", replyID.map { .string($0.text) } ?? .null),
                ]))
        }
        return replyID?.text
    }

    /// START, UNSTOP, YES, ALTA, REANUDAR end an opt-out and are confirmed. From a phone that is
    /// not opted out they are ordinary replies ("Yes" to an offer), answered by nobody but a person.
    static func resubscribe(_ c: Context, keyword: String, spanish: Bool) async throws -> String? {
        guard let optOutID = try await OptOutLedger.revoke(c.tx, orgID: c.orgID, phone: c.phone) else { return nil }
        let texts = try await orgTexts(c.tx, orgID: c.orgID).texts
        let id = try await reply(c, body: ComplianceReplies.resubscribeConfirmation(texts, spanish ? .spanish : .english))
        try await Audit.recordSystem(
            c.tx, orgID: c.orgID, action: "opt_out.revoke", targetType: "opt_out", targetID: optOutID,
            details: .object([
                ("phone", .string(c.phone)), ("keyword", .string(keyword)), ("inbound_message_id", .string(c.messageID.text)),
                ("lead_id", .string(c.lead.text)), ("confirmation_message_id", .string(id.text)),
            ]))
        return id.text
    }

    /// The same HELP text goes to a phone at most once in this window, so an auto-responder
    /// answering our HELP reply with HELP cannot start a message loop.
    static let helpRepeatWindowMinutes = 10

    /// HELP, INFO, AYUDA: answered even when opted out (compliance replies pass the gate), unless
    /// the same answer went to the phone within the repeat window.
    static func help(_ c: Context, keyword: String, spanish: Bool) async throws -> String? {
        let texts = try await orgTexts(c.tx, orgID: c.orgID).texts
        let body = ComplianceReplies.help(texts, spanish ? .spanish : .english)
        let repeated = try await c.tx.query(
            """
            SELECT EXISTS (
                SELECT 1 FROM messages
                WHERE lead_id = \(c.lead) AND created_at > now() - \(helpRepeatWindowMinutes) * interval '1 minute'
                  AND direction = 'outbound' AND purpose = 'compliance' AND to_phone = \(c.phone) AND body = \(body)
            ) AS repeated
            """
        ).one().decode("repeated", as: Bool.self)
        let id = repeated ? nil : try await reply(c, body: body)
        try await Audit.recordSystem(
            c.tx, orgID: c.orgID, action: repeated ? "compliance.help_repeat_ignored" : "compliance.help_reply", targetType: "message",
            targetID: c.messageID.text,
            details: .object([
                ("phone", .string(c.phone)), ("keyword", .string(keyword)), ("lead_id", .string(c.lead.text)),
                ("reply_message_id", id.map { .string($0.text) } ?? .null),
            ]))
        return id?.text
    }

    /// Free text that revokes consent (FCC 24-18): an opt-out unless the org turned that off, no
    /// confirmation text (the wording was not a keyword the sender expects an answer to, and a
    /// misread one should not provoke a message), and always a review for a person.
    static func freeTextRevocation(_ c: Context, phrase: String) async throws {
        let optOutEnabled = try await orgTexts(c.tx, orgID: c.orgID).freeTextOptOut
        var optedOut = false
        if optOutEnabled {
            let recorded = try await OptOutLedger.record(
                c.tx, orgID: c.orgID, phone: c.phone, leadID: c.lead, keyword: nil, channel: "sms_reply",
                sourceMessageID: c.messageID, phoneNumberID: c.numberID)
            optedOut = true
            if recorded.isNew {
                try await Audit.recordSystem(
                    c.tx, orgID: c.orgID, action: "opt_out.record", targetType: "opt_out", targetID: recorded.optOutID,
                    details: .object([
                        ("phone", .string(c.phone)), ("channel", .string("sms_reply")), ("phrase", .string(phrase)),
                        ("inbound_message_id", .string(c.messageID.text)), ("lead_id", .string(c.lead.text)),
                        ("cancelled_messages", .number(String(recorded.cancelledMessages))),
                        ("opted_out_campaign_targets", .number(String(recorded.optedOutTargets))),
                    ]))
            }
        } else {
            optedOut = try await OptOutLedger.active(c.tx, phone: c.phone) != nil
        }
        try await flag(c, reason: "free_text_revocation", phrase: phrase, optedOut: optedOut)
    }

    /// Puts the message in front of a person.
    static func flag(_ c: Context, reason: String, phrase: String, optedOut: Bool) async throws {
        let reviewID = try await c.tx.query(
            """
            INSERT INTO inbound_reviews (org_id, message_id, lead_id, phone, reason, phrase, opted_out)
            VALUES (\(c.orgID), \(c.messageID), \(c.lead), \(c.phone), \(reason), \(phrase), \(optedOut))
            RETURNING id::text AS id
            """
        ).one().decode("id", as: String.self)
        try await Audit.recordSystem(
            c.tx, orgID: c.orgID, action: "inbound.flag_review", targetType: "inbound_review", targetID: reviewID,
            details: .object([
                ("reason", .string(reason)), ("phrase", .string(phrase)), ("opted_out", .bool(optedOut)),
                ("inbound_message_id", .string(c.messageID.text)), ("lead_id", .string(c.lead.text)),
            ]))
    }
}
