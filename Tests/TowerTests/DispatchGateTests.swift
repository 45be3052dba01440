import Foundation
import Testing
import TowerProto
import TowerStore

@testable import Tower

/// The compliance gate and the sender choice against the real database and the mock carrier:
/// each queued message ends where the rules say, and every refusal or delay is audited.
@Suite("Dispatcher gate", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchGateTests {
    struct Queued {
        var phone: String
        var purpose = "campaign"
        var zones = [DispatchFixture.zoneInsideWindow()]
        var states: [String] = []
        var campaign: UUID?
        var lead: UUID?
        var preset: UUID?
        var status = "queued"
        var sentAgo: TimeInterval?
    }

    static func insert(_ m: Queued, fixture: DispatchFixture, tx: Transaction) async throws -> UUID {
        let id = UUID()
        let number = m.sentAgo != nil ? (m.preset ?? fixture.numbers[0].id) : m.preset
        let from = m.sentAgo != nil ? fixture.numbers.first { $0.id == number }?.phone : nil
        let sentAt = m.sentAgo.map { Date().addingTimeInterval(-$0) }
        try await tx.execute(
            """
            INSERT INTO messages (id, org_id, campaign_id, lead_id, phone_number_id, from_phone, direction, to_phone, body, status,
                                  send_after, sent_at, claimed_at, idempotency_key, purpose, recipient_zones, recipient_states)
            VALUES (\(id), \(fixture.org), \(m.campaign), \(m.lead), \(number), \(from), 'outbound', \(m.phone), 'Gate test', \(m.status),
                    COALESCE(\(sentAt), now()), \(sentAt), \(sentAt), \(id.uuidString.lowercased()), \(m.purpose), \(m.zones)::text[],
                    \(m.states)::text[])
            """)
        return id
    }

    @Test func theGateSkipsDelaysAndLetsThroughAndTheSenderFollowsTheRules() async throws {
        let fixture = try await DispatchFixture.make(numberCount: 2)
        let org = fixture.org
        let env = fixture.env
        let running = fixture.campaignID
        let paused = UUID()
        let lead = UUID()
        let phone = { (n: Int) in "+1415555\(String(1000 + n))" }
        var ids: [String: UUID] = [:]
        // The owner turns the consent requirement on through OrgService.
        let session = try await env.login(fixture.ownerEmail, fixture.ownerPassword)
        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.requireConsent = true
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["require_consent"]
        let updated = try await OrgService.Client(channel: env.channel).updateOrgSettings(update, options: bearer(session.accessToken))
        #expect(updated.settings?.requireConsent == true)
        try await env.store.withTransaction(tenant: org) { tx in
            try await tx.execute(
                "INSERT INTO campaigns (id, org_id, name, kind, status, started_at, paused_at) VALUES (\(paused), \(org), 'Paused', 'broadcast', 'paused', now(), now())"
            )
            try await tx.execute("INSERT INTO leads (id, org_id, first_name) VALUES (\(lead), \(org), 'Ada')")
            // The hand-off sends to a lead only at one of its phones.
            try await tx.execute("INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(org), \(lead), 1, \(phone(10)))")
            try await tx.execute("INSERT INTO opt_outs (org_id, phone, channel) VALUES (\(org), \(phone(1)), 'sms_keyword')")
            try await tx.execute(
                """
                INSERT INTO dnc_entries (org_id, phone, source, expires_at)
                VALUES (\(org), \(phone(3)), 'national', NULL), (\(org), \(phone(4)), 'internal', now() - interval '1 day')
                """)
            // Consent for every phone but 5; phone 6's consent was revoked after it was granted.
            for n in [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12] {
                try await tx.execute(
                    """
                    INSERT INTO consent_records (org_id, phone, action, source, seller_name, recorded_at)
                    VALUES (\(org), \(phone(n)), 'granted', 'web form', 'Acme Land', now() - interval '1 day')
                    """)
            }
            try await tx.execute(
                "INSERT INTO consent_records (org_id, phone, action, source) VALUES (\(org), \(phone(6)), 'revoked', 'sms_keyword')")
            func add(_ name: String, _ m: Queued) async throws { ids[name] = try await Self.insert(m, fixture: fixture, tx: tx) }
            try await add("optedOut", Queued(phone: phone(1), campaign: running))
            try await add(
                "complianceToOptedOut", Queued(phone: phone(1), purpose: "compliance", zones: [DispatchFixture.zoneOutsideWindow()]))
            try await add("dnc", Queued(phone: phone(3), campaign: running))
            try await add("dncExpired", Queued(phone: phone(4), campaign: running))
            try await add("noConsent", Queued(phone: phone(5), campaign: running))
            try await add("revokedConsent", Queued(phone: phone(6), campaign: running))
            try await add("quietHours", Queued(phone: phone(7), zones: [DispatchFixture.zoneOutsideWindow()], campaign: running))
            for ago in [1.0, 2.0, 3.0] {
                try await add("floridaEarlier\(Int(ago))", Queued(phone: phone(8), states: ["FL"], status: "sent", sentAgo: ago * 3600))
            }
            try await add("stateCap", Queued(phone: phone(8), states: ["FL"], campaign: running))
            try await add("paused", Queued(phone: phone(9), campaign: paused))
            try await add(
                "earlierToLead", Queued(phone: phone(10), lead: lead, preset: fixture.numbers[1].id, status: "sent", sentAgo: 600))
            try await add("sticky", Queued(phone: phone(10), campaign: running, lead: lead))
            try await add("preset", Queued(phone: phone(11), purpose: "manual", preset: fixture.numbers[0].id))
            try await add("plain", Queued(phone: phone(12), campaign: running))
            try await tx.notify(channel: Dispatcher.channel)
        }

        var configuration = Dispatcher.Configuration()
        // Other suites queue messages in the same database; this dispatcher must not send theirs.
        configuration.orgs = [org]
        let dispatcher = Dispatcher(store: env.store, keys: env.keys, registry: DispatchFixture.registry, configuration: configuration)
        try await dispatcher.start()
        let decided = ["optedOut", "complianceToOptedOut", "dnc", "dncExpired", "noConsent", "revokedConsent", "sticky", "preset", "plain"]
        func rows() async throws -> [UUID: (status: String, reason: String?, from: String?, sendAfter: Date)] {
            try await env.store.withTransaction(tenant: org, readOnly: true) { tx in
                var result: [UUID: (String, String?, String?, Date)] = [:]
                for row in try await tx.query("SELECT id, status, skip_reason, from_phone, send_after FROM messages") {
                    result[try row.decode("id")] = (
                        try row.decode("status"), try row.decode("skip_reason"), try row.decode("from_phone"), try row.decode("send_after")
                    )
                }
                return result
            }
        }
        let settled = try await DispatchFixture.waitUntil(timeout: .seconds(30)) {
            let now = try await rows()
            return decided.allSatisfy { !["queued", "claimed", "sending"].contains(now[ids[$0]!]!.status) }
                && !now.values.contains { $0.status == "claimed" || $0.status == "sending" }
        }
        await dispatcher.stop()
        #expect(settled)
        let final = try await rows()
        func status(_ name: String) -> String { final[ids[name]!]!.status }
        func reason(_ name: String) -> String? { final[ids[name]!]!.reason }

        #expect(status("optedOut") == "skipped" && reason("optedOut") == "opted_out")
        #expect(status("complianceToOptedOut") == "sent", "compliance replies skip the gate, quiet hours included")
        #expect(status("dnc") == "skipped" && reason("dnc") == "dnc")
        #expect(status("dncExpired") == "sent")
        #expect(status("noConsent") == "skipped" && reason("noConsent") == "no_consent")
        #expect(status("revokedConsent") == "skipped" && reason("revokedConsent") == "no_consent")
        #expect(status("quietHours") == "queued" && final[ids["quietHours"]!]!.sendAfter > Date().addingTimeInterval(3600))
        // Three Florida messages in the last 24 h: the next waits until the oldest is 24 h old.
        let capFrees = final[ids["floridaEarlier3"]!]!.sendAfter.addingTimeInterval(24 * 3600)
        #expect(status("stateCap") == "queued" && abs(final[ids["stateCap"]!]!.sendAfter.timeIntervalSince(capFrees)) < 1)
        #expect(status("paused") == "queued")
        #expect(final[ids["sticky"]!]!.from == fixture.numbers[1].phone, "the number that last messaged the lead sends again")
        #expect(final[ids["preset"]!]!.from == fixture.numbers[0].phone)
        #expect(status("plain") == "sent" && status("sticky") == "sent" && status("preset") == "sent")

        let audits = try await env.store.withTransaction(tenant: org, readOnly: true) { tx in
            try await tx.query("SELECT action, target_id, metadata->>'reason' AS reason FROM audit_events WHERE target_type = 'message'")
                .map {
                    "\(try $0.decode("action", as: String.self)) \(try $0.decode("reason", as: String.self))"
                }
        }
        #expect(
            audits.sorted()
                == [
                    "message.delayed quiet_hours", "message.delayed state_cap", "message.skipped dnc", "message.skipped no_consent",
                    "message.skipped no_consent", "message.skipped opted_out",
                ])
        // The mock carrier got exactly the messages marked sent.
        let ledgerKeys = Set(fixture.ledger().map(\.key))
        let sentKeys = Set(decided.filter { status($0) == "sent" }.map { ids[$0]!.uuidString.lowercased() })
        #expect(ledgerKeys == sentKeys)
    }
}
