import Foundation
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStore

/// UserService: the members of the org a request acts in.
public struct UserServiceImpl: UserService.ServiceProtocol {
    let tenancy: Tenancy
    let passwords: PasswordHasher

    public init(store: Store, passwords: PasswordHasher = PasswordHasher()) {
        tenancy = Tenancy(store: store)
        self.passwords = passwords
    }

    public func createUser(request: CreateUserRequest, context: ServerContext) async throws -> CreateUserResponse {
        var violations: [FieldViolationInput] = []
        let email = IdentityRecords.normalizedEmail(request.email) ?? ""
        if email.isEmpty { violations.append(("email", IdentityRecords.emailFix)) }
        let displayName = request.displayName.trimmingCharacters(in: .whitespaces)
        if displayName.count > 200 { violations.append(("display_name", "must be at most 200 characters")) }
        if request.role.databaseName == nil { violations.append(("role", "choose ROLE_VIEWER, ROLE_AGENT, ROLE_ADMIN or ROLE_OWNER")) }
        if !request.password.isEmpty, let problem = IdentityRecords.passwordProblem(request.password) {
            violations.append(("password", problem))
        }
        try throwIfInvalid(violations)
        let passwordHash = request.password.isEmpty ? nil : try passwords.hash(request.password)
        let invite = request.password.isEmpty ? OpaqueSecret.newToken(tag: "cti") : nil
        return try await tenancy.transaction(context) { tx, principal in
            if request.role == .owner, principal.role < .owner {
                throw DomainError.permissionDenied("only an owner can create another owner")
            }
            let row = try await tx.query(
                """
                INSERT INTO users AS u (org_id, email, display_name, password_hash, status, invite_token_hash, invite_expires_at)
                VALUES (\(principal.orgID), \(email), \(displayName), \(passwordHash), \(passwordHash == nil ? "invited" : "active"),
                        \(invite.map(OpaqueSecret.hash)), CASE WHEN \(invite != nil) THEN now() + interval '7 days' END)
                RETURNING \(unsafeRaw: IdentityRecords.userColumns)
                """
            ).one()
            let user = try IdentityRecords.user(row, role: request.role.databaseName)
            try await tx.execute(
                "INSERT INTO memberships (org_id, user_id, role) VALUES (\(principal.orgID), \(UUIDText(user.id)), \(request.role.databaseName))"
            )
            try await Audit.record(
                tx, principal, action: "user.create", targetType: "user", targetID: user.id,
                details: .object([("role", .string(request.role.databaseName ?? "")), ("invited", .bool(invite != nil))]))
            var response = CreateUserResponse()
            response.user = user
            response.inviteToken = invite ?? ""
            return response
        }
    }

    public func getUser(request: GetUserRequest, context: ServerContext) async throws -> User {
        let id = try IdentityRecords.id(request.userID, field: "user_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            guard
                let row = try await tx.query(
                    """
                    SELECT \(unsafeRaw: IdentityRecords.userColumns), m.role FROM users u
                    JOIN memberships m ON m.user_id = u.id AND m.org_id = \(principal.orgID) WHERE u.id = \(id)
                    """
                ).firstRow
            else { throw DomainError.notFound("user", request.userID) }
            return try IdentityRecords.user(row, role: try row.decode("role"))
        }
    }

    public func listUsers(request: ListUsersRequest, context: ServerContext) async throws -> ListUsersResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let after: SQL = cursor.map { "AND (u.email, u.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: IdentityRecords.userColumns), m.role FROM users u
                JOIN memberships m ON m.user_id = u.id AND m.org_id = \(principal.orgID)
                WHERE (\(request.includeDeactivated) OR u.status <> 'deactivated') \(after)
                ORDER BY u.email, u.id LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListUsersResponse()
            let page = KeysetPage(rows, size: size)
            response.users = try page.rows.map { try IdentityRecords.user($0, role: try $0.decode("role")) }
            response.page = page.info(last: response.users.last) { PageCursor(sortKey: $0.email, id: $0.id) }
            return response
        }
    }

    public func updateUserRole(request: UpdateUserRoleRequest, context: ServerContext) async throws -> User {
        let id = try IdentityRecords.id(request.userID, field: "user_id")
        guard let newRole = request.role.databaseName else {
            throw DomainError.invalid("role", "choose ROLE_VIEWER, ROLE_AGENT, ROLE_ADMIN or ROLE_OWNER")
        }
        return try await tenancy.transaction(context) { tx, principal in
            guard
                let current = try await tx.query(
                    "SELECT role FROM memberships WHERE org_id = \(principal.orgID) AND user_id = \(id) FOR UPDATE"
                ).firstRow?.decode("role", as: String.self)
            else { throw DomainError.notFound("user", request.userID) }
            if (current == "owner" || newRole == "owner"), principal.role < .owner {
                throw DomainError.permissionDenied("only an owner can grant or remove the owner role")
            }
            if current == "owner", newRole != "owner" { try await requireAnotherOwner(tx, principal.orgID, besides: id) }
            try await tx.execute("UPDATE memberships SET role = \(newRole) WHERE org_id = \(principal.orgID) AND user_id = \(id)")
            try await Audit.record(
                tx, principal, action: "user.update_role", targetType: "user", targetID: id.text,
                details: .object([("from", .string(current)), ("to", .string(newRole))]))
            let row = try await tx.query("SELECT \(unsafeRaw: IdentityRecords.userColumns) FROM users u WHERE u.id = \(id)").one()
            return try IdentityRecords.user(row, role: newRole)
        }
    }

    public func deactivateUser(request: DeactivateUserRequest, context: ServerContext) async throws -> User {
        let id = try IdentityRecords.id(request.userID, field: "user_id")
        return try await tenancy.transaction(context) { tx, principal in
            guard
                let role = try await tx.query(
                    "SELECT role FROM memberships WHERE org_id = \(principal.orgID) AND user_id = \(id) FOR UPDATE"
                ).firstRow?.decode("role", as: String.self)
            else { throw DomainError.notFound("user", request.userID) }
            if principal.userID?.description == id.text {
                throw DomainError.failedPrecondition("you cannot deactivate yourself; ask another admin")
            }
            if role == "owner" {
                guard principal.role >= .owner else { throw DomainError.permissionDenied("only an owner can deactivate an owner") }
                try await requireAnotherOwner(tx, principal.orgID, besides: id)
            }
            // The user row belongs to its home org; deactivation applies where the caller may act.
            let updated = try await tx.query(
                "UPDATE users u SET status = 'deactivated' WHERE u.id = \(id) AND u.org_id = \(principal.orgID) RETURNING \(unsafeRaw: IdentityRecords.userColumns)"
            ).firstRow
            guard let updated else {
                throw DomainError.failedPrecondition("this user belongs to another org; remove their role here instead")
            }
            try await tx.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = \(id) AND revoked_at IS NULL")
            try await Audit.record(tx, principal, action: "user.deactivate", targetType: "user", targetID: id.text)
            return try IdentityRecords.user(updated, role: role)
        }
    }

    private func requireAnotherOwner(_ tx: Transaction, _ org: OrgID, besides user: UUIDText) async throws {
        let others = try await tx.query(
            "SELECT count(*)::int AS n FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = \(org) AND m.role = 'owner' AND m.user_id <> \(user) AND u.status = 'active'"
        ).one().decode("n", as: Int32.self)
        guard others > 0 else {
            throw DomainError.failedPrecondition("an org keeps at least one active owner; make someone else owner first")
        }
    }
}
