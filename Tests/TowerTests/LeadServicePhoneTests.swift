import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// UpdateLead's "phones" path over loopback HTTP/2 against the real database: replacing,
/// reordering, validating, refusing another lead's phone, and what happens to messages, opt-outs
/// and consent of the phones removed and added.
@Suite("Lead phones")
struct LeadServicePhoneTests {
    static func phone(_ number: String, _ type: PhoneType = .mobile) -> LeadPhone {
        var phone = LeadPhone()
        phone.phone = number
        phone.type = type
        return phone
    }

    static func setPhones(_ leadID: String, _ phones: [LeadPhone]) -> UpdateLeadRequest {
        var update = UpdateLeadRequest()
        update.leadID = leadID
        update.lead = Lead()
        update.lead?.phones = phones
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["phones"]
        return update
    }

    static func rpcError(_ call: () async throws -> some Any) async -> RPCError? {
        do {
            _ = try await call()
            return nil
        } catch {
            return error as? RPCError
        }
    }

    @Test func planKeepsTheRowsOfKeptPhones() {
        let current = [
            LeadPhoneReplacement.Stored(id: "a", phone: "+15128670001"), .init(id: "b", phone: "+15128670002"),
            .init(id: "c", phone: "+15128670003"),
        ]
        let plan = LeadPhoneReplacement.plan(
            current: current,
            wanted: [
                .init(e164: "+15128670003", type: "voip"), .init(e164: "+15128670004", type: "unknown"),
                .init(e164: "+15128670001", type: "mobile"),
            ])
        #expect(plan.kept == [.init(id: "c", position: 1, type: "voip"), .init(id: "a", position: 3, type: "mobile")])
        #expect(plan.added == [.init(position: 2, phone: "+15128670004", type: "unknown")])
        #expect(plan.removed == [current[1]])
        #expect(LeadPhoneReplacement.plan(current: current, wanted: []).removed == current)
    }

    @Test func phonesAreReplacedInOrderAndValidatedLikeAnImport() async throws {
        let (fixture, options, _) = try await LeadImportTests.org("Phones replace")
        let client = fixture.client
        let created = try await client.createLead(
            LeadServiceTests.newLead("Ann", phones: ["5128671001", "5128671002", "5128671003"]), options: options)
        let ids = Dictionary(uniqueKeysWithValues: created.phones.map { ($0.phone, $0.id) })

        // A full rotation: every kept phone moves, in one statement (migration 0019).
        let rotated = try await client.updateLead(
            Self.setPhones(created.id, [Self.phone("(512) 867-1002"), Self.phone("512.867.1003", .voip), Self.phone("+1 512 867 1001")]),
            options: options)
        #expect(rotated.phones.map(\.phone) == ["+15128671002", "+15128671003", "+15128671001"])
        #expect(rotated.phones.map(\.position) == [1, 2, 3])
        #expect(rotated.phones.map(\.type) == [.mobile, .voip, .mobile])
        #expect(rotated.phones.map(\.id) == ["+15128671002", "+15128671003", "+15128671001"].map { ids[$0]! })

        // Remove one, add one, repeat one (kept once): positions follow the order given.
        let replaced = try await client.updateLead(
            Self.setPhones(
                created.id, [Self.phone("5128671003", .landline), Self.phone("5128671004", .unspecified), Self.phone("5128671003")]),
            options: options)
        #expect(replaced.phones.map(\.phone) == ["+15128671003", "+15128671004"])
        #expect(replaced.phones.map(\.type) == [.landline, .unspecified])
        #expect(replaced.phones.first?.id == ids["+15128671003"])
        #expect(replaced.phones.last?.consentStatus == .unknown)

        // Bad phones: each named by index with the rule and the fix; nothing is written.
        let n11 = await Self.rpcError {
            try await client.updateLead(
                Self.setPhones(created.id, [Self.phone("5128671005"), Self.phone("(911) 555-1234")]), options: options)
        }
        #expect(n11?.code == .invalidArgument)
        #expect(
            n11?.message == "lead.phones[1].phone: N11 codes (211, 311 … 911) are not area codes; give a US number such as (512) 867-5309")
        let fiction = await Self.rpcError {
            try await client.updateLead(Self.setPhones(created.id, [Self.phone("512-555-0142"), Self.phone("12")]), options: options)
        }
        #expect(fiction?.code == .invalidArgument)
        #expect(fiction?.message.hasPrefix("lead.phones[0].phone: 555-0100 to 555-0199 are reserved for fiction;") == true)
        #expect(fiction?.message.contains("; lead.phones[1].phone: not 10 digits") == true)
        let four = await Self.rpcError {
            try await client.updateLead(
                Self.setPhones(created.id, (1...4).map { Self.phone("51286710\(10 + $0)") }), options: options)
        }
        #expect(four?.code == .invalidArgument)
        #expect(four?.message.hasPrefix("lead.phones: a lead has at most 3 phones") == true)
        #expect(try await client.getLead(.with(created.id), options: options).phones == replaced.phones)

