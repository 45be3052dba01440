import Foundation
import Synchronization
import TowerCarrierHost
import TowerProto
import TowerStore

/// How one hand-off ended.
enum SendOutcome: Sendable, Hashable {
    /// The carrier has it (provider id may be empty when the carrier did not say), with its
    /// price when the carrier gave one with the answer.
    case sent(providerID: String, segments: Int, price: Carrier_Price? = nil)
    /// Certainly not sent: back to the queue after `after`.
    case requeue(after: TimeInterval, code: String)
    /// Will not succeed.
    case failed(code: String)
    /// The carrier may have it and QueryStatus could not tell: left `sending` for the
    /// stale-claim sweep, which asks again before any resend.
    case unresolved
}

extension Dispatcher {
    /// Hands the planned sends off at their slots, in groups of those that are due.
    func handOff(_ planned: [PlannedSend], org: OrgID) async {
        var pending = planned.sorted { $0.slot < $1.slot }[...]
        while let first = pending.first {
            if Task.isCancelled { return }
            let wait = first.slot.timeIntervalSinceNow
            if wait > 0.001 {
                try? await Task.sleep(for: .microseconds(Int(wait * 1_000_000)))
                continue
            }
            let cutoff = Date().addingTimeInterval(Self.handOffTolerance)
            let due = pending.prefix { $0.slot <= cutoff }
            pending = pending.dropFirst(due.count)
            do {
                try await send(Array(due), org: org)
            } catch {
                // Rows stay claimed/sending; the stale-claim sweep recovers them.
                if Task.isCancelled {
                    logger.notice("stopped during a hand-off; the next dispatcher recovers its claims", metadata: ["count": "\(due.count)"])
                } else {
                    logger.error("hand-off failed", metadata: ["org": "\(org)", "count": "\(due.count)", "error": "\(error)"])
                }
            }
        }
    }

