import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// CampaignService: broadcast campaigns from draft to completion. StartCampaign (its work is in
/// `CampaignStarter.swift`) and the progress stream live in `CampaignServiceImpl+Progress.swift`.
public struct CampaignServiceImpl: CampaignService.ServiceProtocol {
    let tenancy: Tenancy
    let progressHub: CampaignProgressHub
    /// The clock quiet hours are judged by when messages are queued (real, except in `ctower demo`).
    let complianceClock: ComplianceClock

    public init(store: Store, complianceClock: ComplianceClock = .real) {
        tenancy = Tenancy(store: store)
        progressHub = CampaignProgressHub(store: store)
        self.complianceClock = complianceClock
    }

    // MARK: Validation

    static func validateRate(_ rate: Double?, field: String = "messages_per_second") throws -> Double? {
        guard let rate else { return nil }
        guard NumberRecords.validRate(rate) else { throw DomainError.invalid(field, NumberServiceImpl.rateFix) }
        return (rate * 100).rounded() / 100
    }

    static func validateCap(_ cap: Int32?, field: String = "daily_cap") throws -> Int? {
        guard let cap else { return nil }
        guard NumberRecords.validDailyCap(cap) else { throw DomainError.invalid(field, NumberServiceImpl.capFix) }
        return Int(cap)
    }

    struct Schedule {
        var start: Date?
        var recipientClock: Bool
    }

    static func validateSchedule(_ schedule: CampaignSchedule?, field: String = "schedule") throws -> Schedule {
        guard let schedule else { return Schedule(start: nil, recipientClock: false) }
        let recipient: Bool
        switch schedule.basis {
        case .unspecified, .orgTime: recipient = false
        case .recipientTime: recipient = true
        default: throw DomainError.invalid("\(field).basis", "must be ORG_TIME or RECIPIENT_TIME")
        }
        var start: Date?
        if let t = schedule.startTime {
            guard t.nanos >= 0, t.nanos < 1_000_000_000, t.seconds > 0, t.seconds < 253_402_300_800 else {
                throw DomainError.invalid("\(field).start_time", "must be a valid timestamp")
            }
            start = Date(timeIntervalSince1970: Double(t.seconds) + Double(t.nanos) / 1e9)
        }
        return Schedule(start: start, recipientClock: recipient)
    }

    /// Checks that the template and numbers named exist in the org (NOT_FOUND otherwise, the
    /// same answer for another org's ids) and fit a broadcast campaign.
    static func checkReferences(
        _ tx: Transaction, templateID: String?, numberIDs: [String]?, audience: StoredAudience?
    ) async throws {
        if let templateID, !templateID.isEmpty {
            guard let id = UUIDText(templateID) else {
                throw DomainError.invalid("template_id", "must be a template id (UUID) as returned by this API")
            }
            guard
                let row = try await tx.query("SELECT category, archived_at IS NOT NULL AS archived FROM templates WHERE id = \(id)")
                    .firstRow
            else { throw DomainError.notFound("template", templateID) }
            let category = try row.decode("category", as: String.self)
            guard CampaignRecords.broadcastCategories.contains(category) else {
                throw DomainError.invalid(
                    "template_id",
                    "template \(templateID) is a \(category) template; broadcast campaigns use an initial or follow_up template")
            }
            if try row.decode("archived", as: Bool.self) {
                throw DomainError.invalid("template_id", "template \(templateID) is archived; pick a current template")
            }
        }
        if let numberIDs, !numberIDs.isEmpty {
            let rows = try await tx.query(
                "SELECT n.id::text AS id, n.state FROM phone_numbers n WHERE n.id = ANY(\(numberIDs.compactMap { UUID(uuidString: $0) }))")
            var states: [String: String] = [:]
            for row in rows { states[try row.decode("id", as: String.self)] = try row.decode("state", as: String.self) }
            for (index, id) in numberIDs.enumerated() {
                guard let state = states[id] else { throw DomainError.notFound("phone number", id) }
                if state == "released" {
                    throw DomainError.invalid("sender_number_ids[\(index)]", "phone number \(id) is RELEASED; pick a number the org holds")
                }
            }
        }
        if let audience {
            if !audience.listIDs.isEmpty {
                let rows = try await tx.query(
                    "SELECT l.id::text AS id, l.kind FROM lead_lists l WHERE l.id = ANY(\(audience.listIDs.compactMap { UUID(uuidString: $0) }))"
                )
                var kinds: [String: String] = [:]
                for row in rows { kinds[try row.decode("id", as: String.self)] = try row.decode("kind", as: String.self) }
                for id in audience.listIDs {
                    guard let kind = kinds[id] else { throw DomainError.notFound("lead list", id) }
                    if kind != "static" {
                        throw DomainError.invalid(
                            "audience.list_ids", "lead list \(id) is dynamic; give its filters as the audience's filters instead")
                    }
                }
            }
            if !audience.tagIDs.isEmpty {
                let found = Set(
                    try await tx.query(
                        "SELECT t.id::text AS id FROM tags t WHERE t.id = ANY(\(audience.tagIDs.compactMap { UUID(uuidString: $0) }))"
                    )
                    .map { try $0.decode("id", as: String.self) })
                if let missing = audience.tagIDs.first(where: { !found.contains($0) }) { throw DomainError.notFound("tag", missing) }
            }
        }
    }