        // Without the path phones are untouched; with it and an empty list they are all removed.
        var score = Self.setPhones(created.id, [])
        score.lead?.score = 40
        score.updateMask?.paths = ["score"]
        #expect(try await client.updateLead(score, options: options).phones == replaced.phones)
        let none = try await client.updateLead(Self.setPhones(created.id, []), options: options)
        #expect(none.phones.isEmpty)
        #expect(none.score == 40)
    }

    @Test func anotherLeadsPhoneIsRefusedByTheImportsDedupeRule() async throws {
        let (fixture, options, _) = try await LeadImportTests.org("Phones dedupe")
        let client = fixture.client
        let first = try await client.createLead(LeadServiceTests.newLead("Bea", phones: ["5128672001"]), options: options)
        let second = try await client.createLead(LeadServiceTests.newLead("Cal", phones: ["5128672002"]), options: options)
        let error = await Self.rpcError {
            try await client.updateLead(
                Self.setPhones(first.id, [Self.phone("5128672001"), Self.phone("(512) 867-2002")]), options: options)
        }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message.hasPrefix("lead.phones[1].phone: +15128672002 is a phone of lead \(second.id);") == true)
        #expect(try await client.getLead(.with(first.id), options: options) == first)
        // The index is the one given, also after a repeated number.
        let repeated = await Self.rpcError {
            try await client.updateLead(
                Self.setPhones(first.id, [Self.phone("5128672001"), Self.phone("512 867 2001"), Self.phone("5128672002")]),
                options: options)
        }
        #expect(repeated?.message.hasPrefix("lead.phones[2].phone: +15128672002 is a phone of lead \(second.id);") == true)
        // CreateLead refuses it too.
        let create = await Self.rpcError {
            try await client.createLead(LeadServiceTests.newLead("Cal again", phones: ["5128672009", "(512) 867-2002"]), options: options)
        }
        #expect(create?.code == .alreadyExists)
        #expect(create?.message.hasPrefix("lead.phones[1].phone: +15128672002 is a phone of lead \(second.id);") == true)

        // Another org's lead with that phone is no obstacle, and is not named.
        let (_, otherOptions, _) = try await LeadImportTests.org("Phones dedupe, other org")
        let other = try await client.createLead(LeadServiceTests.newLead("Dan", phones: ["5128679001"]), options: otherOptions)
        let moved = try await client.updateLead(Self.setPhones(other.id, [Self.phone("5128672002")]), options: otherOptions)
        #expect(moved.phones.map(\.phone) == ["+15128672002"])
    }

    @Test func concurrentUpdatesCannotGiveOnePhoneToTwoLeads() async throws {
        let (fixture, options, org) = try await LeadImportTests.org("Phones race")
        let client = fixture.client
        for round in 0..<10 {
            let contested = "+1512867\(4100 + round)"
            var leads: [Lead] = []
            for side in 0..<2 {
                leads.append(
                    try await client.createLead(
                        LeadServiceTests.newLead("Race", phones: ["+1512867\(4200 + round * 2 + side)"]), options: options))
            }
            let outcomes = await withTaskGroup(of: RPCError.Code?.self) { group in
                for lead in leads {
                    group.addTask {
                        await status {
                            try await client.updateLead(
                                Self.setPhones(lead.id, [Self.phone(lead.phones[0].phone), Self.phone(contested)]), options: options)
                        }
                    }
                }
                var codes: [RPCError.Code?] = []
                for await code in group { codes.append(code) }
                return codes
            }
            #expect(outcomes.filter { $0 == nil }.count == 1)
            #expect(outcomes.filter { $0 == .alreadyExists }.count == 1)
            let holders = try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
                try await tx.query("SELECT count(*) AS n FROM lead_phones WHERE phone = \(contested)").one().decode("n", as: Int.self)
            }
            #expect(holders == 1)
        }
    }

    @Test func removedPhonesLoseTheirQueuedMessagesAndKeepOptOutsAndConsent() async throws {
        let (fixture, options, org) = try await LeadImportTests.org("Phones messages")
        let client = fixture.client
        let (a, b, c) = ("+15128673001", "+15128673002", "+15128673003")
        let lead = try await client.createLead(LeadServiceTests.newLead("Eve", phones: [a, b, c]), options: options)
        let rowOf = Dictionary(uniqueKeysWithValues: lead.phones.map { ($0.phone, $0.id) })
        // Queued (campaign and compliance), and claimed by a dispatcher, to phones kept and removed;
        // b is opted out and c has written consent.
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            for (body, phone, status, purpose) in [
                ("to b", b, "queued", "campaign"), ("stop reply to b", b, "queued", "compliance"), ("to a", a, "queued", "manual"),
                ("claimed to c", c, "claimed", "campaign"),
            ] {
                try await tx.execute(
                    """
                    INSERT INTO messages (id, org_id, lead_id, lead_phone_id, direction, to_phone, body, status, purpose, send_after,
                                          idempotency_key, claimed_at, claimed_by)
                    SELECT x.id, \(org), \(UUIDText(lead.id)!), \(UUIDText(rowOf[phone]!)!), 'outbound', \(phone), \(body), \(status),
                           \(purpose), now() + interval '1 day', x.id::text,
                           CASE WHEN \(status) = 'claimed' THEN now() END, CASE WHEN \(status) = 'claimed' THEN 'test' END
                    FROM (SELECT gen_random_uuid() AS id) x
                    """)
            }
            // Two running campaigns target the lead: one through b, one through a.
            for (name, phone) in [("through b", b), ("through a", a)] {
                try await tx.execute(
                    """
                    WITH c AS (
                        INSERT INTO campaigns (org_id, name, kind, status, started_at)
                        VALUES (\(org), \(name), 'broadcast', 'running', now()) RETURNING id
                    )
                    INSERT INTO campaign_targets (org_id, campaign_id, lead_id, lead_phone_id, status)
                    SELECT \(org), c.id, \(UUIDText(lead.id)!), \(UUIDText(rowOf[phone]!)!), 'active' FROM c
                    """)
            }
            try await tx.execute("INSERT INTO opt_outs (org_id, phone, channel) VALUES (\(org), \(b), 'manual')")
            try await tx.execute(
                "INSERT INTO consent_records (org_id, phone, action, source, seller_name) VALUES (\(org), \(c), 'granted', 'web form', 'Acme Land')"
            )
        }

        let kept = try await client.updateLead(Self.setPhones(lead.id, [Self.phone(a)]), options: options)
        #expect(kept.phones.map(\.phone) == [a])

        struct Row: Hashable {
            var body: String
            var status: String
            var reason: String?
            var claimedBy: String?
        }
        let (messages, cancelAudits, updateAudit, optedOut, consents, targets) = try await fixture.env.store.withTransaction(
            tenant: org, readOnly: true
        ) { tx in
            let messages = try await tx.query("SELECT body, status, skip_reason, claimed_by, id::text AS id FROM messages ORDER BY body")
                .map {
                    (
                        Row(
                            body: try $0.decode("body"), status: try $0.decode("status"), reason: try $0.decode("skip_reason"),
                            claimedBy: try $0.decode("claimed_by")), try $0.decode("id", as: String.self)
                    )
                }
            let audits = try await tx.query(
                "SELECT target_id, metadata->>'skip_reason' AS reason, metadata->>'phone' AS phone FROM audit_events WHERE action = 'message.cancel'"
            ).map {
                "\(try $0.decode("target_id", as: String.self)) \(try $0.decode("reason", as: String.self)) \(try $0.decode("phone", as: String.self))"
            }
            let update = try await tx.query(
                """
                SELECT (metadata->'phones_removed')::text AS removed, (metadata->>'cancelled_messages')::int8 AS cancelled FROM audit_events
                WHERE action = 'lead.update' AND target_id = \(lead.id)
                """
            ).one()
            let optedOut = try await tx.query("SELECT count(*) AS n FROM opt_outs WHERE phone = \(b) AND revoked_at IS NULL").one()
                .decode("n", as: Int.self)
            let consents = try await tx.query("SELECT count(*) AS n FROM consent_records WHERE phone = \(c)").one().decode(
                "n", as: Int.self)
            let targets = try await tx.query(
                """
                SELECT c.name || ' ' || t.status || ' ' || coalesce(t.skip_reason, '-') AS target
                FROM campaign_targets t JOIN campaigns c ON c.id = t.campaign_id ORDER BY c.name
                """
            ).map { try $0.decode("target", as: String.self) }
            return (
                messages, Set(audits),
                "\(try update.decode("removed", as: String.self)) \(try update.decode("cancelled", as: Int64.self))", optedOut, consents,
                targets
            )
        }
        #expect(
            messages.map(\.0) == [
                Row(body: "claimed to c", status: "cancelled", reason: "phone_removed", claimedBy: nil),
                Row(body: "stop reply to b", status: "queued", reason: nil, claimedBy: nil),
                Row(body: "to a", status: "queued", reason: nil, claimedBy: nil),
                Row(body: "to b", status: "cancelled", reason: "phone_removed", claimedBy: nil),
            ])
        let id = Dictionary(uniqueKeysWithValues: messages.map { ($0.0.body, $0.1) })
        #expect(cancelAudits == ["\(id["claimed to c"]!) phone_removed \(c)", "\(id["to b"]!) phone_removed \(b)"])
        #expect(updateAudit == "[\"\(b)\", \"\(c)\"] 2")
        #expect(targets == ["through a active -", "through b skipped phone_removed"])
        #expect(optedOut == 1)
        #expect(consents == 1)

        // Added back, each phone takes the consent status the org's records give it.
        let back = try await client.updateLead(Self.setPhones(lead.id, [Self.phone(a), Self.phone(b), Self.phone(c)]), options: options)
        #expect(back.phones.map(\.consentStatus) == [.unknown, .revoked, .granted])
        #expect(back.phones.first?.id == rowOf[a])
        #expect(back.phones[1].id != rowOf[b])
    }
}