    /// Marks the group `sending` unless the claim already did (committed before anything reaches
    /// the carrier, so a crash afterwards is resolved with QueryStatus), then, in one transaction
    /// holding the rows still claimed by this dispatcher (row locks) and the recipients' opt-out
    /// locks shared, re-checks opt-outs, sends, and records the outcomes.
    func send(_ group: [PlannedSend], org: OrgID) async throws {
        let me = configuration.instanceID
        var marked = Set(group.filter(\.marked).map(\.id))
        let waiting = group.filter { !$0.marked }.map(\.id)
        if !waiting.isEmpty {
            marked.formUnion(
                try await store.withTransaction(tenant: org) { tx in
                    let rows = try await tx.query(
                        """
                        UPDATE messages m SET status = 'sending', claimed_at = now(), attempts = m.attempts + 1
                        WHERE m.id = ANY (\(waiting)) AND m.status = 'claimed' AND m.claimed_by = \(me)
                        RETURNING m.id
                        """)
                    return Set(try rows.map { try $0.decode("id", as: UUID.self) })
                })
        }
        // A claim recovered by another dispatcher after our lease ran out is theirs now.
        let live = group.filter { marked.contains($0.id) }
        guard !live.isEmpty else { return }

        // Resolve hosts outside the hand-off transaction: it may decrypt and configure.
        var hosts: [UUID: (host: CarrierHost, connection: String, limiter: AsyncSemaphore)] = [:]
        var unreachable: [UUID: String] = [:]
        for connectionID in Set(live.map(\.connectionID)) {
            do { hosts[connectionID] = try await host(for: connectionID, org: org) } catch {
                unreachable[connectionID] = (error as? CarrierError).map { IntegrationServiceImpl.errorCode($0) } ?? "unavailable"
                logger.warning("carrier connection unavailable", metadata: ["connection": "\(connectionID)", "error": "\(error)"])
            }
        }

        // The body may run again after a deadlock; what reached the carrier must not be sent twice,
        // and what was refused stays refused: a retry records the first attempt's decisions.
        let handedOff = Mutex<(outcomes: [UUID: SendOutcome], refused: [UUID: String])?>(nil)
        let refusedByParkedStatus: [UUID] = try await store.withTransaction(tenant: org) { tx in
            // Our claims first, locked until the outcomes are recorded. The stale-claim sweep skips
            // locked rows, so a message waiting here for a send permit past its lease is not taken
            // over (and sent again) by another dispatcher; if this process dies, its connection
            // and the locks go with it. A row the sweep took before this lock is no longer ours
            // and is not sent. Taking these before the phone locks also keeps an opt-out out of
            // a lock cycle: it waits for the phone lock, never for a `sending` row.
            let held = Set(
                try await tx.query(
                    """
                    SELECT m.id FROM messages m
                    WHERE m.id = ANY (\(live.map(\.id))) AND m.status = 'sending' AND m.claimed_by = \(me)
                    ORDER BY m.id
                    FOR NO KEY UPDATE
                    """
                ).map { try $0.decode("id", as: UUID.self) })
            let mine = live.filter { held.contains($0.id) }
            guard !mine.isEmpty else { return [] }
            try await tx.execute(
                """
                SELECT count(pg_advisory_xact_lock_shared(k))
                FROM (SELECT DISTINCT ctower_phone_lock_key(\(org), p) AS k FROM unnest(\(mine.map(\.toPhone))::text[]) p ORDER BY k) s
                """)
            let decided: (outcomes: [UUID: SendOutcome], refused: [UUID: String])
            if let earlier = handedOff.withLock({ $0 }) {
                decided = earlier
            } else {
                // Refused at the last moment: the phone opted out, or it is no longer one of its
                // lead's phones (UpdateLead took it off while the message waited). Both writers hold
                // the phone's lock exclusively, so after they commit nothing to the phone is handed off.
                var refused: [UUID: String] = [:]
                let phones = Array(Set(mine.map(\.toPhone)))
                for row in try await tx.query(
                    """
                    WITH opted AS (
                        -- One index lookup per phone, as in the gate (Dispatcher.gateFacts).
                        SELECT p FROM unnest(\(phones)::text[]) p
                        CROSS JOIN LATERAL (SELECT 1 FROM opt_outs o
                                            WHERE o.org_id = \(org) AND o.phone = p AND o.revoked_at IS NULL LIMIT 1) hit)
                    SELECT m.id, CASE WHEN m.to_phone IN (SELECT p FROM opted) THEN 'opted_out' ELSE 'phone_removed' END AS reason
                    FROM messages m
                    WHERE m.id = ANY (\(mine.map(\.id))) AND m.purpose <> 'compliance'
                      AND (m.to_phone IN (SELECT p FROM opted)
                           OR (m.lead_id IS NOT NULL AND NOT EXISTS (
                                   SELECT 1 FROM lead_phones lp WHERE lp.lead_id = m.lead_id AND lp.phone = m.to_phone)))
                    """)
                {
                    refused[try row.decode("id")] = try row.decode("reason")
                }
                let outcomes = await self.deliver(mine.filter { refused[$0.id] == nil }, hosts: hosts, unreachable: unreachable)
                decided = (outcomes, refused)
                handedOff.withLock { $0 = decided }
            }
            return try await Self.record(
                tx, org: org, group: mine, outcomes: decided.outcomes.filter { held.contains($0.key) },
                refused: decided.refused.filter { held.contains($0.key) }, claimedBy: me)
        }
        // 21610: the recipient unsubscribed at the carrier; suppress the phone org-wide (Compliance/CarrierOptOuts).
        let settled = handedOff.withLock { $0?.outcomes } ?? [:]
        // Refused with 21610 on the Send, or by a parked status that the provider-id trigger
        // applied while the hand-off recorded the send.
        let unsubscribed = settled.keys.filter { settled[$0] == .failed(code: CarrierOptOuts.unsubscribedCode) } + refusedByParkedStatus
        if !unsubscribed.isEmpty { await CarrierOptOuts.recordRefusals(store: store, org: org, messageIDs: unsubscribed, logger: logger) }
    }

    /// Sends concurrently, at most the plugin's max in-flight per carrier across this process.
    func deliver(
        _ sends: [PlannedSend], hosts: [UUID: (host: CarrierHost, connection: String, limiter: AsyncSemaphore)],
        unreachable: [UUID: String]
    ) async -> [UUID: SendOutcome] {
        let timeout = configuration.sendTimeout
        let maxAttempts = configuration.maxAttempts
        return await withTaskGroup(of: (UUID, SendOutcome).self) { group in
            for send in sends {
                guard let target = hosts[send.connectionID] else {
                    let code = unreachable[send.connectionID] ?? "unavailable"
                    group.addTask {
                        (send.id, Self.retryOrFail(attempt: send.attempts + 1, maxAttempts: maxAttempts, code: code, after: nil))
                    }
                    continue
                }
                group.addTask {
                    await target.limiter.acquire()
                    defer { target.limiter.release() }
                    return (
                        send.id,
                        await Self.sendOne(
                            send, host: target.host, connection: target.connection, timeout: timeout, maxAttempts: maxAttempts)
                    )
                }
            }
            var outcomes: [UUID: SendOutcome] = [:]
            for await (id, outcome) in group { outcomes[id] = outcome }
            return outcomes
        }
    }

