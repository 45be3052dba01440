import Foundation
import TowerCarrierHost
import TowerStore

extension Dispatcher {
    /// Recovers claims whose lease ran out (their dispatcher died or lost its database):
    /// `claimed` rows never reached a carrier and go straight back to the queue; `sending` rows
    /// may have, so this dispatcher takes them over and asks the carrier (QueryStatus by
    /// idempotency key): found → sent, not found → queued again (and gated again). A row whose
    /// carrier cannot answer keeps its fresh claim and is asked again a lease later.
    ///
    /// A live hand-off holds its rows locked until it has recorded their outcomes, and the sweep
    /// skips locked rows: however long a message waits for a send permit, only a dispatcher that
    /// died (its connection, and so its locks, gone) loses it. The lease is longer than a send's
    /// timeout, after which the plugin has cancelled it; so "not found" cannot be a send still on
    /// its way.
    func recoverStaleClaims() async {
        let lease = configuration.claimLease.timeInterval
        var orgs: [OrgID]
        do {
            orgs = try await store.withTransaction(tenant: nil, readOnly: true) { tx in
                try await tx.query(
                    "SELECT ctower_dispatch_stale_orgs(now() - make_interval(secs => \(lease)), 100)::text AS org_id"
                ).compactMap { OrgID(try $0.decode("org_id", as: String.self)) }
            }
            if let pinned = configuration.orgs { orgs = orgs.filter(pinned.contains) }
        } catch {
            if !Task.isCancelled { logger.error("finding stale claims failed", metadata: ["error": "\(error)"]) }
            return
        }
        for org in orgs {
            if Task.isCancelled { return }
            do { try await recover(org: org, lease: lease) } catch {
                logger.error("recovering stale claims failed", metadata: ["org": "\(org)", "error": "\(error)"])
            }
        }
    }

    private struct InDoubt: Sendable {
        var id: UUID
        var key: String
        var toPhone: String
        var fromPhone: String
        var connectionID: UUID
        var handedOffAt: Date
    }

    private func recover(org: OrgID, lease: TimeInterval) async throws {
        let me = configuration.instanceID
        let (released, inDoubt) = try await store.withTransaction(tenant: org) { tx in
            let released = try await tx.execute(
                """
                UPDATE messages m SET status = 'queued', claimed_at = NULL, claimed_by = NULL,
                    phone_number_id = CASE WHEN m.sender_assigned THEN NULL ELSE m.phone_number_id END,
                    from_phone = CASE WHEN m.sender_assigned THEN NULL ELSE m.from_phone END,
                    carrier_connection_id = CASE WHEN m.sender_assigned THEN NULL ELSE m.carrier_connection_id END,
                    sender_assigned = false
                WHERE m.id IN (SELECT x.id FROM messages x
                               WHERE x.claimed_by IS NOT NULL AND x.status = 'claimed' AND x.claimed_at < now() - make_interval(secs => \(lease))
                               FOR UPDATE SKIP LOCKED)
                """)
            let rows = try await tx.query(
                """
                WITH stale AS (
                    SELECT x.id, x.claimed_at FROM messages x
                    WHERE x.claimed_by IS NOT NULL AND x.status = 'sending' AND x.claimed_at < now() - make_interval(secs => \(lease))
                    ORDER BY x.claimed_at LIMIT 2000 FOR UPDATE SKIP LOCKED)
                UPDATE messages m SET claimed_by = \(me), claimed_at = now()
                FROM stale WHERE m.id = stale.id
                RETURNING m.id, m.idempotency_key, m.to_phone, m.from_phone, m.carrier_connection_id, stale.claimed_at AS handed_off_at
                """)
            let inDoubt = try rows.map { row in
                InDoubt(
                    id: try row.decode("id"), key: try row.decode("idempotency_key"), toPhone: try row.decode("to_phone"),
                    fromPhone: try row.decode("from_phone"), connectionID: try row.decode("carrier_connection_id"),
                    handedOffAt: try row.decode("handed_off_at"))
            }
            return (released, inDoubt)
        }
        guard released > 0 || !inDoubt.isEmpty else { return }
        logger.notice(
            "recovering stale claims", metadata: ["org": "\(org)", "released": "\(released)", "in_doubt": "\(inDoubt.count)"])
        guard !inDoubt.isEmpty else {
            wake.signal()
            return
        }
        var hosts: [UUID: (host: CarrierHost, connection: String, limiter: AsyncSemaphore)] = [:]
        for connectionID in Set(inDoubt.map(\.connectionID)) {
            hosts[connectionID] = try? await host(for: connectionID, org: org)
        }
        let answers = await withTaskGroup(of: (UUID, String??).self) { group in
            for message in inDoubt {
                guard let target = hosts[message.connectionID] else { continue }
                group.addTask {
                    await target.limiter.acquire()
                    defer { target.limiter.release() }
                    let answer = await Self.resolve(
                        key: message.key, to: message.toPhone, from: message.fromPhone,
                        notBefore: message.handedOffAt.addingTimeInterval(-1),
                        host: target.host, connection: target.connection)
                    return (message.id, answer)
                }
            }
            var answers: [UUID: String??] = [:]
            for await (id, answer) in group { answers[id] = answer }
            return answers
        }
        var sentIDs: [UUID] = []
        var providerIDs: [String] = []
        var notSent: [UUID] = []
        for (id, answer) in answers {
            switch answer {
            case .some(.some(let providerID)):
                sentIDs.append(id)
                providerIDs.append(providerID)
            case .some(.none): notSent.append(id)
            case .none: continue
            }
        }
        try await store.withTransaction(tenant: org) { tx in
            if !sentIDs.isEmpty {
                try await tx.execute(
                    """
                    UPDATE messages m SET status = 'sent', sent_at = clock_timestamp(), claimed_by = NULL,
                        provider_message_id = NULLIF(v.provider_id, '')
                    FROM unnest(\(sentIDs), \(providerIDs)::text[]) AS v(id, provider_id)
                    WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_by = \(me)
                    """)
            }
            if !notSent.isEmpty {
                try await Self.requeue(tx, ids: notSent, at: notSent.map { _ in Date() }, codes: notSent.map { _ in nil }, claimedBy: me)
            }
        }
        logger.notice(
            "resolved in-doubt messages", metadata: ["org": "\(org)", "sent": "\(sentIDs.count)", "requeued": "\(notSent.count)"])
        if !notSent.isEmpty { wake.signal() }
    }
}