    /// Replaces the campaign's template (step 1) and/or sender pool.
    static func writeRelations(
        _ tx: Transaction, orgID: OrgID, campaignID: UUIDText, templateID: String?, numberIDs: [String]?
    ) async throws {
        if let templateID {
            try await tx.execute("DELETE FROM campaign_steps WHERE campaign_id = \(campaignID)")
            if let template = UUIDText(templateID) {
                try await tx.execute(
                    """
                    INSERT INTO campaign_steps (org_id, campaign_id, position, template_id, delay_minutes, stop_on_reply)
                    VALUES (\(orgID), \(campaignID), 1, \(template), 0, true)
                    """)
            }
        }
        if let numberIDs {
            try await tx.execute("DELETE FROM campaign_numbers WHERE campaign_id = \(campaignID)")
            if !numberIDs.isEmpty {
                try await tx.execute(
                    """
                    INSERT INTO campaign_numbers (org_id, campaign_id, phone_number_id)
                    SELECT \(orgID), \(campaignID), n FROM unnest(\(numberIDs.compactMap { UUID(uuidString: $0) })) AS n
                    """)
            }
        }
    }

    // MARK: CRUD

    public func createCampaign(request: CreateCampaignRequest, context: ServerContext) async throws -> Campaign {
        let name = try FieldCheck.name(request.name, maxLength: 200)
        let audience = try StoredAudience(request.audience, field: "audience")
        let numberIDs = try FieldCheck.ids(request.senderNumberIds, field: "sender_number_ids")
        let schedule = try Self.validateSchedule(request.schedule)
        let rate = try Self.validateRate(request.messagesPerSecond)
        let cap = try Self.validateCap(request.dailyCap)
        let templateID = request.templateID.lowercased()
        return try await tenancy.transaction(context) { tx, principal in
            try await Self.checkReferences(tx, templateID: templateID, numberIDs: numberIDs, audience: audience)
            let id = UUIDText(UUID().uuidString.lowercased())!
            try await tx.execute(
                """
                INSERT INTO campaigns (id, org_id, name, kind, status, audience, messages_per_second, daily_cap, scheduled_at,
                                       schedule_basis, created_by)
                VALUES (\(id), \(principal.orgID), \(name), 'broadcast', 'draft', \(audience.json)::jsonb, \(rate), \(cap),
                        \(schedule.start), \(schedule.recipientClock ? "recipient" : "org"), \(principal.userID))
                """)
            try await Self.writeRelations(tx, orgID: principal.orgID, campaignID: id, templateID: templateID, numberIDs: numberIDs)
            try await Audit.record(
                tx, principal, action: "campaign.create", targetType: "campaign", targetID: id.text,
                details: .object([("name", .string(name))]))
            return try await CampaignRecords.load(tx, id: id)!
        }
    }