    static func sendOne(_ send: PlannedSend, host: CarrierHost, connection: String, timeout: Duration, maxAttempts: Int) async
        -> SendOutcome
    {
        var request = Carrier_SendRequest()
        request.idempotencyKey = send.idempotencyKey
        request.from = send.fromPhone
        request.to = send.toPhone
        request.body = send.body
        let startedAt = Date()
        do {
            let result = try await host.send(request, connection: connection, timeout: timeout)
            return .sent(providerID: result.providerMessageID, segments: result.segments, price: result.price)
        } catch {
            switch error.submissionState {
            case .submitted:
                return .sent(providerID: "", segments: 0)
            case .unknown:
                // Never resend blind: ask the carrier whether it has the message.
                switch await resolve(
                    key: send.idempotencyKey, to: send.toPhone, from: send.fromPhone, notBefore: startedAt.addingTimeInterval(-1),
                    host: host,
                    connection: connection)
                {
                case .some(.some(let providerID)): return .sent(providerID: providerID, segments: 0)
                case .some(.none): break
                case .none: return .unresolved
                }
            case .notSubmitted:
                break
            }
            let code = error.carrierCode.isEmpty ? IntegrationServiceImpl.errorCode(error) : error.carrierCode
            if error.code == .permanent { return .failed(code: code) }
            return retryOrFail(attempt: send.attempts + 1, maxAttempts: maxAttempts, code: code, after: error.retryAfter?.timeInterval)
        }
    }

    /// Backoff 2^attempt seconds (at most 5 minutes) with jitter, or the carrier's retry-after;
    /// failed once the attempts are used up.
    static func retryOrFail(attempt: Int, maxAttempts: Int, code: String, after: TimeInterval?) -> SendOutcome {
        if attempt >= maxAttempts { return .failed(code: code) }
        let backoff = after ?? min(300, pow(2, Double(attempt))) * Double.random(in: 0.5...1)
        return .requeue(after: backoff, code: code)
    }

    /// The carrier's provider id when it has the message (`.some(id)`), `.some(nil)` when it
    /// certainly does not, nil when it could not be asked.
    static func resolve(
        key: String, to: String, from: String, notBefore: Date, host: CarrierHost, connection: String
    ) async -> String?? {
        var hint = Google_Protobuf_Timestamp()
        hint.seconds = Int64(notBefore.timeIntervalSince1970)
        for attempt in 0..<3 {
            do {
                let status = try await host.queryStatus(
                    idempotencyKey: key, to: to, from: from, notBefore: hint, connection: connection, timeout: .seconds(10))
                return status.found ? .some(status.providerMessageID) : .some(nil)
            } catch {
                try? await Task.sleep(for: .milliseconds(50 * (attempt + 1)))
            }
        }
        return nil
    }

