import Foundation
import TowerProtoRuntime
import TowerStore

/// A claimed message on its way to the carrier.
struct PlannedSend: Sendable {
    var id: UUID
    var idempotencyKey: String
    var purpose: String
    var toPhone: String
    var body: String
    var attempts: Int
    var numberID: UUID
    var fromPhone: String
    var connectionID: UUID
    /// When to hand it off, on this process's clock.
    var slot: Date
    /// Already `sending` (its slot was due at claim time); otherwise `claimed` until its slot.
    var marked: Bool
}

/// What one claim transaction produced.
struct ClaimPlan: Sendable {
    var claimed = 0
    var sends: [PlannedSend] = []
    /// When the claim locked its sender numbers (this process's clock).
    var numbersLockedAt: Date?
}

/// A message as claimed, before the gate.
struct ClaimedRow: Sendable {
    var id: UUID
    var idempotencyKey: String
    var purpose: String
    var toPhone: String
    var body: String
    var leadID: UUID?
    var leadPhoneID: UUID?
    var campaignID: UUID?
    var presetNumberID: UUID?
    var recipientStates: [String]
    var recipientZones: [String]
    var attempts: Int
    var sendAfter: Date
}

extension Dispatcher {
    /// Slots this close together are handed off in one group: fewer transactions, and a message a
    /// few milliseconds early does not change a number's rate (its slots are absolute).
    static let handOffTolerance: TimeInterval = 0.01

