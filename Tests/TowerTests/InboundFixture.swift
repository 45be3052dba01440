import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// One org with a carrier connection, a number in its pool, and clients for MessageService,
/// OrgService and IntegrationService, over the real database. Leads, campaigns and queued
/// messages are written with SQL (their services live on other branches), as the app role under
/// the org's tenant, so row-level security applies to the fixtures too.
struct InboundFixture {
    let env: IdentityEnvironment
    let org: OrgID
    let orgText: UUIDText
    let options: CallOptions
    let messages: MessageService.Client
    let orgs: OrgService.Client
    let integrations: IntegrationService.Client
    let connectionID: String
    let number: String
    let numberID: String

    /// One feed for every test, as a server has one.
    static let feed: Task<InboundFeed, any Error> = Task { InboundFeed(store: try await IdentityEnvironment.get().store) }

    static func channel(_ env: IdentityEnvironment) async throws -> InProcessChannel {
        InProcessChannel(
            services: env.services() + [
                MessageServiceImpl(store: env.store, feed: try await feed.value),
                IntegrationServiceImpl(store: env.store, keys: env.keys, registry: IntegrationServiceTests.registry),
            ],
            interceptors: [env.interceptor])
    }

    /// A random NANP number in a 5xx area code, e.g. +15127654321. Numbers are globally unique in
    /// pools, so every test draws its own.
    static func randomPhone() -> String {
        "+15" + String(format: "%02d", Int.random(in: 0..<100)) + String(format: "%07d", Int.random(in: 2_000_000..<10_000_000))
    }

    /// A new org with a connection of `connection` (created through IntegrationService) and one
    /// active number on it.
    static func make(_ name: String = "Inbound", connection: CreateCarrierConnectionRequest = IntegrationServiceTests.mockRequest())
        async throws -> InboundFixture
    {
        let env = try await IdentityEnvironment.get()
        let channel = try await channel(env)
        let (created, email, password) = try await env.makeOrg(name: name)
        let options = bearer(try await env.login(email, password).accessToken)
        let integrations = IntegrationService.Client(channel: channel)
        let carrier = try await integrations.createCarrierConnection(connection, options: options)
        let number = randomPhone()
        let orgText = UUIDText(created.orgID.description)!
        let numberID = try await env.store.withTransaction(tenant: created.orgID) { tx in
            try await tx.query(
                """
                INSERT INTO phone_numbers (org_id, carrier_connection_id, phone, state)
                VALUES (\(orgText), \(UUIDText(carrier.id)), \(number), 'active') RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
        }
        return InboundFixture(
            env: env, org: created.orgID, orgText: orgText, options: options, messages: MessageService.Client(channel: channel),
            orgs: OrgService.Client(channel: channel), integrations: integrations, connectionID: carrier.id, number: number,
            numberID: numberID)
    }

    /// A lead with one phone (a random one unless given).
    @discardableResult
    func addLead(phone: String = InboundFixture.randomPhone(), firstName: String = "Ada", state: String? = "TX") async throws -> (
        lead: String, leadPhone: String, phone: String
    ) {
        let orgText = orgText
        return try await env.store.withTransaction(tenant: org) { tx in
            let lead = try await tx.query(
                "INSERT INTO leads (org_id, first_name, last_name, property_state) VALUES (\(orgText), \(firstName), 'Lovelace', \(state)) RETURNING id::text AS id"
            ).one().decode("id", as: String.self)
            let leadPhone = try await tx.query(
                "INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES (\(orgText), \(UUIDText(lead)), 1, \(phone)) RETURNING id::text AS id"
            ).one().decode("id", as: String.self)
            return (lead, leadPhone, phone)
        }
    }

    /// A running campaign with a target for `lead` and one queued campaign message to `phone`.
    func queueCampaignMessage(lead: String, leadPhone: String, phone: String, campaignStatus: String = "running") async throws -> (
        campaign: String, message: String
    ) {
        let orgText = orgText
        return try await env.store.withTransaction(tenant: org) { tx in
            let campaign = try await tx.query(
                """
                INSERT INTO campaigns (org_id, name, kind, status, started_at)
                VALUES (\(orgText), \("Campaign \(UUID().uuidString.prefix(6))"), 'broadcast', \(campaignStatus), now()) RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            try await tx.execute(
                """
                INSERT INTO campaign_targets (org_id, campaign_id, lead_id, lead_phone_id, status)
                VALUES (\(orgText), \(UUIDText(campaign)), \(UUIDText(lead)), \(UUIDText(leadPhone)), 'active')
                """)
            let message = UUID().uuidString.lowercased()
            try await tx.execute(
                """
                INSERT INTO messages (id, org_id, lead_id, lead_phone_id, campaign_id, direction, to_phone, body, status, purpose,
                                      send_after, idempotency_key)
                VALUES (\(UUIDText(message)), \(orgText), \(UUIDText(lead)), \(UUIDText(leadPhone)), \(UUIDText(campaign)), 'outbound',
                        \(phone), 'Hi Ada, still own the 40 acres?', 'queued', 'campaign', now() + interval '1 hour', \(message))
                """)
            return (campaign, message)
        }
    }

    static func inboundEvent(from: String, to: String, body: String, providerID: String = "SM" + UUID().uuidString)
        -> Carrier_InboundMessage
    {
        var inbound = Carrier_InboundMessage()
        inbound.providerMessageID = providerID
        inbound.carrierEventID = providerID
        inbound.from = from
        inbound.to = to
        inbound.body = body
        return inbound
    }

    /// Hands an inbound message to the processor exactly as the webhook ingress and the plugin
    /// event sink do: one tenant transaction of the connection's org.
    @discardableResult
    func receive(from: String, body: String, providerID: String = "SM" + UUID().uuidString) async throws -> InboundProcessor.Outcome? {
        let event = Self.inboundEvent(from: from, to: number, body: body, providerID: providerID)
        let (orgText, connection) = (orgText, UUIDText(connectionID)!)
        return try await env.store.withTransaction(tenant: org) { tx in
            try await InboundProcessor.record(event, orgID: orgText, connectionID: connection, tx: tx)
        }
    }

    /// Runs `sql` in the org's tenant and returns its rows.
    func rows(_ sql: SQL) async throws -> QueryResult {
        try await env.store.withTransaction(tenant: org, readOnly: true) { tx in try await tx.query(sql, prepared: false) }
    }

    func count(_ sql: SQL) async throws -> Int {
        try await rows(sql).one().decode(0, as: Int.self)
    }

    /// Outbound compliance replies queued to `phone`, oldest first.
    func replies(to phone: String) async throws -> [(body: String, numberID: String?)] {
        try await rows(
            """
            SELECT body, phone_number_id::text AS n FROM messages
            WHERE direction = 'outbound' AND purpose = 'compliance' AND to_phone = \(phone) ORDER BY created_at, id
            """
        ).map { (try $0.decode("body", as: String.self), try $0.decode("n", as: String?.self)) }
    }

    /// Actions of audit events the platform wrote on its own (no user acting), oldest first.
    func auditActions() async throws -> [String] {
        try await rows("SELECT action FROM audit_events WHERE actor_user_id IS NULL ORDER BY id").map {
            try $0.decode("action", as: String.self)
        }
    }

    func setBrand(_ brand: String, freeTextOptOut: Bool? = nil) async throws {
        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.brandName = brand
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["brand_name"]
        if let freeTextOptOut {
            update.settings?.freeTextOptOut = freeTextOptOut
            update.updateMask?.paths.append("free_text_opt_out")
        }
        _ = try await orgs.updateOrgSettings(update, options: options)
    }
}
