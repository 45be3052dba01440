import Foundation
import TowerProtoRuntime
import TowerStore

/// StartCampaign's work, in the caller's transaction: check the campaign can start, materialise
/// its audience in SQL, then queue one outbound message per reachable target in batches (plan in
/// Swift, COPY into `messages`), and wake the dispatcher. A 100,000-lead audience is a handful of
/// set-based statements and ten COPY batches.
enum CampaignStarter {
    static let dispatchChannel = "ctower_dispatch"
    static let batchSize = 10_000

    struct Result: Sendable {
        var status: String
        var targets = 0
        var queued = 0
        var skipped: [String: Int] = [:]
        var delayedByQuietHours = 0
    }

    /// Starts that queue at least this many messages refresh the statistics of `messages` and
    /// `campaign_targets` once committed: the dispatcher's batch statements are planned from
    /// them, and before that the org's new messages look like a handful of rows to the planner.
    static let analyzeAfterMessages = 1_000

    /// ANALYZE run by the owner (`ctower_analyze_campaign_tables()`, migration 0021); the app role
    /// may not. Best effort, after the commit (the dispatcher is already woken: its first batches
    /// may still be planned from the old statistics); autovacuum catches up otherwise.
    static func refreshStatistics(_ store: Store) async {
        _ = try? await store.withTransaction(tenant: nil) { tx in
            try await tx.execute("SELECT ctower_analyze_campaign_tables()")
        }
    }