    /// One transaction in the org: lock due rows, gate them, choose senders and reserve their
    /// slots. Refusals become `skipped`, delays go back to the queue with a later `send_after`
    /// (both audited, set-based); the rest become `sending` (slot due now) or `claimed` by this
    /// dispatcher until their slot, for `handOff`.
    func claim(org: OrgID) async throws -> ClaimPlan {
        let me = configuration.instanceID
        let batchSize = configuration.batchSize
        let horizon = configuration.reservationHorizon.timeInterval
        let lead = slotLead()
        let plan = try await store.withTransaction(tenant: org) { tx in
            // Locked, not yet written: the batch's single UPDATE at the end gives each row its
            // final state (sending, claimed for a later slot, skipped, or queued later).
            let claimedRows = try await tx.query(
                """
                SELECT m.id, m.idempotency_key, m.purpose, m.to_phone, m.body, m.lead_id, m.lead_phone_id, m.campaign_id, m.phone_number_id,
                       m.recipient_states, m.recipient_zones, m.attempts::int8 AS attempts, m.send_after
                FROM messages m
                WHERE m.org_id = \(org) AND m.status = 'queued' AND m.send_after <= now()
                  AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = m.campaign_id AND c.status = 'running'))
                ORDER BY m.send_after LIMIT \(batchSize)
                FOR UPDATE OF m SKIP LOCKED
                """)
            guard !claimedRows.isEmpty else { return ClaimPlan() }
            var rows = try claimedRows.map { row in
                ClaimedRow(
                    id: try row.decode("id"), idempotencyKey: try row.decode("idempotency_key"), purpose: try row.decode("purpose"),
                    toPhone: try row.decode("to_phone"), body: try row.decode("body"), leadID: try row.decode("lead_id"),
                    leadPhoneID: try row.decode("lead_phone_id"),
                    campaignID: try row.decode("campaign_id"), presetNumberID: try row.decode("phone_number_id"),
                    recipientStates: try row.decode("recipient_states"), recipientZones: try row.decode("recipient_zones"),
                    attempts: try row.decode("attempts"), sendAfter: try row.decode("send_after"))
            }
            rows.sort { $0.sendAfter < $1.sendAfter }
            let localNow = Date()
            let orgRow = try await tx.query(
                """
                SELECT o.require_consent, o.quiet_hours_start_minute::int8 AS qs, o.quiet_hours_end_minute::int8 AS qe, o.time_zone,
                       clock_timestamp() AS now,
                       ((clock_timestamp() AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC' AS next_day
                FROM orgs o WHERE o.id = \(org)
                """
            ).one()
            let now: Date = try orgRow.decode("now")
            // Slots are reserved on the database's clock and waited for on ours.
            let clockOffset = now.timeIntervalSince(localNow)
            var gate = ComplianceGate(
                requireConsent: try orgRow.decode("require_consent"),
                orgWindow: QuietHours.Window(start: try orgRow.decode("qs"), end: try orgRow.decode("qe")),
                orgZone: TimeZone(identifier: try orgRow.decode("time_zone")) ?? TimeZone(identifier: "America/New_York")!)
            gate.clock = configuration.complianceClock
            let facts = try await Self.gateFacts(tx, org: org, rows: rows, requireConsent: gate.requireConsent)

            var outcome = BatchOutcome()
            var passed: [ClaimedRow] = []
            var passedPerPhone: [String: Int] = [:]
            for row in rows {
                let decision = gate.decide(
                    purpose: row.purpose, zones: row.recipientZones, facts: facts[row.id] ?? GateFacts(),
                    earlierInBatch: passedPerPhone[row.toPhone, default: 0], now: now)
                switch decision {
                case .pass:
                    passed.append(row)
                    passedPerPhone[row.toPhone, default: 0] += 1
                case .skip(let reason):
                    outcome.skip(row.id, reason: reason)
                case .delay(let until, let reason):
                    outcome.requeue(row.id, at: until, audit: reason)
                }
            }

            var plan = ClaimPlan(claimed: rows.count)
            if !passed.isEmpty {
                var senders = try await Self.senderContext(tx, org: org, rows: passed, horizon: horizon)
                let nextDay: Date = try orgRow.decode("next_day")
                // Slots start when this claim can be handed off, not when it began: a number idle
                // until now gets its first slot `lead` after the lock (the claim's usual tail to
                // commit), so the slot is still ahead at the hand-off. Reckoned from `now`, the
                // first slots of a run had passed by then and went out together.
                plan.numbersLockedAt = Date()
                let slotBase = now.addingTimeInterval(plan.numbersLockedAt!.timeIntervalSince(localNow) + lead)
                for row in passed {
                    let campaign = row.campaignID.flatMap { senders.campaigns[$0] }
                    let choice = senders.planner.choose(
                        preset: row.presetNumberID, pool: row.campaignID == nil ? senders.orgPool : campaign?.pool ?? [],
                        sticky: row.leadID.flatMap { senders.sticky[$0] }, campaignMPS: campaign?.messagesPerSecond,
                        campaignDailyCap: campaign?.dailyCap, now: slotBase, nextDay: nextDay)
                    switch choice {
                    case .assigned(let numberID, let slot):
                        let number = senders.planner.numbers[numberID]!
                        plan.sends.append(
                            PlannedSend(
                                id: row.id, idempotencyKey: row.idempotencyKey, purpose: row.purpose, toPhone: row.toPhone, body: row.body,
                                attempts: row.attempts, numberID: numberID, fromPhone: number.phone, connectionID: number.connectionID,
                                slot: slot.addingTimeInterval(-clockOffset),
                                marked: slot <= slotBase.addingTimeInterval(Self.handOffTolerance)))
                    case .deferred(let until):
                        outcome.requeue(row.id, at: until, audit: nil)
                    case .skip(let reason):
                        outcome.skip(row.id, reason: reason)
                    }
                }
                try await Self.saveReservations(tx, org: org, planner: senders.planner)
            }
            try await outcome.apply(tx, org: org)
            if !plan.sends.isEmpty {
                // Due now: `sending` at once (committed before the hand-off); later slots: `claimed`.
                // Every batch update joins its unnest by id and nothing else: the statements are
                // prepared, and a generic plan guesses 10 rows for `unnest($1)` and for
                // `m.id = ANY ($1)`; with both it joined 500 rows against 500 in a nested loop,
                // building a whole-row copy of the unnest per pair (13 % of PostgreSQL's time in
                // the benchmark). With the join alone it looks each id up in the primary key.
                let sends = plan.sends
                try await tx.execute(
                    """
                    UPDATE messages m SET status = v.status, claimed_at = now(), claimed_by = \(me),
                        attempts = m.attempts + CASE WHEN v.status = 'sending' THEN 1 ELSE 0 END,
                        phone_number_id = v.number, from_phone = v.sender, carrier_connection_id = v.connection,
                        sender_assigned = m.sender_assigned OR m.phone_number_id IS NULL
                    FROM unnest(\(sends.map(\.id)), \(sends.map { $0.marked ? "sending" : "claimed" })::text[], \(sends.map(\.numberID)),
                                \(sends.map(\.fromPhone))::text[], \(sends.map(\.connectionID))) AS v(id, status, number, sender, connection)
                    WHERE m.id = v.id
                    """)
            }
            return plan
        }
        if let locked = plan.numbersLockedAt { recordClaimTail(Date().timeIntervalSince(locked)) }
        return plan
    }

