import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// An org with a carrier connection, a sender number and an initial template, plus helpers that
/// seed leads, tags and lists with SQL (the lead and template services are built elsewhere).
struct CampaignFixture {
    let env: IdentityEnvironment
    let org: IdentityBootstrap.Created
    let options: CallOptions
    let campaigns: CampaignService.Client
    let numbers: NumberService.Client
    let connectionID: String
    let numberID: String
    let templateID: String

    static func channel(_ env: IdentityEnvironment) -> InProcessChannel {
        InProcessChannel(
            services: env.services() + [
                IntegrationServiceImpl(store: env.store, keys: env.keys, registry: IntegrationServiceTests.registry),
                NumberServiceImpl(store: env.store), CampaignServiceImpl(store: env.store),
            ],
            interceptors: [env.interceptor])
    }

    static func make(name: String = "Campaign Org", variants: [String]? = nil) async throws -> CampaignFixture {
        let env = try await IdentityEnvironment.get()
        let channel = Self.channel(env)
        let (org, email, password) = try await env.makeOrg(name: name)
        let options = bearer(try await env.login(email, password).accessToken)
        var connection = CreateCarrierConnectionRequest()
        connection.carrier = "mock"
        connection.name = "Mock"
        connection.credentials = ["api_key": "mock-api-key-SECRET-1234"]
        let created = try await IntegrationService.Client(channel: channel).createCarrierConnection(connection, options: options)
        let numbers = NumberService.Client(channel: channel)
        var add = AddNumberRequest()
        add.carrierConnectionID = created.id
        add.phone = Self.uniquePhone()
        add.initialState = .active
        let number = try await numbers.addNumber(add, options: options)
        let fixture = CampaignFixture(
            env: env, org: org, options: options, campaigns: CampaignService.Client(channel: channel), numbers: numbers,
            connectionID: created.id, numberID: number.id, templateID: "")
        let template = try await fixture.template(
            variants: variants ?? [
                "Hi {first_name|there}, this is {brand}. Interested in selling your {county} land? Reply STOP to opt out."
            ])
        return CampaignFixture(
            env: env, org: org, options: options, campaigns: fixture.campaigns, numbers: numbers, connectionID: created.id,
            numberID: number.id, templateID: template)
    }

    /// A US number no other test holds (numbers are unique across orgs while held).
    static func uniquePhone() -> String {
        "+1737" + String(format: "%07d", Int.random(in: 2_000_000...9_999_999))
    }

    @discardableResult
    func sql<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        try await env.store.withTransaction(tenant: org.orgID) { tx in try await body(tx) }
    }

    func template(category: String = "initial", variants: [String]) async throws -> String {
        try await sql { tx in
            let id = try await tx.query(
                """
                INSERT INTO templates (org_id, name, category) VALUES (\(org.orgID), \("T-" + UUID().uuidString.prefix(8)), \(category))
                RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            for (position, body) in variants.enumerated() {
                try await tx.execute(
                    """
                    INSERT INTO template_variants (org_id, template_id, position, body)
                    VALUES (\(org.orgID), \(UUIDText(id)), \(position + 1), \(body))
                    """)
            }
            return id
        }
    }

    struct LeadSeed {
        var first: String? = "Ana"
        var state: String? = "TX"
        var county: String? = "Travis"
        var mailing: String? = nil
        var score = 50
        /// (phone, consent) by position.
        var phones: [(String, String)] = [(CampaignFixture.uniquePhone(), "unknown")]
    }

    @discardableResult
    func lead(_ seed: LeadSeed) async throws -> String {
        try await sql { tx in
            let id = try await tx.query(
                """
                INSERT INTO leads (org_id, first_name, property_state, county, mailing_state, score)
                VALUES (\(org.orgID), \(seed.first), \(seed.state), \(seed.county), \(seed.mailing), \(seed.score))
                RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            for (index, (phone, consent)) in seed.phones.enumerated() {
                try await tx.execute(
                    """
                    INSERT INTO lead_phones (org_id, lead_id, position, phone, consent_status)
                    VALUES (\(org.orgID), \(UUIDText(id)), \(index + 1), \(phone), \(consent))
                    """)
            }
            return id
        }
    }

    func tag(_ name: String, leads: [String]) async throws -> String {
        try await sql { tx in
            let id = try await tx.query("INSERT INTO tags (org_id, name) VALUES (\(org.orgID), \(name)) RETURNING id::text AS id").one()
                .decode("id", as: String.self)
            for lead in leads {
                try await tx.execute(
                    "INSERT INTO lead_tags (org_id, lead_id, tag_id) VALUES (\(org.orgID), \(UUIDText(lead)), \(UUIDText(id)))")
            }
            return id
        }
    }

    func list(_ name: String, leads: [String]) async throws -> String {
        try await sql { tx in
            let id = try await tx.query(
                "INSERT INTO lead_lists (org_id, name, kind) VALUES (\(org.orgID), \(name), 'static') RETURNING id::text AS id"
            ).one().decode("id", as: String.self)
            for lead in leads {
                try await tx.execute(
                    "INSERT INTO lead_list_members (org_id, list_id, lead_id) VALUES (\(org.orgID), \(UUIDText(id)), \(UUIDText(lead)))")
            }
            return id
        }
    }

    func optOut(_ phone: String) async throws {
        try await sql { tx in
            try await tx.execute(
                "INSERT INTO opt_outs (org_id, phone, keyword, channel) VALUES (\(org.orgID), \(phone), 'STOP', 'sms_keyword')")
        }
    }

    func create(
        _ audience: CampaignAudience = CampaignAudience(), start: Date? = nil, template: String? = nil, numbers: [String]? = nil,
        name: String = "Spring outreach"
    ) async throws -> Campaign {
        var request = CreateCampaignRequest()
        request.name = name
        request.audience = audience
        request.templateID = template ?? templateID
        request.senderNumberIds = numbers ?? [numberID]
        if let start {
            var schedule = CampaignSchedule()
            var timestamp = Google_Protobuf_Timestamp()
            timestamp.seconds = Int64(start.timeIntervalSince1970)
            schedule.startTime = timestamp
            request.schedule = schedule
        }
        return try await campaigns.createCampaign(request, options: options)
    }

    func start(_ id: String) async throws -> StartCampaignResponse {
        var request = StartCampaignRequest()
        request.campaignID = id
        return try await campaigns.startCampaign(request, options: options)
    }

    /// Lead ids of a campaign's targets (queued or skipped), sorted.
    func targetLeads(_ campaignID: String, status: String? = nil) async throws -> [String] {
        try await sql { tx in
            try await tx.query(
                """
                SELECT lead_id::text AS id FROM campaign_targets
                WHERE campaign_id = \(UUIDText(campaignID)) AND (\(status)::text IS NULL OR status = \(status)) ORDER BY 1
                """
            ).map { try $0.decode("id", as: String.self) }
        }
    }
}