    /// Writes the group's outcomes, one statement per kind (sent, back to the queue, failed,
    /// refused at the last moment and audited), and the daily-usage correction for reservations
    /// that were not used. The only writer of a hand-off's decisions, so a retried transaction
    /// writes them all again.
    /// Returns the sends that a parked 21610 status (applied by migration 0020's provider-id
    /// trigger as the send was recorded) refused: their opt-outs are recorded after the commit.
    @discardableResult
    static func record(
        _ tx: Transaction, org: OrgID, group: [PlannedSend], outcomes: [UUID: SendOutcome], refused: [UUID: String], claimedBy me: String
    ) async throws -> [UUID] {
        var sentIDs: [UUID] = []
        var providerIDs: [String] = []
        var segments: [Int] = []
        var costs: [Int64] = []
        var currencies: [String] = []
        var requeueIDs: [UUID] = []
        var requeueTimes: [Date] = []
        var requeueCodes: [String] = []
        var failedIDs: [UUID] = []
        var failedCodes: [String] = []
        var unused: [UUID: Int] = [:]
        var usedSegments: [UUID: Int] = [:]
        let number = Dictionary(group.map { ($0.id, $0.numberID) }, uniquingKeysWith: { a, _ in a })
        for id in refused.keys { unused[number[id]!, default: 0] += 1 }
        for (id, outcome) in outcomes {
            switch outcome {
            case .sent(let providerID, let count, let price):
                sentIDs.append(id)
                providerIDs.append(providerID)
                segments.append(count)
                // -1 / "": no price with the answer (a later status or the upkeep's query may give one).
                costs.append(price.map(\.amountMicros) ?? -1)
                currencies.append(price.map(\.currency) ?? "")
                usedSegments[number[id]!, default: 0] += max(count, 1)
            case .requeue(let after, let code):
                requeueIDs.append(id)
                requeueTimes.append(Date().addingTimeInterval(after))
                requeueCodes.append(code)
                unused[number[id]!, default: 0] += 1
            case .failed(let code):
                failedIDs.append(id)
                failedCodes.append(code)
            case .unresolved:
                continue
            }
        }
        if !sentIDs.isEmpty {
            try await tx.execute(
                """
                UPDATE messages m SET status = 'sent', sent_at = clock_timestamp(), claimed_by = NULL,
                    provider_message_id = NULLIF(v.provider_id, ''),
                    segments = COALESCE(NULLIF(LEAST(v.segments, 20), 0)::smallint, m.segments), error_code = NULL,
                    cost_micros = CASE WHEN v.cost >= 0 AND v.currency <> '' THEN v.cost ELSE m.cost_micros END,
                    currency = CASE WHEN v.cost >= 0 AND v.currency <> '' THEN v.currency ELSE m.currency END
                FROM unnest(\(sentIDs), \(providerIDs)::text[], \(segments), \(costs), \(currencies)::text[])
                    AS v(id, provider_id, segments, cost, currency)
                WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_by = \(me)
                """)
        }
        let refusedByParkedStatus =
            sentIDs.isEmpty
            ? []
            : try await tx.query(
                """
                SELECT m.id FROM messages m
                WHERE m.id = ANY (\(sentIDs)) AND m.error_code = \(CarrierOptOuts.unsubscribedCode) AND m.purpose <> 'compliance'
                """
            ).map { try $0.decode("id", as: UUID.self) }
        if !requeueIDs.isEmpty {
            try await requeue(tx, ids: requeueIDs, at: requeueTimes, codes: requeueCodes, claimedBy: me)
        }
        if !failedIDs.isEmpty {
            try await tx.execute(
                """
                UPDATE messages m SET status = 'failed', failed_at = now(), error_code = v.code, claimed_by = NULL
                FROM unnest(\(failedIDs), \(failedCodes)::text[]) AS v(id, code)
                WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_by = \(me)
                """)
        }
        if !refused.isEmpty {
            let ids = Array(refused.keys)
            try await tx.execute(
                """
                UPDATE messages m SET status = 'skipped', skip_reason = v.reason, claimed_by = NULL
                FROM unnest(\(ids), \(ids.map { refused[$0]! })::text[]) AS v(id, reason)
                WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_by = \(me)
                """)
            var outcome = BatchOutcome()
            for (id, reason) in refused.sorted(by: { $0.key.uuidString < $1.key.uuidString }) { outcome.auditOnly(id, reason: reason) }
            try await outcome.apply(tx, org: org)
        }
        let numbers = Set(unused.keys).union(usedSegments.keys).sorted { $0.uuidString < $1.uuidString }
        if !numbers.isEmpty {
            // In number order, as the claim takes them: no deadlock between hand-offs and claims.
            try await tx.execute(
                """
                SELECT count(*) FROM (
                    SELECT 1 FROM phone_number_daily_usage u
                    WHERE u.phone_number_id = ANY (\(numbers)) AND u.day = (clock_timestamp() AT TIME ZONE 'UTC')::date
                    ORDER BY u.phone_number_id FOR UPDATE) locked
                """)
            try await tx.execute(
                """
                UPDATE phone_number_daily_usage u
                SET sent_count = GREATEST(0, u.sent_count - v.unused), segment_count = u.segment_count + v.segments
                FROM unnest(\(numbers), \(numbers.map { unused[$0] ?? 0 }), \(numbers.map { usedSegments[$0] ?? 0 })) AS v(id, unused, segments)
                WHERE u.phone_number_id = v.id AND u.day = (clock_timestamp() AT TIME ZONE 'UTC')::date
                """)
        }
        return refusedByParkedStatus
    }

    /// Back to the queue, forgetting a sender the dispatcher chose (a preset one stays); only rows
    /// still claimed by `me` (another dispatcher may have recovered the rest).
    static func requeue(_ tx: Transaction, ids: [UUID], at: [Date], codes: [String?], claimedBy me: String) async throws {
        try await tx.execute(
            """
            UPDATE messages m SET status = 'queued', send_after = v.at, claimed_at = NULL, claimed_by = NULL,
                error_code = COALESCE(NULLIF(v.code, ''), m.error_code),
                phone_number_id = CASE WHEN m.sender_assigned THEN NULL ELSE m.phone_number_id END,
                from_phone = CASE WHEN m.sender_assigned THEN NULL ELSE m.from_phone END,
                carrier_connection_id = CASE WHEN m.sender_assigned THEN NULL ELSE m.carrier_connection_id END,
                sender_assigned = false
            FROM unnest(\(ids), \(at), \(codes.map { $0 ?? "" })::text[]) AS v(id, at, code)
            WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_by = \(me)
            """)
    }
}

extension BatchOutcome {
    /// Audits a refusal whose status was already written.
    mutating func auditOnly(_ id: UUID, reason: String) {
        skip(id, reason: reason)
        skipIDs.removeLast()
        skipReasons.removeLast()
    }
}
