import Foundation
import Logging
import Testing
import TowerCarrierHost
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// The whole inbound path with real plugin processes: a signed Twilio webhook through the
/// ingress, and replies the mock carrier simulates on its own, each stored, classified, acted on
/// and announced to the org's live subscription.
@Suite("Inbound whole path", .enabled(if: IntegrationServiceTests.pluginsBuilt, "build the plugins first: swift build --build-tests"))
struct InboundWholePathTests {
    /// A registry whose plugins' own events go where the server sends them.
    static let registry: Task<CarrierRegistry, any Error> = Task {
        let env = try await IdentityEnvironment.get()
        var configuration = CarrierRegistry.Configuration(pluginDirectories: [IntegrationServiceTests.pluginDirectory], searchPATH: false)
        configuration.adjust = { $0.shutdownGrace = .seconds(1) }
        let registry = CarrierRegistry(configuration: configuration)
        let store = env.store
        await registry.setEventSink { event in
            await CarrierWebhookIngress.recordUnsolicited(event, store: store, logger: Logger(label: "test.inbound"))
        }
        return registry
    }

    @Test func signedTwilioWebhookStopIsStoredActedOnAndIdempotent() async throws {
        let f = try await InboundFixture.make("Inbound webhook", connection: IntegrationServiceTests.twilioRequest())
        try await f.setBrand("Sunbelt Land")
        let ada = try await f.addLead()
        let (_, campaignMessage) = try await f.queueCampaignMessage(lead: ada.lead, leadPhone: ada.leadPhone, phone: ada.phone)
        let ingress = CarrierWebhookIngress(store: f.env.store, keys: f.env.keys, registry: try await Self.registry.value)
        let path = CarrierWebhookIngress.pathPrefix + f.connectionID
        func post(_ body: String, sid: String) async throws -> HTTPResponse {
            let params = [
                ("MessageSid", sid), ("SmsSid", sid), ("AccountSid", IntegrationServiceTests.twilioSID), ("From", ada.phone),
                ("To", f.number), ("Body", body), ("NumMedia", "0"),
            ]
            let signature = IntegrationServiceTests.twilioSignature(
                url: "https://hooks.example.com\(path)", params: params, token: IntegrationServiceTests.twilioToken)
            return try await ingress.route.handler(
                HTTPRequest(
                    method: "POST", path: path,
                    headers: [
                        ("host", "internal:7070"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "hooks.example.com"),
                        ("content-type", "application/x-www-form-urlencoded"), ("x-twilio-signature", signature),
                    ], body: IntegrationServiceTests.formEncode(params)))
        }
        let sid = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        #expect(try await post("Stop", sid: sid).status == 200)

        let inbound = try await f.rows("SELECT intent, lead_id::text AS l FROM messages WHERE provider_message_id = \(sid)").one()
        #expect(try inbound.decode("intent", as: String.self) == "opt_out")
        #expect(try inbound.decode("l", as: String.self) == ada.lead)
        #expect(try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(ada.phone) AND revoked_at IS NULL") == 1)
        #expect(
            try await f.count("SELECT count(*) FROM messages WHERE id = \(UUIDText(campaignMessage)) AND skip_reason = 'opted_out'") == 1)
        let replies = try await f.replies(to: ada.phone)
        #expect(replies.count == 1 && replies[0].numberID == f.numberID && replies[0].body.hasPrefix("Sunbelt Land:"))

        // Twilio retries the webhook: logged again, nothing else changes.
        let before = try await f.count("SELECT count(*) FROM messages") + f.count("SELECT count(*) FROM audit_events")
        #expect(try await post("Stop", sid: sid).status == 200)
        #expect(try await f.count("SELECT count(*) FROM messages") + f.count("SELECT count(*) FROM audit_events") == before)
        #expect(try await f.count("SELECT count(*) FROM carrier_webhook_logs WHERE verified") == 2)