    /// Opt-out, DNC, consent, state rules and (for capped states) recent sends, for every
    /// non-compliance message of the batch. Each suppression list is probed once per batch with
    /// the batch's phones, one index lookup per phone (`LATERAL … LIMIT 1`, which the planner
    /// cannot turn into a scan of the org's whole list, whatever the statistics say: with stale
    /// statistics it filtered the org's 10,000 opt-outs against the batch's 500 phones, a third
    /// of PostgreSQL's time in the dispatch benchmark).
    static func gateFacts(_ tx: Transaction, org: OrgID, rows: [ClaimedRow], requireConsent: Bool) async throws -> [UUID: GateFacts] {
        let gated = rows.filter { $0.purpose != "compliance" }
        guard !gated.isEmpty else { return [:] }
        let phones = Array(Set(gated.map(\.toPhone)))
        let lists = try await tx.query(
            """
            SELECT ARRAY(SELECT p FROM unnest(\(phones)::text[]) p
                         CROSS JOIN LATERAL (SELECT 1 FROM opt_outs o
                                             WHERE o.org_id = \(org) AND o.phone = p AND o.revoked_at IS NULL LIMIT 1) hit) AS opted_out,
                   ARRAY(SELECT p FROM unnest(\(phones)::text[]) p
                         CROSS JOIN LATERAL (SELECT 1 FROM dnc_entries d
                                             WHERE d.org_id = \(org) AND d.phone = p AND (d.expires_at IS NULL OR d.expires_at > now())
                                             LIMIT 1) hit) AS dnc,
                   CASE WHEN \(requireConsent) THEN ARRAY(
                       SELECT p || ':' || latest.action FROM unnest(\(phones)::text[]) p
                       CROSS JOIN LATERAL (SELECT c.action FROM consent_records c WHERE c.org_id = \(org) AND c.phone = p
                                           ORDER BY c.recorded_at DESC LIMIT 1) latest) END AS consent,
                   CASE WHEN \(requireConsent) THEN ARRAY(
                       SELECT lp.phone::text FROM lead_phones lp
                       WHERE lp.id = ANY (\(gated.compactMap(\.leadPhoneID))) AND lp.consent_status = 'granted') END AS lead_granted
            """
        ).one()
        let optedOut = Set(try lists.decode("opted_out", as: [String].self))
        let doNotCall = Set(try lists.decode("dnc", as: [String].self))
        // The latest consent record decides; a phone without any falls back to its lead phone.
        var granted: Set<String> = []
        var recorded: Set<String> = []
        for entry in try lists.decode("consent", as: [String]?.self) ?? [] {
            guard let colon = entry.lastIndex(of: ":") else { continue }
            let phone = String(entry[..<colon])
            recorded.insert(phone)
            if entry[entry.index(after: colon)...] == "granted" { granted.insert(phone) }
        }
        let leadGranted = Set(try lists.decode("lead_granted", as: [String]?.self) ?? [])
        var rules: [String: (cap: Int?, window: QuietHours.Window)] = [:]
        for row in try await tx.query(
            """
            SELECT state_code, max_messages_per_24h::int8 AS cap, window_start_minute::int8 AS ws, window_end_minute::int8 AS we
            FROM state_messaging_rules WHERE effective_from <= current_date
            """)
        {
            rules[try row.decode("state_code")] = (
                try row.decode("cap"), QuietHours.Window(start: try row.decode("ws"), end: try row.decode("we"))
            )
        }
        var facts: [UUID: GateFacts] = [:]
        var cappedPhones: Set<String> = []
        var phoneOf: [UUID: String] = [:]
        for row in gated {
            var fact = GateFacts()
            fact.optedOut = optedOut.contains(row.toPhone)
            fact.doNotCall = doNotCall.contains(row.toPhone)
            fact.consented =
                !requireConsent || granted.contains(row.toPhone) || (!recorded.contains(row.toPhone) && leadGranted.contains(row.toPhone))
            // The strictest rule among the states the recipient may be in.
            for state in row.recipientStates {
                guard let rule = rules[state] else { continue }
                fact.stateWindow = fact.stateWindow.map { $0.intersected(with: rule.window) } ?? rule.window
                if let cap = rule.cap { fact.capPer24Hours = min(fact.capPer24Hours ?? cap, cap) }
            }
            if fact.capPer24Hours != nil { cappedPhones.insert(row.toPhone) }
            phoneOf[row.id] = row.toPhone
            facts[row.id] = fact
        }
        guard !cappedPhones.isEmpty else { return facts }
        // Serialise capped phones across dispatchers so two batches cannot both take the last
        // message of a phone's 24-hour allowance; claims of others count as sends.
        let capped = cappedPhones.sorted()
        try await tx.execute(
            """
            SELECT count(pg_advisory_xact_lock(hashtextextended('ctower.state_cap|' || \(org)::text || '|' || p, 0)))
            FROM (SELECT p FROM unnest(\(capped)::text[]) p ORDER BY p) s
            """)
        let recent = try await tx.query(
            """
            SELECT v.phone, ARRAY(
                SELECT COALESCE(x.sent_at, x.claimed_at) AS at FROM messages x
                WHERE x.org_id = \(org) AND x.to_phone = v.phone AND x.direction = 'outbound'
                  AND x.status IN ('claimed', 'sending', 'sent', 'delivered', 'undelivered')
                  AND NOT (x.id = ANY (\(rows.map(\.id))))
                  AND COALESCE(x.sent_at, x.claimed_at) > now() - interval '24 hours'
                ORDER BY at DESC) AS recent
            FROM unnest(\(capped)::text[]) v(phone)
            """)
        var recentByPhone: [String: [Date]] = [:]
        for row in recent { recentByPhone[try row.decode("phone")] = try row.decode("recent", as: [Date].self) }
        for (id, phone) in phoneOf where facts[id]?.capPer24Hours != nil {
            facts[id]?.recentSends = recentByPhone[phone] ?? []
        }
        return facts
    }