    static func start(
        _ tx: Transaction, principal: RequestPrincipal, id: UUIDText, requested: String, clock: ComplianceClock = .real
    ) async throws -> Result {
        let orgID = principal.orgID
        let status = try await CampaignServiceImpl.lockedStatus(tx, id: id, requested: requested)
        guard status == "draft" else {
            throw DomainError.failedPrecondition(
                "campaign \(id.text) is \(CampaignRecords.apiName(status)); only a DRAFT campaign can be started")
        }
        let campaign = try await tx.query(
            """
            SELECT c.audience::text AS audience, c.scheduled_at, c.schedule_basis FROM campaigns c WHERE c.id = \(id)
            """
        ).one()
        let (stepID, variants) = try await checkReadiness(tx, id: id)
        let audience = StoredAudience(json: try campaign.decode("audience", as: String.self))
        let now = Date()
        let start = max(try campaign.decode("scheduled_at", as: Date?.self) ?? now, now)
        let recipientClock = try campaign.decode("schedule_basis", as: String.self) == "recipient"

        var result = Result(status: "running")
        result.targets = try await materialiseTargets(tx, orgID: orgID, id: id, audience: audience)
        for row in try await tx.query(
            "SELECT t.skip_reason, count(*) AS n FROM campaign_targets t WHERE t.campaign_id = \(id) AND t.status = 'skipped' GROUP BY 1")
        {
            result.skipped[try row.decode("skip_reason", as: String.self), default: 0] += try row.decode("n", as: Int.self)
        }

        var planner = try await makePlanner(tx, variants: variants, start: start, recipientClock: recipientClock)
        planner.clock = clock
        var plannerSkips: [(leadID: UUID, reason: String)] = []
        var after = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        var earliest: Date?
        var latest: Date?
        while true {
            let rows = try await tx.query(
                """
                SELECT t.lead_id, t.lead_phone_id::text, p.phone, l.first_name, l.last_name, l.owner_name, l.county,
                       l.property_state, l.mailing_state, l.property_address, l.property_city, l.mailing_city,
                       l.acreage::text, l.apn, l.time_zone
                FROM campaign_targets t
                JOIN leads l ON l.id = t.lead_id
                JOIN lead_phones p ON p.id = t.lead_phone_id
                WHERE t.campaign_id = \(id) AND t.status = 'active' AND t.lead_id > \(after)
                ORDER BY t.lead_id LIMIT \(batchSize)
                """)
            if rows.isEmpty { break }
            var copy: [UInt8] = []
            copy.reserveCapacity(rows.count * 400)
            for row in rows {
                let leadID = try row.decode(0, as: UUID.self)
                after = leadID
                let recipient = CampaignMessagePlanner.Recipient(
                    leadID: leadID.uuidString.lowercased(), leadPhoneID: try row.decode(1, as: String.self),
                    phone: try row.decode(2, as: String.self), firstName: try row.decode(3, as: String?.self),
                    lastName: try row.decode(4, as: String?.self), ownerName: try row.decode(5, as: String?.self),
                    county: try row.decode(6, as: String?.self), propertyState: try row.decode(7, as: String?.self),
                    mailingState: try row.decode(8, as: String?.self), propertyAddress: try row.decode(9, as: String?.self),
                    propertyCity: try row.decode(10, as: String?.self), mailingCity: try row.decode(11, as: String?.self),
                    acreage: try row.decode(12, as: String?.self), apn: try row.decode(13, as: String?.self),
                    timeZone: try row.decode(14, as: String?.self))
                switch planner.plan(recipient) {
                case .skip(let reason):
                    plannerSkips.append((leadID, reason))
                    result.skipped[reason, default: 0] += 1
                case .queue(let message):
                    let messageID = UUID().uuidString.lowercased()
                    CopyText.appendRow(
                        [
                            messageID, orgID.description, recipient.leadID, recipient.leadPhoneID, id.text, stepID,
                            variants[message.variantIndex].id, "outbound", "campaign", recipient.phone, message.body, "queued",
                            String(message.segments), message.encoding, messageID, message.sendAfter.postgresUTC,
                            "{" + message.location.states.joined(separator: ",") + "}",
                            "{" + message.location.zones.joined(separator: ",") + "}",
                        ], to: &copy)
                    result.queued += 1
                    if message.delayedByQuietHours {
                        result.delayedByQuietHours += 1
                        if earliest.map({ message.sendAfter < $0 }) ?? true { earliest = message.sendAfter }
                        if latest.map({ message.sendAfter > $0 }) ?? true { latest = message.sendAfter }
                    }
                }
            }
            if !copy.isEmpty {
                try await tx.bulkInsert(into: "messages", columns: messageColumns, from: OneChunk(bytes: copy))
            }
            if rows.count < batchSize { break }
        }

        if !plannerSkips.isEmpty {
            try await tx.execute(
                """
                UPDATE campaign_targets t SET status = 'skipped', skip_reason = x.reason
                FROM unnest(\(plannerSkips.map(\.leadID)), \(plannerSkips.map(\.reason))) AS x(lead_id, reason)
                WHERE t.campaign_id = \(id) AND t.lead_id = x.lead_id
                """)
        }
        // Fair rotation's running totals, and the template's pick counter, in one statement each.
        try await tx.execute(
            """
            UPDATE template_variants v SET send_count = v.send_count + u.n
            FROM (SELECT m.template_variant_id AS variant, count(*) AS n FROM messages m
                  WHERE m.org_id = \(orgID) AND m.campaign_id = \(id) GROUP BY 1) u
            WHERE v.id = u.variant
            """)
        try await tx.execute(
            """
            UPDATE templates t SET rotation_counter = t.rotation_counter + \(result.queued)
            FROM campaign_steps s WHERE s.campaign_id = \(id) AND s.position = 1 AND t.id = s.template_id
            """)

        result.status = result.queued > 0 ? "running" : "completed"
        try await tx.execute(
            """
            UPDATE campaigns c SET status = \(result.status), started_at = now(),
                completed_at = CASE WHEN \(result.status) = 'completed' THEN now() END
            WHERE c.id = \(id)
            """)
        if result.delayedByQuietHours > 0, let earliest, let latest {
            // One event per campaign, not per message: how many moved, and the span of new times.
            try await Audit.record(
                tx, principal, action: "campaign.quiet_hours_delay", targetType: "campaign", targetID: id.text,
                details: .object([
                    ("messages", .number(String(result.delayedByQuietHours))),
                    ("scheduled_start", .string(start.postgresUTC)),
                    ("earliest_send_after", .string(earliest.postgresUTC)),
                    ("latest_send_after", .string(latest.postgresUTC)),
                ]))
        }
        if result.queued > 0 { try await tx.notify(channel: dispatchChannel) }
        return result
    }

    static let messageColumns = [
        "id", "org_id", "lead_id", "lead_phone_id", "campaign_id", "campaign_step_id", "template_variant_id", "direction", "purpose",
        "to_phone", "body", "status", "segments", "encoding", "idempotency_key", "send_after", "recipient_states", "recipient_zones",
    ]

