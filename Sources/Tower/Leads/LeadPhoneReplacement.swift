import TowerProtoRuntime
import TowerStore

/// UpdateLead's `phones`: the lead's phones become the list given, in its order.
///
/// - A phone kept (same E.164) keeps its row: its id (which messages and campaign targets point
///   at), consent status and lookup data; only its position and type change.
/// - A phone added gets the consent status the org's records give that phone: revoked while it is
///   opted out, else the latest consent record's action (the gate's rule), else unknown. No
///   consent is recorded or revoked: consent records and opt-outs are per phone per org, and stay.
/// - A phone that is another lead's is refused (CreateLead refuses it too): leads sharing a
///   phone are one lead by the import's dedupe rule, and existing leads are never merged.
/// - A phone removed loses its queued and claimed messages to that lead (cancelled, skip reason
///   `phone_removed`, one audit event each; compliance replies still go) and its pending campaign
///   targets (skipped, `phone_removed`).
///
/// The phones added or removed are locked exclusively (`ctower_phone_lock_key`), as an opt-out
/// does: a hand-off to a removed phone that holds the lock shared finishes before the update, and
/// two updates cannot both give one phone to two leads. A message already `sending` when the
/// update commits may still reach the carrier: the hand-off re-checks opt-outs, not lead phones.
enum LeadPhoneReplacement {
    /// A phone row the lead has now.
    struct Stored: Sendable, Hashable {
        var id: String
        var phone: String
    }

    /// What changes, worked out without the database. Positions are 1-based, in the order given.
    struct Plan: Sendable, Hashable {
        struct Kept: Sendable, Hashable {
            var id: String
            var position: Int
            var type: String
        }
        struct Added: Sendable, Hashable {
            var position: Int
            var phone: String
            var type: String
        }
        var kept: [Kept] = []
        var added: [Added] = []
        var removed: [Stored] = []
    }

    static func plan(current: [Stored], wanted: [LeadRecords.Phone]) -> Plan {
        var plan = Plan()
        for (index, phone) in wanted.enumerated() {
            if let row = current.first(where: { $0.phone == phone.e164 }) {
                plan.kept.append(Plan.Kept(id: row.id, position: index + 1, type: phone.type))
            } else {
                plan.added.append(Plan.Added(position: index + 1, phone: phone.e164, type: phone.type))
            }
        }
        plan.removed = current.filter { row in !wanted.contains { $0.e164 == row.phone } }
        return plan
    }

    /// Takes the phones' exclusive locks for the rest of the transaction, in key order as the
    /// hand-off takes them shared, so the two cannot deadlock.
    static func lock(_ tx: Transaction, org: OrgID, phones: [String]) async throws {
        guard !phones.isEmpty else { return }
        try await tx.execute(
            """
            SELECT count(pg_advisory_xact_lock(k))
            FROM (SELECT DISTINCT ctower_phone_lock_key(\(org), p) AS k FROM unnest(\(phones)::text[]) p ORDER BY k) s
            """)
    }

    /// ALREADY_EXISTS naming the first of `phones` that a lead other than `lead` (any lead when
    /// nil) has, at the index the caller gave it (from `wanted`). Call with the phones locked.
    static func refuseTaken(
        _ tx: Transaction, org: OrgID, phones: [String], of lead: UUIDText?, wanted: [LeadRecords.Phone], path: String
    ) async throws {
        guard !phones.isEmpty,
            let taken = try await tx.query(
                """
                SELECT lp.phone::text AS phone, lp.lead_id::text AS lead_id FROM lead_phones lp
                WHERE lp.org_id = \(org) AND lp.phone = ANY (\(phones)::text[]) AND lp.lead_id IS DISTINCT FROM \(lead)
                ORDER BY lp.phone, lp.lead_id LIMIT 1
                """
            ).firstRow
        else { return }
        let phone = try taken.decode("phone", as: String.self)
        let index = wanted.first { $0.e164 == phone }?.index ?? 0
        throw DomainError(
            .alreadyExists,
            "\(path)[\(index)].phone: \(phone) is a phone of lead \(try taken.decode("lead_id", as: String.self)); leads that share a phone are one lead (the import's dedupe rule), so remove it from that lead first, or change that lead instead"
        )
    }