    struct CampaignLimits: Sendable {
        var pool: [UUID]
        var messagesPerSecond: Double?
        var dailyCap: Int?
    }

    struct SenderContext: Sendable {
        var planner: SenderPlanner
        var campaigns: [UUID: CampaignLimits]
        var orgPool: [UUID]
        var sticky: [UUID: UUID]
    }

    /// The numbers the batch may use, locked (in id order, so dispatchers never deadlock), with
    /// their slots and today's counts; the campaigns' pools and limits; each lead's last sender.
    static func senderContext(_ tx: Transaction, org: OrgID, rows: [ClaimedRow], horizon: TimeInterval) async throws -> SenderContext {
        let campaignIDs = Array(Set(rows.compactMap(\.campaignID)))
        var campaigns: [UUID: CampaignLimits] = [:]
        if !campaignIDs.isEmpty {
            for row in try await tx.query(
                """
                SELECT c.id, c.messages_per_second::float8 AS mps, c.daily_cap::int8 AS daily_cap,
                       ARRAY(SELECT cn.phone_number_id FROM campaign_numbers cn WHERE cn.campaign_id = c.id) AS pool
                FROM campaigns c WHERE c.id = ANY (\(campaignIDs))
                """)
            {
                campaigns[try row.decode("id")] = CampaignLimits(
                    pool: try row.decode("pool"), messagesPerSecond: try row.decode("mps"), dailyCap: try row.decode("daily_cap"))
            }
        }
        let needsOrgPool = rows.contains { $0.campaignID == nil && $0.presetNumberID == nil }
        let wanted = Array(Set(campaigns.values.flatMap(\.pool) + rows.compactMap(\.presetNumberID)))
        var numbers: [SenderNumber] = []
        for row in try await tx.query(
            """
            SELECT n.id, n.phone, n.carrier_connection_id, n.messages_per_second::float8 AS mps, ctower_effective_daily_cap(n.state, n.daily_cap, n.warming_started_on, (clock_timestamp() AT TIME ZONE 'UTC')::date)::int8 AS daily_cap,
                   GREATEST(n.next_send_at, now() - interval '1 hour') AS next_slot, COALESCE(u.sent_count, 0)::int8 AS used
            FROM phone_numbers n
            JOIN carrier_connections cc ON cc.id = n.carrier_connection_id AND cc.status <> 'disabled'
            LEFT JOIN phone_number_daily_usage u ON u.phone_number_id = n.id AND u.day = (clock_timestamp() AT TIME ZONE 'UTC')::date
            WHERE n.state IN ('warming', 'active') AND (n.id = ANY (\(wanted)) OR \(needsOrgPool))
            ORDER BY n.id
            FOR UPDATE OF n
            """)
        {
            numbers.append(
                SenderNumber(
                    id: try row.decode("id"), phone: try row.decode("phone"), connectionID: try row.decode("carrier_connection_id"),
                    messagesPerSecond: try row.decode("mps"), dailyCap: try row.decode("daily_cap"), nextSlot: try row.decode("next_slot"),
                    usedToday: try row.decode("used")))
        }
        var sticky: [UUID: UUID] = [:]
        let leads = Array(Set(rows.filter { $0.presetNumberID == nil }.compactMap(\.leadID)))
        if !leads.isEmpty {
            for row in try await tx.query(
                """
                -- One walk down messages_thread_idx per lead, newest first. `lead_id = ANY (...)`
                -- let a generic plan with a fresh table's statistics scan the org's every
                -- outbound message (messages_recipient_idx on org_id, lead_id as a filter).
                SELECT l.lead AS lead_id, last.phone_number_id FROM unnest(\(leads)) l(lead)
                CROSS JOIN LATERAL (
                    SELECT x.phone_number_id FROM messages x
                    WHERE x.org_id = \(org) AND x.lead_id = l.lead AND x.direction = 'outbound' AND x.phone_number_id IS NOT NULL
                      AND x.status IN ('sending', 'sent', 'delivered', 'undelivered')
                    ORDER BY x.created_at DESC LIMIT 1) last
                """)
            {
                sticky[try row.decode("lead_id")] = try row.decode("phone_number_id")
            }
        }
        return SenderContext(
            planner: SenderPlanner(numbers: numbers, horizon: horizon), campaigns: campaigns,
            orgPool: needsOrgPool ? numbers.map(\.id) : [], sticky: sticky)
    }