    /// The template step and its enabled variants, or FAILED_PRECONDITION listing everything
    /// that is missing.
    static func checkReadiness(_ tx: Transaction, id: UUIDText) async throws -> (stepID: String, variants: [CampaignMessagePlanner.Variant])
    {
        var problems: [String] = []
        var stepID = ""
        var variants: [CampaignMessagePlanner.Variant] = []
        if let template = try await tx.query(
            """
            SELECT s.id::text AS step_id, t.id::text AS template_id, t.category, t.archived_at IS NOT NULL AS archived
            FROM campaign_steps s JOIN templates t ON t.id = s.template_id
            WHERE s.campaign_id = \(id) AND s.position = 1
            """
        ).firstRow {
            stepID = try template.decode("step_id", as: String.self)
            let templateID = try template.decode("template_id", as: String.self)
            let category = try template.decode("category", as: String.self)
            if !CampaignRecords.broadcastCategories.contains(category) {
                problems.append("template \(templateID) is a \(category) template; use an initial or follow_up template")
            }
            if try template.decode("archived", as: Bool.self) { problems.append("template \(templateID) is archived") }
            let rows = try await tx.query(
                """
                SELECT v.id::text AS id, v.position, v.body FROM template_variants v
                WHERE v.template_id = \(UUIDText(templateID)) AND v.enabled ORDER BY v.position, v.id
                """)
            if rows.isEmpty { problems.append("template \(templateID) has no enabled variant; add or enable one") }
            for row in rows {
                let position = try row.decode("position", as: Int.self)
                do {
                    variants.append(
                        CampaignMessagePlanner.Variant(
                            id: try row.decode("id", as: String.self),
                            text: try TemplateText(parsing: try row.decode("body", as: String.self))))
                } catch let error as TemplateText.ParseError {
                    problems.append("variant \(position) of template \(templateID) does not parse: \(error.message)")
                }
            }
        } else {
            problems.append("no template: set template_id to an initial or follow_up template")
        }
        let pool = try await tx.query(
            """
            SELECT count(*) AS total, count(*) FILTER (WHERE n.state IN ('warming', 'active')) AS sendable,
                   coalesce(string_agg(DISTINCT upper(n.state), ', '), '') AS states
            FROM campaign_numbers cn JOIN phone_numbers n ON n.id = cn.phone_number_id
            WHERE cn.campaign_id = \(id)
            """
        ).one()
        let total = try pool.decode("total", as: Int.self)
        if total == 0 {
            problems.append("no sender numbers: set sender_number_ids to at least one WARMING or ACTIVE number")
        } else if try pool.decode("sendable", as: Int.self) == 0 {
            problems.append(
                "none of the campaign's \(total) sender numbers can send (they are \(try pool.decode("states", as: String.self))); add a WARMING or ACTIVE number"
            )
        }
        guard problems.isEmpty else {
            throw DomainError.failedPrecondition("campaign \(id.text) cannot start: " + problems.joined(separator: "; "))
        }
        return (stepID, variants)
    }