        // Spanish over the webhook: AYUDA is answered in Spanish.
        #expect(try await post("Ayuda", sid: sid + "b").status == 200)
        #expect(try await f.replies(to: ada.phone).last?.body.contains("Responda ALTO") == true)
    }

    /// The mock carrier "delivers" each message and has the lead reply (seeded: interest, STOP,
    /// HELP, ALTO, questions). Every reply comes back as an unsolicited plugin event, lands on
    /// its lead's thread, reaches the org's subscription, and is acted on by its keyword.
    @Test(.timeLimit(.minutes(1))) func mockCarrierRepliesFlowThroughTheEventSink() async throws {
        var connection = IntegrationServiceTests.mockRequest(name: "Mock replies")
        connection.settings = ["seed": "2026", "reply_rate": "1", "delivery_rate": "1", "delivery_delay_ms": "1"]
        let f = try await InboundFixture.make("Inbound mock", connection: connection)
        try await f.setBrand("Sunbelt Land")
        let leadCount = 24
        var leads: [(lead: String, leadPhone: String, phone: String, campaignMessage: String)] = []
        for _ in 0..<leadCount {
            let lead = try await f.addLead()
            let queued = try await f.queueCampaignMessage(lead: lead.lead, leadPhone: lead.leadPhone, phone: lead.phone)
            leads.append((lead.lead, lead.leadPhone, lead.phone, queued.message))
        }
        let targets = leads
        let registry = try await Self.registry.value
        let resolved = try #require(
            try await f.env.store.withTransaction(tenant: f.org, readOnly: true) { tx in
                try await CarrierConnectionRecords.resolve(tx, id: UUIDText(f.connectionID)!, box: f.env.keys.sealedBox)
            })
        let host = try await registry.prepare(resolved)

        var request = SubscribeInboundRequest()
        request.since = timestamp(Date().addingTimeInterval(-1))
        let received = try await f.messages.subscribeInbound(request, options: f.options) { stream in
            // Send as the dispatcher would (our number to each lead), then wait for every reply.
            for (index, lead) in targets.enumerated() {
                var send = Carrier_SendRequest()
                send.idempotencyKey = "inbound-mock-\(index)"
                send.from = f.number
                send.to = lead.phone
                send.body = "Hi, still own the land?"
                _ = try await host.send(send, connection: f.connectionID)
            }
            var seen: [Message] = []
            for try await message in stream {
                seen.append(message)
                if seen.count == leadCount { break }
            }
            return seen
        }
        #expect(Set(received.map(\.leadID)) == Set(leads.map(\.lead)))

        var kinds: [String: Int] = [:]
        for message in received {
            let lead = try #require(leads.first { $0.lead == message.leadID })
            let intent = KeywordClassifier.classify(message.body)
            kinds[intent.name, default: 0] += 1
            let replies = try await f.replies(to: lead.phone)
            let optedOut = try await f.count("SELECT count(*) FROM opt_outs WHERE phone = \(lead.phone) AND revoked_at IS NULL") == 1
            let cancelled =
                try await f.count(
                    "SELECT count(*) FROM messages WHERE id = \(UUIDText(lead.campaignMessage)) AND status = 'cancelled' AND skip_reason = 'opted_out'"
                )
                == 1
            switch intent {
            case .optOut:
                #expect(optedOut && cancelled && replies.count == 1, "\(message.body)")
                let spanish = message.body.uppercased() == "ALTO"
                #expect(replies.first?.body.contains(spanish ? "se ha dado de baja" : "unsubscribed") == true)
            case .help:
                #expect(!optedOut && !cancelled && replies.count == 1 && replies[0].body.contains("Msg & data rates may apply"))
            default:
                #expect(!optedOut && !cancelled && replies.isEmpty, "\(message.body)")
            }
            #expect(message.intent.protoName == "MESSAGE_INTENT_" + intent.name.uppercased())
        }
        // Seed 2026 makes the 24 leads answer STOP 2, ALTO 5, HELP 5 and 12 other replies; a change
        // in the mock's replies shows up here rather than as a vacuous pass.
        #expect(kinds == ["opt_out": 7, "help": 5, "message": 12], "\(kinds)")
        #expect(received.filter { $0.body == "ALTO" }.count == 5)
    }
}