    /// Writes the numbers' moved slots and today's reservations back, in the claim's transaction.
    static func saveReservations(_ tx: Transaction, org: OrgID, planner: SenderPlanner) async throws {
        guard !planner.touched.isEmpty else { return }
        // Number order everywhere (here and in the hand-off's usage update): no two transactions
        // lock the same usage rows in opposite orders.
        let touched = planner.touched.sorted { $0.uuidString < $1.uuidString }
        try await tx.execute(
            """
            UPDATE phone_numbers n SET next_send_at = v.at
            FROM unnest(\(touched), \(touched.map { planner.numbers[$0]!.nextSlot })) AS v(id, at) WHERE n.id = v.id
            """)
        let reserved = planner.reservations.sorted { $0.key.uuidString < $1.key.uuidString }
        try await tx.execute(
            """
            INSERT INTO phone_number_daily_usage AS u (org_id, phone_number_id, day, sent_count)
            SELECT \(org), v.id, (clock_timestamp() AT TIME ZONE 'UTC')::date, v.n::int
            FROM unnest(\(reserved.map(\.key)), \(reserved.map(\.value))) AS v(id, n)
            -- Usage rows are locked in number order everywhere (here and when a hand-off gives
            -- back unused reservations), so concurrent claims and hand-offs cannot deadlock.
            ORDER BY v.id
            ON CONFLICT (phone_number_id, day) DO UPDATE SET sent_count = u.sent_count + excluded.sent_count
            """)
    }
}

/// The batch's refusals and delays, written with one statement each plus their audit rows.
struct BatchOutcome: Sendable {
    var skipIDs: [UUID] = []
    var skipReasons: [String] = []
    var requeueIDs: [UUID] = []
    var requeueTimes: [Date] = []
    var auditActions: [String] = []
    var auditTargets: [String] = []
    var auditDetails: [String] = []

    mutating func skip(_ id: UUID, reason: String) {
        skipIDs.append(id)
        skipReasons.append(reason)
        audit("message.skipped", id, .object([("reason", .string(reason))]))
    }

    /// Back to the queue at `at`; a compliance delay (`audit` reason) is audited, a rate
    /// deferral is not.
    mutating func requeue(_ id: UUID, at: Date, audit reason: String?) {
        requeueIDs.append(id)
        requeueTimes.append(at)
        if let reason {
            audit(
                "message.delayed", id,
                .object([("reason", .string(reason)), ("send_after", .string(ISO8601DateFormatter().string(from: at)))]))
        }
    }

    private mutating func audit(_ action: String, _ id: UUID, _ details: JSONValue) {
        auditActions.append(action)
        auditTargets.append(id.uuidString.lowercased())
        auditDetails.append(details.serialized())
    }

    func apply(_ tx: Transaction, org: OrgID) async throws {
        if !skipIDs.isEmpty {
            try await tx.execute(
                """
                UPDATE messages m SET status = 'skipped', skip_reason = v.reason
                FROM unnest(\(skipIDs), \(skipReasons)) AS v(id, reason) WHERE m.id = v.id
                """)
        }
        if !requeueIDs.isEmpty {
            try await tx.execute(
                """
                UPDATE messages m SET status = 'queued', send_after = v.at, claimed_at = NULL, claimed_by = NULL
                FROM unnest(\(requeueIDs), \(requeueTimes)) AS v(id, at) WHERE m.id = v.id
                """)
        }
        if !auditActions.isEmpty {
            try await tx.execute(
                """
                INSERT INTO audit_events (org_id, action, target_type, target_id, metadata)
                SELECT \(org), v.action, 'message', v.target, v.details::jsonb
                FROM unnest(\(auditActions), \(auditTargets), \(auditDetails)) AS v(action, target, details)
                """)
        }
    }
}