    public func getCampaign(request: GetCampaignRequest, context: ServerContext) async throws -> Campaign {
        let id = try IdentityRecords.id(request.campaignID, field: "campaign_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            guard let campaign = try await CampaignRecords.load(tx, id: id) else {
                throw DomainError.notFound("campaign", request.campaignID)
            }
            return campaign
        }
    }

    public func listCampaigns(request: ListCampaignsRequest, context: ServerContext) async throws -> ListCampaignsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        var states: [String] = []
        for (index, state) in request.states.enumerated() {
            guard let name = CampaignRecords.databaseName(state) else {
                throw DomainError.invalid("states[\(index)]", "must be DRAFT, RUNNING, PAUSED, COMPLETED or CANCELLED")
            }
            states.append(name)
        }
        var before: SQL = ""
        if let cursor {
            let (micros, id) = try cursor.timeKey()
            before = "AND (\(unsafeRaw: Timestamps.micros("c.created_at")), c.id) < (\(micros), \(id))"
        }
        let filter: SQL = states.isEmpty ? "" : "AND c.status = ANY(\(states))"
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: CampaignRecords.columns) FROM campaigns c
                WHERE true \(filter) \(before) ORDER BY c.created_at DESC, c.id DESC LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListCampaignsResponse()
            let page = KeysetPage(rows, size: size)
            response.campaigns = try page.rows.map(CampaignRecords.campaign)
            response.page = page.info(last: response.campaigns.last) { campaign in
                campaign.createTime.map { PageCursor(sortKey: String($0.seconds * 1_000_000 + Int64($0.nanos / 1000)), id: campaign.id) }
            }
            return response
        }
    }

    public func updateCampaign(request: UpdateCampaignRequest, context: ServerContext) async throws -> Campaign {
        let id = try IdentityRecords.id(request.campaignID, field: "campaign_id")
        guard let paths = request.updateMask?.paths, !paths.isEmpty else {
            throw DomainError.invalid(
                "update_mask",
                "name what to change: name, audience, template_id, sender_number_ids, schedule, messages_per_second, daily_cap")
        }
        var assignments: [SQL] = []
        var templateID: String?
        var numberIDs: [String]?
        var audience: StoredAudience?
        for path in Set(paths) {
            switch path {
            case "name": assignments.append("name = \(try FieldCheck.name(request.name, maxLength: 200))")
            case "audience":
                let validated = try StoredAudience(request.audience, field: "audience")
                audience = validated
                assignments.append("audience = \(validated.json)::jsonb")
            case "template_id": templateID = request.templateID.lowercased()
            case "sender_number_ids": numberIDs = try FieldCheck.ids(request.senderNumberIds, field: "sender_number_ids")
            case "schedule":
                let schedule = try Self.validateSchedule(request.schedule)
                assignments.append("scheduled_at = \(schedule.start), schedule_basis = \(schedule.recipientClock ? "recipient" : "org")")
            case "messages_per_second": assignments.append("messages_per_second = \(try Self.validateRate(request.messagesPerSecond))")
            case "daily_cap": assignments.append("daily_cap = \(try Self.validateCap(request.dailyCap))")
            default:
                throw DomainError.invalid(
                    "update_mask",
                    "\"\(path)\" cannot be changed; use name, audience, template_id, sender_number_ids, schedule, messages_per_second or daily_cap"
                )
            }
        }
        if templateID != nil, let t = templateID, !t.isEmpty, UUIDText(t) == nil {
            throw DomainError.invalid("template_id", "must be a template id (UUID) as returned by this API")
        }
        return try await tenancy.transaction(context) { tx, principal in
            let status = try await Self.lockedStatus(tx, id: id, requested: request.campaignID)
            guard status == "draft" else {
                throw DomainError.failedPrecondition(
                    "campaign \(id.text) is \(CampaignRecords.apiName(status)); only a DRAFT campaign can be edited (clone it to change its settings)"
                )
            }
            try await Self.checkReferences(tx, templateID: templateID, numberIDs: numberIDs, audience: audience)
            if !assignments.isEmpty {
                try await tx.execute("UPDATE campaigns c SET \(SQL.join(assignments, separator: ", ")) WHERE c.id = \(id)")
            } else {
                try await tx.execute("UPDATE campaigns c SET updated_at = now() WHERE c.id = \(id)")
            }
            try await Self.writeRelations(tx, orgID: principal.orgID, campaignID: id, templateID: templateID, numberIDs: numberIDs)
            try await Audit.record(
                tx, principal, action: "campaign.update", targetType: "campaign", targetID: id.text,
                details: .object([("paths", .array(paths.map { .string($0) }))]))
            return try await CampaignRecords.load(tx, id: id)!
        }
    }

    /// The campaign's status with its row locked, or NOT_FOUND.
    static func lockedStatus(_ tx: Transaction, id: UUIDText, requested: String) async throws -> String {
        guard let row = try await tx.query("SELECT c.status FROM campaigns c WHERE c.id = \(id) FOR UPDATE").firstRow else {
            throw DomainError.notFound("campaign", requested)
        }
        return try row.decode("status", as: String.self)
    }

    // MARK: Transitions

    /// Moves a campaign from one of `from` to `to`, or FAILED_PRECONDITION naming where it is.
    private func transition(
        _ idText: String, from: Set<String>, to: String, verb: String, context: ServerContext,
        _ extra: @Sendable (Transaction, UUIDText) async throws -> JSONValue = { _, _ in .object([]) }
    ) async throws -> Campaign {
        let id = try IdentityRecords.id(idText, field: "campaign_id")
        return try await tenancy.transaction(context) { tx, principal in
            let status = try await Self.lockedStatus(tx, id: id, requested: idText)
            guard from.contains(status) else {
                let allowed = from.sorted().map(CampaignRecords.apiName).joined(separator: " or ")
                throw DomainError.failedPrecondition(
                    "campaign \(id.text) is \(CampaignRecords.apiName(status)); only a \(allowed) campaign can be \(verb)")
            }
            let stamp: SQL =
                switch to {
                case "paused": ", paused_at = now()"
                case "cancelled": ", cancelled_at = now()"
                default: ""
                }
            try await tx.execute("UPDATE campaigns c SET status = \(to)\(stamp) WHERE c.id = \(id)")
            let details = try await extra(tx, id)
            try await Audit.record(
                tx, principal, action: "campaign.\(verb)", targetType: "campaign", targetID: id.text, details: details)
            try await tx.notify(channel: CampaignProgressHub.channel, payload: id.text)
            return try await CampaignRecords.load(tx, id: id)!
        }
    }

    public func pauseCampaign(request: PauseCampaignRequest, context: ServerContext) async throws -> Campaign {
        // The dispatcher claims only messages of running campaigns: queued rows simply wait.
        try await transition(request.campaignID, from: ["running"], to: "paused", verb: "paused", context: context)
    }

    public func resumeCampaign(request: ResumeCampaignRequest, context: ServerContext) async throws -> Campaign {
        try await transition(request.campaignID, from: ["paused"], to: "running", verb: "resumed", context: context) { tx, id in
            // Opt-outs may have cancelled the last queued messages while it was paused.
            let finished = try await tx.execute(
                """
                UPDATE campaigns c SET status = 'completed', completed_at = now()
                WHERE c.id = \(id) AND NOT EXISTS (
                    SELECT 1 FROM messages m WHERE m.org_id = c.org_id AND m.campaign_id = c.id
                    AND m.status IN ('queued', 'claimed', 'sending'))
                """)
            if finished == 0 { try await tx.notify(channel: CampaignStarter.dispatchChannel) }
            return .object([("completed", .bool(finished > 0))])
        }
    }

    public func cancelCampaign(request: CancelCampaignRequest, context: ServerContext) async throws -> Campaign {
        try await transition(
            request.campaignID, from: ["draft", "running", "paused"], to: "cancelled", verb: "cancelled", context: context
        ) {
            tx, id in
            let cancelled = try await tx.execute(
                """
                UPDATE messages m SET status = 'cancelled', skip_reason = 'campaign_cancelled'
                WHERE m.org_id = ctower_current_org() AND m.campaign_id = \(id) AND m.status = 'queued'
                """)
            return .object([("messages_cancelled", .number(String(cancelled)))])
        }
    }

    public func cloneCampaign(request: CloneCampaignRequest, context: ServerContext) async throws -> Campaign {
        let id = try IdentityRecords.id(request.campaignID, field: "campaign_id")
        let name = request.name.isEmpty ? nil : try FieldCheck.name(request.name, maxLength: 200)
        return try await tenancy.transaction(context) { tx, principal in
            guard let source = try await tx.query("SELECT c.name FROM campaigns c WHERE c.id = \(id)").firstRow else {
                throw DomainError.notFound("campaign", request.campaignID)
            }
            let sourceName = try source.decode("name", as: String.self)
            let copyName = name ?? String((sourceName + " (copy)").prefix(200))
            let copy = UUIDText(UUID().uuidString.lowercased())!
            try await tx.execute(
                """
                INSERT INTO campaigns (id, org_id, name, kind, status, audience, messages_per_second, daily_cap, scheduled_at,
                                       schedule_basis, cloned_from, created_by)
                SELECT \(copy), c.org_id, \(copyName), c.kind, 'draft', c.audience, c.messages_per_second, c.daily_cap, c.scheduled_at,
                       c.schedule_basis, c.id, \(principal.userID)
                FROM campaigns c WHERE c.id = \(id)
                """)
            try await tx.execute(
                """
                INSERT INTO campaign_steps (org_id, campaign_id, position, template_id, delay_minutes, stop_on_reply)
                SELECT s.org_id, \(copy), s.position, s.template_id, s.delay_minutes, s.stop_on_reply
                FROM campaign_steps s WHERE s.campaign_id = \(id)
                """)
            try await tx.execute(
                """
                INSERT INTO campaign_numbers (org_id, campaign_id, phone_number_id)
                SELECT cn.org_id, \(copy), cn.phone_number_id FROM campaign_numbers cn WHERE cn.campaign_id = \(id)
                """)
            try await Audit.record(
                tx, principal, action: "campaign.clone", targetType: "campaign", targetID: copy.text,
                details: .object([("cloned_from", .string(id.text))]))
            return try await CampaignRecords.load(tx, id: copy)!
        }
    }
}