    struct Outcome: Sendable, Hashable {
        var added: [String] = []
        var removed: [String] = []
        var cancelledMessages = 0
        var skippedTargets = 0
    }

    /// Replaces the phones of `lead`, whose row the caller has locked (its UPDATE). `path` names
    /// the phones in errors, e.g. "lead.phones".
    static func apply(
        _ tx: Transaction, _ principal: RequestPrincipal, lead: UUIDText, phones wanted: [LeadRecords.Phone], path: String
    ) async throws -> Outcome {
        let org = principal.orgID
        let current = try await tx.query(
            "SELECT id::text AS id, phone::text AS phone FROM lead_phones WHERE lead_id = \(lead) ORDER BY position"
        ).map { Stored(id: try $0.decode("id"), phone: try $0.decode("phone")) }
        let plan = Self.plan(current: current, wanted: wanted)
        var outcome = Outcome(added: plan.added.map(\.phone), removed: plan.removed.map(\.phone))

        try await lock(tx, org: org, phones: outcome.added + outcome.removed)
        try await refuseTaken(tx, org: org, phones: outcome.added, of: lead, wanted: wanted, path: path)

        // The explicit org_id (row-level security applies anyway) lets the planner pick the
        // (org_id, lead_id) and (org_id, to_phone) indexes, as OptOutLedger does.
        if !plan.removed.isEmpty {
            let cancelled = try await tx.query(
                """
                UPDATE messages m SET status = 'cancelled', skip_reason = 'phone_removed', claimed_by = NULL
                WHERE m.org_id = \(org) AND m.lead_id = \(lead) AND m.to_phone = ANY (\(outcome.removed)::text[])
                  AND m.direction = 'outbound' AND m.status IN ('queued', 'claimed') AND m.purpose <> 'compliance'
                RETURNING m.id::text AS id, m.to_phone::text AS phone
                """)
            for row in cancelled {
                try await Audit.record(
                    tx, principal, action: "message.cancel", targetType: "message", targetID: try row.decode("id"),
                    details: .object([
                        ("skip_reason", .string("phone_removed")), ("lead_id", .string(lead.text)),
                        ("phone", .string(try row.decode("phone"))),
                    ]))
            }
            outcome.cancelledMessages = cancelled.count
            let removedIDs = plan.removed.map(\.id)
            outcome.skippedTargets = try await tx.execute(
                """
                UPDATE campaign_targets ct SET status = 'skipped', skip_reason = 'phone_removed'
                WHERE ct.org_id = \(org) AND ct.lead_id = \(lead) AND ct.lead_phone_id = ANY (\(removedIDs)::uuid[]) AND ct.status IN ('pending', 'active')
                """)
            try await tx.execute("DELETE FROM lead_phones WHERE lead_id = \(lead) AND id = ANY (\(removedIDs)::uuid[])")
        }
        if !plan.kept.isEmpty {
            // One statement, so kept phones may swap positions (migration 0019).
            try await tx.execute(
                """
                UPDATE lead_phones lp SET position = v.position, phone_type = v.type
                FROM unnest(\(plan.kept.map(\.id))::uuid[], \(plan.kept.map(\.position))::int[], \(plan.kept.map(\.type))::text[])
                     AS v(id, position, type)
                WHERE lp.id = v.id AND (lp.position, lp.phone_type) IS DISTINCT FROM (v.position, v.type)
                """)
        }
        if !plan.added.isEmpty {
            try await tx.execute(
                """
                INSERT INTO lead_phones (org_id, lead_id, position, phone, phone_type, consent_status)
                SELECT \(org), \(lead), v.position, v.phone, v.type,
                       CASE WHEN EXISTS (SELECT 1 FROM opt_outs o WHERE o.org_id = \(org) AND o.phone = v.phone AND o.revoked_at IS NULL)
                                THEN 'revoked'
                            ELSE coalesce((SELECT c.action FROM consent_records c WHERE c.org_id = \(org) AND c.phone = v.phone
                                           ORDER BY c.recorded_at DESC LIMIT 1), 'unknown') END
                FROM unnest(\(plan.added.map(\.position))::int[], \(outcome.added)::text[], \(plan.added.map(\.type))::text[])
                     AS v(position, phone, type)
                """)
        }
        return outcome
    }
}
