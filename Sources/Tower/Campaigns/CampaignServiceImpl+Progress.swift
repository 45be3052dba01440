import Foundation
import TowerProto
import TowerRPC
import TowerStore

extension CampaignServiceImpl {
    public func startCampaign(request: StartCampaignRequest, context: ServerContext) async throws -> StartCampaignResponse {
        let id = try IdentityRecords.id(request.campaignID, field: "campaign_id")
        let response = try await tenancy.transaction(context) { tx, principal in
            let result = try await CampaignStarter.start(
                tx, principal: principal, id: id, requested: request.campaignID, clock: complianceClock)
            try await Audit.record(
                tx, principal, action: "campaign.start", targetType: "campaign", targetID: id.text,
                details: .object([
                    ("targets", .number(String(result.targets))), ("queued", .number(String(result.queued))),
                    ("skipped", .object(result.skipped.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })),
                    ("delayed_by_quiet_hours", .number(String(result.delayedByQuietHours))),
                ]))
            try await tx.notify(channel: CampaignProgressHub.channel, payload: id.text)
            var response = StartCampaignResponse()
            response.campaign = try await CampaignRecords.load(tx, id: id)
            response.targets = Int64(result.targets)
            response.queued = Int64(result.queued)
            response.skipped = Self.skipCounts(result.skipped)
            response.delayedByQuietHours = Int64(result.delayedByQuietHours)
            return response
        }
        if response.queued >= CampaignStarter.analyzeAfterMessages { await CampaignStarter.refreshStatistics(tenancy.store) }
        return response
    }

    static func skipCounts(_ counts: [String: Int]) -> [SkipCount] {
        counts.sorted { $0.key < $1.key }.map {
            var count = SkipCount()
            count.reason = $0.key
            count.count = Int64($0.value)
            return count
        }
    }

    /// Minimum spacing of re-reads while a campaign is busy: notifications arrive with every
    /// dispatcher batch, and a watcher needs a fresh picture, not every step.
    static let progressInterval: Duration = .milliseconds(200)

    public func watchCampaignProgress(
        request: WatchCampaignProgressRequest, responses: ResponseStreamWriter<CampaignProgress>, context: ServerContext
    ) async throws {
        let id = try IdentityRecords.id(request.campaignID, field: "campaign_id")
        // Subscribe before the first read, so a change between the read and the wait still wakes us.
        let (token, wakes) = try await progressHub.subscribe(id.text)
        do {
            try await streamProgress(id: id, requested: request.campaignID, wakes: wakes, responses: responses, context: context)
        } catch {
            await progressHub.unsubscribe(id.text, token: token)
            throw error
        }
        // Awaited, not deferred to a task: the last watcher leaving closes the LISTEN connection.
        await progressHub.unsubscribe(id.text, token: token)
    }

    private func streamProgress(
        id: UUIDText, requested: String, wakes: AsyncStream<Void>, responses: ResponseStreamWriter<CampaignProgress>,
        context: ServerContext
    ) async throws {
        var last: CampaignProgress?
        var iterator = wakes.makeAsyncIterator()
        while true {
            let readAt = ContinuousClock.now
            let progress = try await tenancy.transaction(context) { tx, _ in
                try await Self.readProgress(tx, id: id, requested: requested)
            }
            var comparable = progress
            comparable.observeTime = last?.observeTime
            if comparable != last {
                try await responses.write(progress)
                last = progress
            }
            if progress.state == .completed || progress.state == .cancelled { return }
            guard await iterator.next() != nil else { return }
            try await Task.sleep(until: readAt + Self.progressInterval)
        }
    }

    /// The campaign's counts; closes a running campaign with nothing left in the queue (the
    /// trigger does this too, but two dispatchers finishing the last messages at once can each
    /// miss it).
    static func readProgress(_ tx: Transaction, id: UUIDText, requested: String) async throws -> CampaignProgress {
        try await tx.execute(
            """
            UPDATE campaigns c SET status = 'completed', completed_at = now()
            WHERE c.id = \(id) AND c.status = 'running'
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.org_id = c.org_id AND m.campaign_id = c.id
                              AND m.status IN ('queued', 'claimed', 'sending'))
            """)
        guard
            let row = try await tx.query(
                """
                SELECT c.status, c.started_at,
                       (SELECT count(*) FROM campaign_targets t WHERE t.campaign_id = c.id) AS targets,
                       m.queued, m.sent, m.delivered, m.failed, m.cancelled
                FROM campaigns c,
                LATERAL (SELECT count(*) FILTER (WHERE status IN ('queued', 'claimed', 'sending')) AS queued,
                                count(*) FILTER (WHERE status = 'sent') AS sent,
                                count(*) FILTER (WHERE status = 'delivered') AS delivered,
                                count(*) FILTER (WHERE status IN ('failed', 'undelivered')) AS failed,
                                count(*) FILTER (WHERE status = 'cancelled') AS cancelled
                         FROM messages WHERE org_id = c.org_id AND campaign_id = c.id) m
                WHERE c.id = \(id)
                """
            ).firstRow
        else { throw DomainError.notFound("campaign", requested) }
        var p = CampaignProgress()
        p.campaignID = id.text
        p.state = CampaignRecords.state(try row.decode("status", as: String.self))
        p.targets = try row.decode("targets", as: Int64.self)
        p.queued = try row.decode("queued", as: Int64.self)
        p.sent = try row.decode("sent", as: Int64.self)
        p.delivered = try row.decode("delivered", as: Int64.self)
        p.failed = try row.decode("failed", as: Int64.self)
        p.cancelled = try row.decode("cancelled", as: Int64.self)
        if let started = try row.decode("started_at", as: Date?.self) {
            // Replies: inbound messages since the start from the campaign's leads (read from the
            // inbox index, which holds far fewer rows than the audience), or targets marked so.
            p.replied = try await tx.query(
                """
                SELECT count(*) AS n FROM (
                    SELECT t.lead_id FROM campaign_targets t WHERE t.campaign_id = \(id) AND t.status = 'replied'
                    UNION
                    SELECT t.lead_id FROM messages i
                    JOIN campaign_targets t ON t.campaign_id = \(id) AND t.lead_id = i.lead_id
                    WHERE i.org_id = ctower_current_org() AND i.direction = 'inbound' AND i.created_at >= \(started)
                ) r
                """
            ).one().decode("n", as: Int64.self)
            p.optedOut = try await tx.query(
                """
                SELECT count(DISTINCT t.lead_id) AS n FROM opt_outs o
                JOIN lead_phones p ON p.org_id = o.org_id AND p.phone = o.phone
                JOIN campaign_targets t ON t.campaign_id = \(id) AND t.lead_id = p.lead_id AND t.lead_phone_id = p.id
                WHERE o.org_id = ctower_current_org() AND o.created_at >= \(started)
                """
            ).one().decode("n", as: Int64.self)
        }
        var skipped: [String: Int] = [:]
        for row in try await tx.query(
            """
            SELECT skip_reason, count(*) AS n FROM campaign_targets WHERE campaign_id = \(id) AND status = 'skipped' GROUP BY 1
            UNION ALL
            SELECT skip_reason, count(*) FROM messages
            WHERE org_id = ctower_current_org() AND campaign_id = \(id) AND status = 'skipped' GROUP BY 1
            """)
        {
            skipped[try row.decode("skip_reason", as: String?.self) ?? "unspecified", default: 0] += try row.decode("n", as: Int.self)
        }
        p.skippedByReason = skipCounts(skipped)
        p.skipped = Int64(skipped.values.reduce(0, +))
        p.observeTime = Timestamps.proto(micros: Int64(Date().timeIntervalSince1970 * 1_000_000))
        return p
    }
}
