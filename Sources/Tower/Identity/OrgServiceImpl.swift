import Foundation
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// OrgService: org settings and an agency's client orgs.
public struct OrgServiceImpl: OrgService.ServiceProtocol {
    let tenancy: Tenancy
    let signup: SignupPolicy
    let passwords: PasswordHasher

    public init(store: Store, signup: SignupPolicy = .closed, passwords: PasswordHasher = PasswordHasher()) {
        tenancy = Tenancy(store: store)
        self.signup = signup
        self.passwords = passwords
    }

    public func createOrg(request: CreateOrgRequest, context: ServerContext) async throws -> CreateOrgResponse {
        let store = tenancy.store
        guard signup.allows(token: request.setupToken, anyOrgExists: try await IdentityBootstrap.anyOrgExists(store)) else {
            throw DomainError.permissionDenied(
                "this server does not take sign-ups: the first org needs the setup token from the server log, later orgs an operator")
        }
        guard request.kind == .standard || request.kind == .agency else {
            throw DomainError.invalid("kind", "choose ORG_KIND_STANDARD or ORG_KIND_AGENCY; client orgs come from CreateClientOrg")
        }
        let created = try await IdentityBootstrap.createOrg(
            store, name: request.name, kind: request.kind, ownerEmail: request.ownerEmail, ownerPassword: request.ownerPassword,
            brandName: request.brandName.isEmpty ? nil : request.brandName, passwords: passwords, requestID: context.requestID,
            peer: context.peer)
        return try await store.withTransaction(tenant: created.orgID, user: created.ownerID, deadline: context.deadline, readOnly: true) {
            tx in
            var response = CreateOrgResponse()
            response.org = try IdentityRecords.org(
                try await tx.query("SELECT \(unsafeRaw: IdentityRecords.orgColumns) FROM orgs o WHERE o.id = \(created.orgID)").one())
            response.owner = try IdentityRecords.user(
                try await tx.query("SELECT \(unsafeRaw: IdentityRecords.userColumns) FROM users u WHERE u.id = \(created.ownerID)").one(),
                role: "owner")
            return response
        }
    }

