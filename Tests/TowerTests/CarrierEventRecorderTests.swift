import Foundation
import Logging
import Testing
import TowerCarrierHost
import TowerProto
import TowerRPC
import TowerStore

@testable import Tower

/// A carrier may report on a message before the dispatcher has written down the carrier's id for
/// it (Twilio's status callbacks name only the MessageSid). Such a status is parked, applied in
/// the transaction that records the send, in rank order, and expired (audited) if no send
/// ever claims it.
@Suite("Carrier statuses that beat their send's record", .enabled(if: IntegrationServiceTests.pluginsBuilt, "build the plugins first"))
struct CarrierEventRecorderTests {
    static let logger = Logger(label: "test.recorder")

    /// A message handed to the carrier whose answer is not yet written (as the dispatcher leaves
    /// it between the Send and its record).
    static func sendingMessage(_ f: InboundFixture, purpose: String = "campaign", to: String = InboundFixture.randomPhone()) async throws
        -> UUID
    {
        let id = UUID()
        let (orgText, connection, numberID, number) = (f.orgText, UUIDText(f.connectionID)!, UUIDText(f.numberID)!, f.number)
        try await f.env.store.withTransaction(tenant: f.org) { tx in
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, direction, to_phone, body, status, send_after, idempotency_key, purpose,
                                      phone_number_id, from_phone, carrier_connection_id, claimed_at, claimed_by)
                VALUES (\(id), \(orgText), 'outbound', \(to), 'Hello', 'sending', now(),
                        \(id.uuidString.lowercased()), \(purpose), \(numberID), \(number), \(connection), now(), 'test-dispatcher')
                """)
        }
        return id
    }

    /// What the dispatcher writes when the carrier's answer comes back.
    static func recordSend(_ f: InboundFixture, _ id: UUID, providerID: String) async throws {
        try await f.env.store.withTransaction(tenant: f.org) { tx in
            try await tx.execute(
                """
                UPDATE messages SET status = 'sent', sent_at = clock_timestamp(), claimed_by = NULL, provider_message_id = \(providerID)
                WHERE id = \(id) AND status = 'sending'
                """)
        }
    }

    static func state(_ f: InboundFixture, _ id: UUID) async throws -> (status: String, events: [String], parked: Int) {
        let row = try await f.rows(
            """
            SELECT m.status, ARRAY(SELECT e.status FROM message_status_events e WHERE e.message_id = m.id ORDER BY e.id) AS events,
                   (SELECT count(*) FROM parked_delivery_statuses p WHERE p.provider_message_id = m.provider_message_id
                       OR p.payload->>'idempotencyKey' = m.idempotency_key)::int8 AS parked
            FROM messages m WHERE m.id = \(id)
            """
        ).one()
        return (try row.decode("status"), try row.decode("events"), Int(try row.decode("parked", as: Int64.self)))
    }

    static func status(_ providerID: String, _ state: Carrier_DeliveryState, _ name: String, key: String = "", price: Int64? = nil)
        -> Carrier_DeliveryStatus
    {
        var status = Carrier_DeliveryStatus()
        status.providerMessageID = providerID
        status.idempotencyKey = key
        status.state = state
        status.carrierStatus = name
        status.carrierEventID = providerID + ":" + name
        if let price {
            var p = Carrier_Price()
            p.amountMicros = price
            p.currency = "USD"
            status.price = p
        }
        return status
    }

    /// Plugin path: the events are acknowledged at once (nothing to redeliver), kept, and applied
    /// by the send's record in rank order: the earlier 'sent' that arrived after 'delivered'
    /// does not win. The price on the final status is stored.
    @Test func pluginStatusesBeforeTheSendAreParkedThenAppliedInRankOrder() async throws {
        let f = try await InboundFixture.make("Parked plugin statuses")
        let id = try await Self.sendingMessage(f)
        let providerID = "MK-early-\(UUID().uuidString.prefix(8))"
        let key = id.uuidString.lowercased()
        for status in [
            Self.status(providerID, .delivered, "delivered", key: key, price: 7_900), Self.status(providerID, .sent, "sent", key: key),
        ] {
            let event = CarrierEvent(connectionID: f.connectionID, kind: .deliveryStatus(status))
            #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: f.env.store, logger: Self.logger))
        }
        #expect(try await Self.state(f, id) == ("sending", [], 2))

        try await Self.recordSend(f, id, providerID: providerID)
        #expect(try await Self.state(f, id) == ("delivered", ["sent", "delivered"], 0))
        let cost = try await f.rows("SELECT cost_micros, currency FROM messages WHERE id = \(id)").one()
        #expect(try cost.decode("cost_micros", as: Int64?.self) == 7_900 && cost.decode("currency", as: String?.self) == "USD")

        // A redelivery of either is acknowledged and changes nothing; a late 'sent' with a new
        // event id is stored as an event but does not move the message back.
        let again = CarrierEvent(
            connectionID: f.connectionID, kind: .deliveryStatus(Self.status(providerID, .delivered, "delivered", key: key)))
        #expect(await CarrierWebhookIngress.recordUnsolicited(again, store: f.env.store, logger: Self.logger))
        var late = Self.status(providerID, .sent, "sent")
        late.carrierEventID += ":retry"
        #expect(
            await CarrierWebhookIngress.recordUnsolicited(
                CarrierEvent(connectionID: f.connectionID, kind: .deliveryStatus(late)), store: f.env.store, logger: Self.logger))
        #expect(try await Self.state(f, id) == ("delivered", ["sent", "delivered", "sent"], 0))

        // Through MessageService, the message carries its cost.
        let message = try await f.messages.getMessage(
            {
                var r = GetMessageRequest(); r.messageID = id.uuidString.lowercased(); return r
            }(), options: f.options)
        #expect(message.status == .delivered && message.cost?.amountMicros == 7_900 && message.cost?.currency == "USD")
    }

    /// Webhook path: a signed Twilio status callback (MessageSid only, no idempotency key) that
    /// beats the send's record is answered 200, parked, and lands when the send is recorded.
    @Test func twilioCallbackBeforeTheSendIsRecordedLandsWithTheSend() async throws {
        let f = try await InboundFixture.make("Parked webhook statuses", connection: IntegrationServiceTests.twilioRequest())
        let id = try await Self.sendingMessage(f)
        let ingress = CarrierWebhookIngress(store: f.env.store, keys: f.env.keys, registry: try await InboundWholePathTests.registry.value)
        let path = CarrierWebhookIngress.pathPrefix + f.connectionID
        let sid = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        func post(_ status: String) async throws -> HTTPResponse {
            let params = [
                ("MessageSid", sid), ("SmsSid", sid), ("MessageStatus", status), ("SmsStatus", status),
                ("AccountSid", IntegrationServiceTests.twilioSID), ("From", f.number), ("To", "+15125550111"), ("ApiVersion", "2010-04-01"),
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
        #expect(try await post("delivered").status == 200)
        #expect(try await f.count("SELECT count(*) FROM parked_delivery_statuses WHERE provider_message_id = \(sid)") == 1)
        #expect(
            try await f.count("SELECT count(*) FROM carrier_webhook_logs WHERE verified AND event_count = 1 AND response_status = 200") == 1
        )

        try await Self.recordSend(f, id, providerID: sid)
        #expect(try await Self.state(f, id) == ("delivered", ["delivered"], 0))
        // Twilio sends the same callback again: stored once.
        #expect(try await post("delivered").status == 200)
        #expect(try await Self.state(f, id) == ("delivered", ["delivered"], 0))
    }

    /// A status naming its recipient waits for a hand-off that holds the recipient's phone lock,
    /// but not for long: one stuck on a slow carrier does not stall the event lanes. The status
    /// parks after the bounded wait and lands with the send.
    @Test(.timeLimit(.minutes(1))) func aStatusWaitsOnlyBrieflyForAStuckHandOff() async throws {
        let f = try await InboundFixture.make("Stuck hand-off")
        let phone = InboundFixture.randomPhone()
        let id = try await Self.sendingMessage(f, to: phone)
        let providerID = "MK-stuck-\(UUID().uuidString.prefix(8))"
        let orgText = f.orgText
        let (held, release) = AsyncStream.makeStream(of: Void.self)
        let (locked, signalLocked) = AsyncStream.makeStream(of: Void.self)
        // A hand-off holding the recipient's lock shared, as tx C does while the carrier is slow.
        let handOff = Task {
            try await f.env.store.withTransaction(tenant: f.org) { tx in
                try await tx.execute("SELECT pg_advisory_xact_lock_shared(ctower_phone_lock_key(\(orgText), \(phone)))")
                signalLocked.yield()
                for await _ in held { break }
            }
        }
        for await _ in locked { break }
        var status = Self.status(providerID, .delivered, "delivered")
        status.to = phone
        let event = CarrierEvent(connectionID: f.connectionID, kind: .deliveryStatus(status))
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: f.env.store, logger: Self.logger))
        release.yield()
        release.finish()
        try await handOff.value
        #expect(try await f.count("SELECT count(*) FROM parked_delivery_statuses WHERE provider_message_id = \(providerID)") == 1)
        try await Self.recordSend(f, id, providerID: providerID)
        #expect(try await Self.state(f, id) == ("delivered", ["delivered"], 0))
    }

    /// The upkeep sweep applies a parked status whose send was recorded without the trigger
    /// seeing it (their transactions raced), and expires, with an audit event and a count, a
    /// status whose send never appears.
    @Test func theSweepAppliesRacedStatusesAndExpiresUnmatchedOnes() async throws {
        let f = try await InboundFixture.make("Parked sweep")
        let id = try await Self.sendingMessage(f)
        let providerID = "MK-raced-\(UUID().uuidString.prefix(8))"
        try await Self.recordSend(f, id, providerID: providerID)
        let (orgText, connection) = (f.orgText, UUIDText(f.connectionID)!)
        // Parked as if its transaction had looked for the message just before the send committed.
        try await f.env.store.withTransaction(tenant: f.org) { tx in
            try await tx.execute(
                """
                INSERT INTO parked_delivery_statuses (org_id, carrier_connection_id, provider_message_id, status, provider_status,
                                                      occurred_at, carrier_event_id, payload)
                VALUES (\(orgText), \(connection), \(providerID), 'delivered', 'delivered', now(), \(providerID + ":delivered"), '{}')
                """)
        }
        let stray = Self.status("MK-nobody-\(UUID().uuidString.prefix(8))", .delivered, "delivered")
        let event = CarrierEvent(connectionID: f.connectionID, kind: .deliveryStatus(stray))
        #expect(await CarrierWebhookIngress.recordUnsolicited(event, store: f.env.store, logger: Self.logger))

        var configuration = CarrierUpkeep.Configuration()
        configuration.orgs = [f.org]
        let upkeep = CarrierUpkeep(store: f.env.store, configuration: configuration)
        let now = try await upkeep.runOnce()
        #expect(now == CarrierUpkeep.Pass(appliedStatuses: 1, expiredStatuses: 0, warmedNumbers: 0))
        #expect(try await Self.state(f, id) == ("delivered", ["delivered"], 0))
        #expect(try await f.count("SELECT count(*) FROM parked_delivery_statuses") == 1)

        let later = try await upkeep.runOnce(now: Date().addingTimeInterval(25 * 3600))
        #expect(later == CarrierUpkeep.Pass(appliedStatuses: 0, expiredStatuses: 1, warmedNumbers: 0))
        #expect(try await f.count("SELECT count(*) FROM parked_delivery_statuses") == 0)
        let audit = try await f.rows(
            "SELECT target_id, metadata->>'count' AS n, metadata->'statuses'->0->>'provider_message_id' AS pid FROM audit_events WHERE action = 'carrier.status_expired'"
        ).one()
        #expect(try audit.decode("target_id", as: String.self) == f.connectionID)
        #expect(try audit.decode("n", as: String.self) == "1" && audit.decode("pid", as: String.self) == stray.providerMessageID)
    }
}

/// The plugin path with real processes: the mock carrier reports each delivery (priced) the
/// moment it accepts the message, so many statuses reach the server before the dispatcher has
/// recorded their send. None may be lost, none stored twice, and each message ends delivered
/// with its cost.
@Suite(
    "Mock statuses racing the dispatcher", .serialized,
    .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct RacingStatusTests {
    @Test func everyImmediateStatusLandsOnceWithItsPrice() async throws {
        let fixture = try await DispatchFixture.make(
            numberCount: 2,
            settings: ["status_events": "true", "delivery_delay_ms": "0", "delivery_rate": "1", "price_per_segment_micros": "7900"])
        try await fixture.queue(200, phones: 200)
        var configuration = Dispatcher.Configuration()
        configuration.orgs = [fixture.org]
        let dispatcher = Dispatcher(
            store: fixture.env.store, keys: fixture.env.keys, registry: try await InboundWholePathTests.registry.value,
            configuration: configuration)
        try await dispatcher.start()
        func summary() async throws -> (delivered: Int, priced: Int, events: Int, parked: Int) {
            try await fixture.env.store.withTransaction(tenant: fixture.org, readOnly: true) { tx in
                let row = try await tx.query(
                    """
                    SELECT count(*) FILTER (WHERE m.status = 'delivered')::int8 AS delivered,
                           count(*) FILTER (WHERE m.cost_micros = 7900 AND m.currency = 'USD')::int8 AS priced,
                           (SELECT count(*) FROM message_status_events)::int8 AS events,
                           (SELECT count(*) FROM parked_delivery_statuses)::int8 AS parked
                    FROM messages m WHERE m.direction = 'outbound'
                    """
                ).one()
                return (
                    Int(try row.decode("delivered", as: Int64.self)), Int(try row.decode("priced", as: Int64.self)),
                    Int(try row.decode("events", as: Int64.self)), Int(try row.decode("parked", as: Int64.self))
                )
            }
        }
        let settled = try await DispatchFixture.waitUntil(timeout: .seconds(60)) {
            let now = try await summary()
            return now.delivered == 200 && now.parked == 0
        }
        await dispatcher.stop()
        #expect(settled)
        let final = try await summary()
        #expect(final.delivered == 200 && final.priced == 200 && final.events == 200 && final.parked == 0)
        #expect(Set(fixture.ledger().map(\.key)).count == 200)
    }
}
