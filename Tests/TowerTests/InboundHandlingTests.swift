import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// Inbound messages against the real database: stored on the lead's thread, classified, and
/// acted on (opt-out across the org, queued messages cancelled, one confirmation, HELP,
/// resubscribe, free-text revocations), idempotently, with an audit event per decision.
@Suite("Inbound handling")
struct InboundHandlingTests {
    @Test func stopOptsOutOrgWideCancelsTheQueueAndConfirmsOnce() async throws {
        let f = try await InboundFixture.make("Inbound STOP")
        try await f.setBrand("Sunbelt Land")
        let ada = try await f.addLead()
        let other = try await f.addLead(firstName: "Grace")
        let (campaign, campaignMessage) = try await f.queueCampaignMessage(lead: ada.lead, leadPhone: ada.leadPhone, phone: ada.phone)
        let (_, otherMessage) = try await f.queueCampaignMessage(lead: other.lead, leadPhone: other.leadPhone, phone: other.phone)
        // A second number of the pool, with a queued manual message from it: the opt-out is org-wide.
        let secondNumber = InboundFixture.randomPhone()
        let (manualFromSecond, earlierCompliance) = try await f.env.store.withTransaction(tenant: f.org) { tx in
            let numberID = try await tx.query(
                """
                INSERT INTO phone_numbers (org_id, carrier_connection_id, phone, state)
                VALUES (\(f.orgText), \(UUIDText(f.connectionID)), \(secondNumber), 'active') RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            var manual = OutboundQueue.Outbound(toPhone: ada.phone, body: "Following up", purpose: "manual")
            manual.phoneNumberID = UUIDText(numberID)
            try await OutboundQueue.enqueue(tx, orgID: f.orgText, manual)
            let compliance = OutboundQueue.Outbound(toPhone: ada.phone, body: "Earlier HELP answer", purpose: "compliance")
            try await OutboundQueue.enqueue(tx, orgID: f.orgText, compliance)
            return (manual.id.text, compliance.id.text)
        }

        let providerID = "SM" + UUID().uuidString
        let outcome = try #require(try await f.receive(from: ada.phone, body: "  Stop. ", providerID: providerID))
        #expect(outcome.intent == .optOut(keyword: "STOP"))
        #expect(outcome.leadID == ada.lead && !outcome.createdUnknownLead)

        // Stored on Ada's thread, classified, to our number.
        let stored = try await f.rows(
            "SELECT lead_id::text AS l, phone_number_id::text AS n, intent, status FROM messages WHERE id = \(UUIDText(outcome.messageID))"
        ).one()
        #expect(try stored.decode("l", as: String.self) == ada.lead)
        #expect(try stored.decode("n", as: String.self) == f.numberID)
        #expect(try stored.decode("intent", as: String.self) == "opt_out")
        #expect(try stored.decode("status", as: String.self) == "received")

        // One active opt-out for the phone, not tied to any number.
        let optOut = try await f.rows(
            "SELECT keyword, channel, confirmation_message_id::text AS c, source_message_id::text AS s FROM opt_outs WHERE phone = \(ada.phone) AND revoked_at IS NULL"
        )
        #expect(optOut.count == 1)
        #expect(try optOut.one().decode("keyword", as: String.self) == "STOP")
        #expect(try optOut.one().decode("channel", as: String.self) == "sms_keyword")
        #expect(try optOut.one().decode("s", as: String.self) == outcome.messageID)

        // Queued campaign and manual messages to Ada: cancelled as opted_out. The compliance
        // message and Grace's message: untouched.
        let statuses = try await f.rows("SELECT id::text AS id, status, skip_reason FROM messages WHERE direction = 'outbound'")
        var byID: [String: (String, String?)] = [:]
        for row in statuses { byID[try row.decode("id")] = (try row.decode("status"), try row.decode("skip_reason")) }
        #expect(byID[campaignMessage]?.0 == "cancelled" && byID[campaignMessage]?.1 == "opted_out")
        #expect(byID[manualFromSecond]?.0 == "cancelled" && byID[manualFromSecond]?.1 == "opted_out")
        #expect(byID[earlierCompliance]?.0 == "queued")
        #expect(byID[otherMessage]?.0 == "queued")
        #expect(
            try await f.count("SELECT count(*) FROM campaign_targets WHERE campaign_id = \(UUIDText(campaign)) AND status = 'opted_out'")
                == 1)
        #expect(
            try await f.count("SELECT count(*) FROM campaign_targets WHERE lead_id = \(UUIDText(other.lead)) AND status = 'active'") == 1)

        // Exactly one confirmation, from the number Ada texted, naming the brand.
        let confirmation = try #require(outcome.replyMessageID)
        let replies = try await f.replies(to: ada.phone)
        #expect(replies.count == 2)  // the earlier compliance message + the confirmation
        #expect(replies.last?.body.contains("Sunbelt Land") == true && replies.last?.body.contains("no more messages") == true)
        #expect(replies.last?.numberID == f.numberID)
        let queued = try await f.rows(
            "SELECT status, idempotency_key, send_after <= now() AS due, segments, encoding FROM messages WHERE id = \(UUIDText(confirmation))"
        ).one()
        #expect(try queued.decode("status", as: String.self) == "queued")
        #expect(try queued.decode("idempotency_key", as: String.self) == confirmation)
        #expect(try queued.decode("due", as: Bool.self))
        #expect(try queued.decode("encoding", as: String.self) == "gsm7")
        #expect(try optOut.one().decode("c", as: String.self) == confirmation)

        // Lead replied, consent revoked, decisions audited.
        #expect(try await f.count("SELECT count(*) FROM leads WHERE id = \(UUIDText(ada.lead)) AND status = 'replied'") == 1)
        #expect(try await f.count("SELECT count(*) FROM lead_phones WHERE phone = \(ada.phone) AND consent_status = 'revoked'") == 1)
        #expect(try await f.count("SELECT count(*) FROM consent_records WHERE phone = \(ada.phone) AND action = 'revoked'") == 1)
        let audit = try await f.rows(
            "SELECT metadata->>'cancelled_messages' AS c, metadata->>'confirmation_message_id' AS m, actor_user_id IS NULL AS system FROM audit_events WHERE action = 'opt_out.record'"
        ).one()
        #expect(try audit.decode("c", as: String.self) == "2")
        #expect(try audit.decode("m", as: String.self) == confirmation)
        #expect(try audit.decode("system", as: Bool.self))

        // The carrier redelivers the same event: nothing changes.
        func snapshot() async throws -> [Int] {
            [
                try await f.count("SELECT count(*) FROM messages"), try await f.count("SELECT count(*) FROM opt_outs"),
                try await f.count("SELECT count(*) FROM audit_events"), try await f.count("SELECT count(*) FROM leads"),
            ]
        }
        let before = try await snapshot()
        #expect(try await f.receive(from: ada.phone, body: "  Stop. ", providerID: providerID) == nil)
        #expect(try await snapshot() == before)

        // A second STOP (a new message) is stored, but no second confirmation and no new opt-out.
        let again = try #require(try await f.receive(from: ada.phone, body: "STOP"))
        #expect(again.replyMessageID == nil)
        #expect(try await f.replies(to: ada.phone).count == 2)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(ada.phone)") == 1)
        #expect(try await f.auditActions().filter { $0.hasPrefix("opt_out.") } == ["opt_out.record"])

        // START ends the opt-out and is confirmed; STOP after that is a new opt-out, confirmed again.
        let start = try #require(try await f.receive(from: ada.phone, body: "start"))
        #expect(start.intent == .resubscribe(keyword: "START") && start.replyMessageID != nil)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(ada.phone) AND revoked_at IS NULL") == 0)
        #expect(try await f.count("SELECT count(*) FROM lead_phones WHERE phone = \(ada.phone) AND consent_status = 'unknown'") == 1)
        #expect(try await f.replies(to: ada.phone).last?.body.contains("resubscribed") == true)
        let stopAgain = try #require(try await f.receive(from: ada.phone, body: "STOP"))
        #expect(stopAgain.replyMessageID != nil)
        #expect(try await f.replies(to: ada.phone).count == 4)
        #expect(
            try await f.auditActions().filter { $0.hasPrefix("opt_out.") } == ["opt_out.record", "opt_out.revoke", "opt_out.record"])

        // YES from a phone that is not opted out is just a reply: no confirmation, no audit.
        let yes = try #require(try await f.receive(from: other.phone, body: "Yes"))
        #expect(yes.intent == .resubscribe(keyword: "YES") && yes.replyMessageID == nil)
        #expect(try await f.replies(to: other.phone).isEmpty)
    }

    @Test func everyOptOutKeywordOptsOutWithOneReplyInTheSendersLanguage() async throws {
        let f = try await InboundFixture.make("Inbound keyword sweep")
        try await f.setBrand("Tierra Co")
        for keyword in InboundKeywordTableTests.optOutKeywords {
            let lead = try await f.addLead()
            let outcome = try #require(try await f.receive(from: lead.phone, body: keyword.lowercased() + "!"))
            guard case .optOut = outcome.intent else {
                Issue.record("\(keyword) did not opt out: \(outcome.intent)")
                continue
            }
            #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone) AND revoked_at IS NULL") == 1)
            let replies = try await f.replies(to: lead.phone)
            #expect(replies.count == 1, "\(keyword)")
            let spanish = InboundKeywordTableTests.spanishOptOut.contains(keyword)
            #expect(replies.first?.body.contains(spanish ? "se ha dado de baja" : "unsubscribed") == true, "\(keyword): \(replies)")
            #expect(replies.first?.body.hasPrefix("Tierra Co:") == true)
        }
    }

    @Test func helpIsAnsweredEvenWhenOptedOutAndOrgTextsWin() async throws {
        let f = try await InboundFixture.make("Inbound HELP")
        try await f.setBrand("Sunbelt Land")
        let lead = try await f.addLead()
        let help = try #require(try await f.receive(from: lead.phone, body: "Help?"))
        #expect(help.intent == .help(keyword: "HELP"))
        var replies = try await f.replies(to: lead.phone)
        #expect(replies.count == 1)
        for part in ["Sunbelt Land", "Msg & data rates may apply", "Reply STOP", "frequency"] {
            #expect(replies[0].body.contains(part), "\(part)")
        }
        #expect(replies[0].numberID == f.numberID)

        _ = try await f.receive(from: lead.phone, body: "ALTO")
        replies = try await f.replies(to: lead.phone)
        #expect(replies.count == 2 && replies[1].body.contains("Usted se ha dado de baja"))
        // AYUDA from the now opted-out phone is still answered, in Spanish.
        _ = try await f.receive(from: lead.phone, body: "ayuda")
        replies = try await f.replies(to: lead.phone)
        #expect(replies.count == 3 && replies[2].body.contains("tarifas de mensajes y datos"))
        #expect(try await f.auditActions().filter { $0 == "compliance.help_reply" }.count == 2)
        // The same HELP again within ten minutes (an auto-responder echoing us): audited, not answered.
        let echo = try #require(try await f.receive(from: lead.phone, body: "AYUDA"))
        #expect(echo.intent == .help(keyword: "AYUDA") && echo.replyMessageID == nil)
        #expect(try await f.replies(to: lead.phone).count == 3)
        #expect(try await f.auditActions().last == "compliance.help_repeat_ignored")

        // The org's own texts replace the built-in ones.
        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.stopReplyText = "Sunbelt Land: unsubscribed. No more texts."
        update.settings?.helpReplyText = "Sunbelt Land help: call 512-555-0100. Msg & data rates may apply. Reply STOP to opt out."
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["stop_reply_text", "help_reply_text"]
        _ = try await f.orgs.updateOrgSettings(update, options: f.options)
        let second = try await f.addLead()
        _ = try await f.receive(from: second.phone, body: "INFO")
        _ = try await f.receive(from: second.phone, body: "unsubscribe")
        #expect(try await f.replies(to: second.phone).map(\.body) == [update.settings!.helpReplyText, update.settings!.stopReplyText])
    }

    @Test func unknownSendersGetOneLeadAndRepliesMoveLeadsForwardOnly() async throws {
        let f = try await InboundFixture.make("Inbound unknown")
        let stranger = InboundFixture.randomPhone()
        let providerID = "SM" + UUID().uuidString
        let first = try #require(try await f.receive(from: stranger, body: "Who is this?", providerID: providerID))
        #expect(first.createdUnknownLead && first.intent == .message && first.replyMessageID == nil)
        let lead = try await f.rows(
            "SELECT source, status, custom_fields->>'unknown_sender' AS u FROM leads WHERE id = \(UUIDText(first.leadID))"
        ).one()
        #expect(try lead.decode("source", as: String.self) == InboundProcessor.unknownSenderSource)
        #expect(try lead.decode("status", as: String.self) == "replied")
        #expect(try lead.decode("u", as: String.self) == "true")
        #expect(try await f.count("SELECT count(*) FROM lead_phones WHERE phone = \(stranger)") == 1)
        #expect(try await f.receive(from: stranger, body: "Who is this?", providerID: providerID) == nil)
        let second = try #require(try await f.receive(from: stranger, body: "Hello?"))
        #expect(second.leadID == first.leadID && !second.createdUnknownLead)
        #expect(try await f.count("SELECT count(*) FROM leads") == 1)
        #expect(try await f.auditActions() == ["lead.create_unknown_sender"])

        // Status: new -> replied; interested stays interested. Targets: replied only in running campaigns.
        let fresh = try await f.addLead()
        let keen = try await f.addLead()
        try await f.env.store.withTransaction(tenant: f.org) { tx in
            try await tx.execute("UPDATE leads SET status = 'interested' WHERE id = \(UUIDText(keen.lead))")
        }
        let (running, _) = try await f.queueCampaignMessage(lead: fresh.lead, leadPhone: fresh.leadPhone, phone: fresh.phone)
        let (paused, _) = try await f.queueCampaignMessage(
            lead: fresh.lead, leadPhone: fresh.leadPhone, phone: fresh.phone, campaignStatus: "paused")
        _ = try await f.receive(from: fresh.phone, body: "Maybe, call me")
        _ = try await f.receive(from: keen.phone, body: "Call me tomorrow")
        #expect(try await f.count("SELECT count(*) FROM leads WHERE id = \(UUIDText(fresh.lead)) AND status = 'replied'") == 1)
        #expect(try await f.count("SELECT count(*) FROM leads WHERE id = \(UUIDText(keen.lead)) AND status = 'interested'") == 1)
        #expect(
            try await f.count("SELECT count(*) FROM campaign_targets WHERE campaign_id = \(UUIDText(running)) AND status = 'replied'") == 1)
        #expect(
            try await f.count("SELECT count(*) FROM campaign_targets WHERE campaign_id = \(UUIDText(paused)) AND status = 'active'") == 1)
        // A conversational reply cancels nothing.
        #expect(try await f.count("SELECT count(*) FROM messages WHERE status = 'cancelled'") == 0)
    }

    @Test func freeTextRevocationsAreOptOutsByDefaultAndAlwaysReviewed() async throws {
        let f = try await InboundFixture.make("Inbound free text")
        let lead = try await f.addLead()
        let (_, queued) = try await f.queueCampaignMessage(lead: lead.lead, leadPhone: lead.leadPhone, phone: lead.phone)
        let revocation = try #require(try await f.receive(from: lead.phone, body: "Please stop texting me."))
        #expect(revocation.intent == .revocation(phrase: "stop texting") && revocation.flaggedForReview)
        #expect(revocation.replyMessageID == nil)
        #expect(try await f.replies(to: lead.phone).isEmpty)
        let optOut = try await f.rows("SELECT channel, keyword FROM opt_outs WHERE phone = \(lead.phone) AND revoked_at IS NULL").one()
        #expect(try optOut.decode("channel", as: String.self) == "sms_reply")
        #expect(try await f.count("SELECT count(*) FROM messages WHERE id = \(UUIDText(queued)) AND status = 'cancelled'") == 1)
        let review = try await f.rows(
            "SELECT reason, phrase, opted_out, status FROM inbound_reviews WHERE message_id = \(UUIDText(revocation.messageID))"
        ).one()
        #expect(try review.decode("reason", as: String.self) == "free_text_revocation")
        #expect(try review.decode("opted_out", as: Bool.self))
        #expect(try review.decode("status", as: String.self) == "open")
        #expect(try await f.auditActions() == ["opt_out.record", "inbound.flag_review"])
        // An explicit STOP later gets the confirmation the free-text opt-out never sent, once.
        let stop = try #require(try await f.receive(from: lead.phone, body: "STOP"))
        #expect(stop.replyMessageID != nil)
        _ = try await f.receive(from: lead.phone, body: "STOP")
        #expect(try await f.replies(to: lead.phone).count == 1)
        #expect(try await f.auditActions().last == "opt_out.confirm")

        // With free_text_opt_out off: flagged, not opted out. A keyword inside text: flagged only.
        try await f.setBrand("Quiet Co", freeTextOptOut: false)
        #expect(try await f.orgs.getOrg(GetOrgRequest(), options: f.options).settings?.freeTextOptOut == false)
        let other = try await f.addLead()
        let flagged = try #require(try await f.receive(from: other.phone, body: "remove me from your list"))
        #expect(flagged.flaggedForReview)
        let nearMiss = try #require(try await f.receive(from: other.phone, body: "Can you stop by tomorrow?"))
        #expect(nearMiss.intent == .possibleRevocation(word: "stop") && nearMiss.flaggedForReview)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(other.phone)") == 0)
        #expect(
            try await f.rows("SELECT reason FROM inbound_reviews WHERE phone = \(other.phone) AND NOT opted_out ORDER BY created_at")
                .map { try $0.decode("reason", as: String.self) } == ["free_text_revocation", "possible_revocation"])
    }

    /// Two STOPs from one phone racing (the carrier retried with a new id, or two numbers got
    /// one each): the phone lock serialises them into one opt-out and one confirmation.
    @Test func racingStopsMakeOneOptOutAndOneConfirmation() async throws {
        let f = try await InboundFixture.make("Inbound race")
        let lead = try await f.addLead()
        async let a = f.receive(from: lead.phone, body: "STOP")
        async let b = f.receive(from: lead.phone, body: "QUIT")
        let outcomes = try await [a, b]
        #expect(outcomes.compactMap { $0?.replyMessageID }.count == 1)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone)") == 1)
        #expect(try await f.replies(to: lead.phone).count == 1)
    }

    /// The opt-out half of the race rule: recording an opt-out needs the phone's lock
    /// exclusively, so it waits for a dispatcher holding it shared (between its opt-out check and
    /// the carrier hand-off), and that dispatcher never sees a half-recorded opt-out.
    @Test(.timeLimit(.minutes(1))) func optOutWaitsForAHandOffInProgress() async throws {
        let f = try await InboundFixture.make("Inbound lock")
        let lead = try await f.addLead()
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let dispatcher = Task {
            try await f.env.store.withTransaction(tenant: f.org) { tx in
                try await tx.execute("SELECT pg_advisory_xact_lock_shared(ctower_phone_lock_key(\(f.orgText), \(lead.phone)))")
                holding.yield()
                for await _ in released { break }
                // Still inside the hand-off: the opt-out has not happened.
                return try await tx.query("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone)").one().decode(0, as: Int.self)
            }
        }
        for await _ in held { break }
        let stop = Task { try await f.receive(from: lead.phone, body: "STOP") }
        // Wait until the STOP is blocked on the lock (observed in pg_locks, not by sleeping).
        while try await f.env.store.withTransaction(
            tenant: nil,
            { tx in
                try await tx.query(
                    """
                    SELECT count(*) FROM pg_locks
                    WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND NOT granted AND objsubid = 1
                      AND ((classid::bigint << 32) | objid::bigint) = ctower_phone_lock_key(\(f.orgText), \(lead.phone))
                    """
                ).one().decode(0, as: Int.self)
            }) == 0
        {
            await Task.yield()
        }
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone)") == 0)
        release.yield()
        #expect(try await dispatcher.value == 0)
        #expect(try await stop.value?.replyMessageID != nil)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone)") == 1)
    }
}