    public func getOrg(request: GetOrgRequest, context: ServerContext) async throws -> Org {
        try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let id = request.orgID.isEmpty ? UUIDText(principal.orgID.description)! : try IdentityRecords.id(request.orgID, field: "org_id")
            // Row-level security shows the caller's org and, for an agency, its client orgs.
            guard let row = try await tx.query("SELECT \(unsafeRaw: IdentityRecords.orgColumns) FROM orgs o WHERE o.id = \(id)").firstRow
            else {
                throw DomainError.notFound("org", request.orgID)
            }
            return try IdentityRecords.org(row)
        }
    }

    public func updateOrgSettings(request: UpdateOrgSettingsRequest, context: ServerContext) async throws -> Org {
        guard let mask = request.updateMask, !mask.paths.isEmpty else {
            throw DomainError.invalid("update_mask", "name the settings to change, e.g. \"brand_name,quiet_hours\"")
        }
        let settings = request.settings ?? OrgSettings()
        var assignments: [SQL] = []
        var violations: [FieldViolationInput] = []
        for path in mask.paths {
            let field = "settings.\(path)"
            switch path {
            case "brand_name":
                let brand = settings.brandName.trimmingCharacters(in: .whitespaces)
                if brand.isEmpty || brand.count > 64 { violations.append((field, "must be 1 to 64 characters: the name recipients see")) }
                assignments.append("brand_name = \(brand)")
            case "time_zone":
                assignments.append("time_zone = \(settings.timeZone)")
            case "quiet_hours", "quiet_hours.start_minute", "quiet_hours.end_minute":
                let q = settings.quietHours ?? QuietHoursPolicy()
                if q.startMinute < 480 || q.endMinute > 1260 || q.startMinute >= q.endMinute {
                    violations.append(
                        (field, "must lie within 08:00-21:00 (start_minute >= 480, end_minute <= 1260) with start before end"))
                }
                assignments.append("quiet_hours_start_minute = \(q.startMinute), quiet_hours_end_minute = \(q.endMinute)")
            case "default_daily_cap":
                if settings.defaultDailyCap < 1 || settings.defaultDailyCap > 100_000 {
                    violations.append((field, "must be 1 to 100000 messages per number per day"))
                }
                assignments.append("default_daily_cap = \(settings.defaultDailyCap)")
            case "help_reply_text":
                if settings.helpReplyText.count > 320 { violations.append((field, "must be at most 320 characters (2 segments)")) }
                assignments.append("help_reply_text = \(settings.helpReplyText.isEmpty ? nil : settings.helpReplyText)")
            case "stop_reply_text":
                if settings.stopReplyText.count > 320 { violations.append((field, "must be at most 320 characters (2 segments)")) }
                assignments.append("stop_reply_text = \(settings.stopReplyText.isEmpty ? nil : settings.stopReplyText)")
            case "ip_allowlist":
                assignments.append("ip_allowlist = \(settings.ipAllowlist)::cidr[]")
            case "require_opt_out_language":
                assignments.append("require_opt_out_language = \(settings.requireOptOutLanguage)")
            case "free_text_opt_out":
                assignments.append("free_text_opt_out = \(settings.freeTextOptOut)")
            case "require_consent":
                assignments.append("require_consent = \(settings.requireConsent)")
            default:
                violations.append(
                    (
                        "update_mask",
                        "\"\(path)\" is not a setting; use brand_name, time_zone, quiet_hours, default_daily_cap, help_reply_text, stop_reply_text, ip_allowlist, require_opt_out_language, free_text_opt_out or require_consent"
                    ))
            }
        }
        try throwIfInvalid(violations)
        return try await tenancy.transaction(context) { tx, principal in
            let id = request.orgID.isEmpty ? UUIDText(principal.orgID.description)! : try IdentityRecords.id(request.orgID, field: "org_id")
            if mask.paths.contains("time_zone") {
                let known = try await tx.query("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = \(settings.timeZone)) AS ok")
                    .one().decode("ok", as: Bool.self)
                guard known else { throw DomainError.invalid("settings.time_zone", "must be an IANA time zone such as America/Chicago") }
            }
            let updated = try await tx.query(
                "UPDATE orgs o SET \(SQL.join(assignments, separator: ", ")) WHERE o.id = \(id) RETURNING \(unsafeRaw: IdentityRecords.orgColumns)"
            ).firstRow
            guard let updated else { throw DomainError.notFound("org", request.orgID) }
            try await Audit.record(
                tx, principal, action: "org.update_settings", targetType: "org", targetID: id.text,
                details: .object([("paths", .array(mask.paths.map { .string($0) }))]))
            return try IdentityRecords.org(updated)
        }
    }

    public func createClientOrg(request: CreateClientOrgRequest, context: ServerContext) async throws -> Org {
        let name = request.name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 200 else { throw DomainError.invalid("name", "must be 1 to 200 characters") }
        return try await tenancy.transaction(context) { tx, principal in
            let agency = try await tx.query("SELECT kind, brand_name, time_zone FROM orgs WHERE id = \(principal.orgID)").one()
            guard try agency.decode("kind", as: String.self) == "agency" else {
                throw DomainError.failedPrecondition("only agency orgs have client orgs; this org is not an agency")
            }
            if !request.requestID.isEmpty {
                // A retried request returns what the first attempt created.
                if let earlier = try await tx.query(
                    """
                    SELECT \(unsafeRaw: IdentityRecords.orgColumns) FROM audit_events a JOIN orgs o ON o.id::text = a.target_id
                    WHERE a.action = 'org.create_client' AND a.metadata->>'request_id' = \(request.requestID) LIMIT 1
                    """
                ).firstRow {
                    return try IdentityRecords.org(earlier)
                }
            }
            let s = request.settings
            let row = try await tx.query(
                """
                INSERT INTO orgs AS o (parent_org_id, kind, name, brand_name, time_zone)
                VALUES (\(principal.orgID), 'client', \(name),
                        \((s?.brandName).flatMap { $0.isEmpty ? nil : $0 } ?? (try agency.decode("brand_name", as: String?.self))),
                        \((s?.timeZone).flatMap { $0.isEmpty ? nil : $0 } ?? (try agency.decode("time_zone", as: String.self))))
                RETURNING \(unsafeRaw: IdentityRecords.orgColumns)
                """
            ).one()
            let org = try IdentityRecords.org(row)
            try await Audit.record(
                tx, principal, action: "org.create_client", targetType: "org", targetID: org.id,
                details: .object([("request_id", .string(request.requestID))]))
            return org
        }
    }

    public func listClientOrgs(request: ListClientOrgsRequest, context: ServerContext) async throws -> ListClientOrgsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let after: SQL = cursor.map { "AND (o.name, o.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let nameFilter: SQL = request.nameContains.map { "AND o.name ILIKE \("%" + Self.escapeLike($0) + "%")" } ?? ""
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: IdentityRecords.orgColumns) FROM orgs o
                WHERE o.parent_org_id = \(principal.orgID) \(nameFilter) \(after)
                ORDER BY o.name, o.id LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListClientOrgsResponse()
            let page = KeysetPage(rows, size: size)
            response.orgs = try page.rows.map(IdentityRecords.org)
            response.page = page.info(last: response.orgs.last) { PageCursor(sortKey: $0.name, id: $0.id) }
            return response
        }
    }

    static func escapeLike(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