    /// One target per lead of the audience, on the lead's best phone: the lowest position that is
    /// not opted out, not known invalid and (with consent filters) has a matching consent. A lead
    /// without one is a skipped target with the reason.
    static func materialiseTargets(_ tx: Transaction, orgID: OrgID, id: UUIDText, audience: StoredAudience) async throws -> Int {
        let lists = audience.listIDs.compactMap { UUID(uuidString: $0) }
        let tags = audience.tagIDs.compactMap { UUID(uuidString: $0) }
        var base: SQL = "true"
        if !lists.isEmpty || !tags.isEmpty {
            var sources: [SQL] = []
            if !lists.isEmpty {
                sources.append("l.id IN (SELECT lm.lead_id FROM lead_list_members lm WHERE lm.list_id = ANY(\(lists)))")
            }
            if !tags.isEmpty {
                sources.append(
                    audience.matchAllTags
                        ? """
                        l.id IN (SELECT lt.lead_id FROM lead_tags lt WHERE lt.tag_id = ANY(\(tags))
                                 GROUP BY lt.lead_id HAVING count(DISTINCT lt.tag_id) = \(tags.count))
                        """
                        : "l.id IN (SELECT lt.lead_id FROM lead_tags lt WHERE lt.tag_id = ANY(\(tags)))")
            }
            base = "(" + SQL.join(sources, separator: " OR ") + ")"
        }
        var filters: [SQL] = [base]
        if !audience.states.isEmpty { filters.append("l.property_state = ANY(\(audience.states))") }
        if !audience.counties.isEmpty { filters.append("lower(l.county) = ANY(\(audience.counties))") }
        if let minScore = audience.minScore { filters.append("l.score >= \(minScore)") }
        if let maxScore = audience.maxScore { filters.append("l.score <= \(maxScore)") }
        let consentMatches: SQL = audience.consent.isEmpty ? "true" : "p.consent_status = ANY(\(audience.consent))"
        if !audience.consent.isEmpty {
            filters.append("EXISTS (SELECT 1 FROM lead_phones p WHERE p.lead_id = l.id AND \(consentMatches))")
        }
        // Set-based with hash joins: every phone of the audience is looked at once, next to its
        // active opt-out if any, instead of one probe per lead. Right after a bulk import the
        // tables' statistics are stale (the app role cannot ANALYZE) and the planner, believing
        // them tiny, would pick per-lead nested loops that scan the whole org each time: 100,000
        // leads took minutes that way. So nested loops are off for this one statement.
        try await tx.execute("SET LOCAL enable_nestloop = off", prepared: false)
        let inserted = try await tx.execute(
            """
            WITH audience AS MATERIALIZED (
                SELECT l.id FROM leads l WHERE \(SQL.join(filters, separator: " AND "))
            ), phones AS MATERIALIZED (
                SELECT p.lead_id, p.id, p.position, o.id IS NOT NULL AS opted_out, p.is_valid IS NOT FALSE AS valid,
                       \(consentMatches) AS consent_ok
                FROM lead_phones p
                JOIN audience a ON a.id = p.lead_id
                LEFT JOIN opt_outs o ON o.org_id = p.org_id AND o.phone = p.phone AND o.revoked_at IS NULL
            ), best AS (
                SELECT DISTINCT ON (lead_id) lead_id, id FROM phones
                WHERE NOT opted_out AND valid AND consent_ok ORDER BY lead_id, position
            ), summary AS (
                SELECT lead_id, count(*) FILTER (WHERE NOT opted_out) AS reachable,
                       count(*) FILTER (WHERE NOT opted_out AND valid) AS usable
                FROM phones GROUP BY lead_id
            )
            INSERT INTO campaign_targets (org_id, campaign_id, lead_id, lead_phone_id, status, skip_reason)
            SELECT \(orgID), \(id), a.id, best.id,
                   CASE WHEN best.id IS NULL THEN 'skipped' ELSE 'active' END,
                   CASE
                       WHEN best.id IS NOT NULL THEN NULL
                       WHEN s.lead_id IS NULL THEN 'no_phone'
                       WHEN s.reachable = 0 THEN 'opted_out'
                       WHEN s.usable = 0 THEN 'invalid_phone'
                       ELSE 'consent_mismatch'
                   END
            FROM audience a
            LEFT JOIN best ON best.lead_id = a.id
            LEFT JOIN summary s ON s.lead_id = a.id
            """, prepared: false)
        try await tx.execute("SET LOCAL enable_nestloop = on", prepared: false)
        return inserted
    }

    /// The planner with the org's zone and quiet hours, state rules and the area-code table.
    static func makePlanner(
        _ tx: Transaction, variants: [CampaignMessagePlanner.Variant], start: Date, recipientClock: Bool
    ) async throws -> CampaignMessagePlanner {
        let org = try await tx.query(
            """
            SELECT o.time_zone, o.quiet_hours_start_minute::int4 AS qs, o.quiet_hours_end_minute::int4 AS qe,
                   coalesce(nullif(o.brand_name, ''), o.name) AS brand
            FROM orgs o WHERE o.id = ctower_current_org()
            """
        ).one()
        var stateWindows: QuietHours.StateWindows = [:]
        for row in try await tx.query(
            """
            SELECT state_code, window_start_minute::int4 AS ws, window_end_minute::int4 AS we
            FROM state_messaging_rules WHERE effective_from <= current_date
            """)
        {
            stateWindows[try row.decode("state_code", as: String.self)] = QuietHours.Window(
                start: try row.decode("ws", as: Int.self), end: try row.decode("we", as: Int.self))
        }
        var areaCodes: [String: RecipientLocation.AreaCode] = [:]
        for row in try await tx.query("SELECT area_code, region_code, zones FROM area_codes") {
            areaCodes[try row.decode(0, as: String.self)] = RecipientLocation.AreaCode(
                region: try row.decode(1, as: String.self), zones: try row.decode(2, as: [String].self))
        }
        let orgZone = TimeZone(identifier: try org.decode("time_zone", as: String.self)) ?? TimeZone(identifier: "America/New_York")!
        return CampaignMessagePlanner(
            variants: variants, start: start, recipientClock: recipientClock, orgZone: orgZone,
            orgWindow: QuietHours.Window(start: try org.decode("qs", as: Int.self), end: try org.decode("qe", as: Int.self)),
            stateWindows: stateWindows, areaCodes: areaCodes, brand: try org.decode("brand", as: String.self))
    }
}

/// One COPY chunk as an async sequence.
struct OneChunk: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let bytes: [UInt8]
    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        mutating func next() async -> [UInt8]? {
            defer { bytes = nil }
            return bytes
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
}
