import Foundation
import TowerCrypto
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStandardServices
import TowerStore

/// AuthService: sign-in, sessions, two-factor, API keys.
public struct AuthServiceImpl: AuthService.ServiceProtocol {
    let store: Store
    let keys: KeyRing
    let throttle: LoginThrottle
    let passwords: PasswordHasher
    let accessTokenLifetime: Int64 = 15 * 60
    let refreshTokenLifetime: Int64 = 30 * 24 * 3600

    /// Verified when the email is unknown, so a miss costs as much as a hit (same hasher, same cost).
    let dummyHash: String

    public init(store: Store, keys: KeyRing, throttle: LoginThrottle = LoginThrottle(), passwords: PasswordHasher = PasswordHasher()) {
        self.store = store
        self.keys = keys
        self.throttle = throttle
        self.passwords = passwords
        self.dummyHash = (try? passwords.hash("not a real password")) ?? ""
    }

    var tenancy: Tenancy { Tenancy(store: store) }

    // MARK: sign-in

    public func login(request: LoginRequest, context: ServerContext) async throws -> Session {
        var violations: [FieldViolationInput] = []
        if request.email.isEmpty { violations.append(("email", "is required")) }
        if request.password.isEmpty { violations.append(("password", "is required")) }
        try throwIfInvalid(violations)
        let email = request.email.trimmingCharacters(in: .whitespaces).lowercased()
        let throttleKeys = ["email:" + email, "peer:" + (AuthInterceptor.peerIP(context.peer) ?? context.peer)]
        if let wait = throttle.retryAfter(throttleKeys) {
            throw DomainError(.resourceExhausted, "too many failed sign-ins; try again in \(wait) s")
        }
        let found = try await store.withTransaction(tenant: nil, deadline: context.deadline, readOnly: true) { tx in
            try await tx.query("SELECT user_id, org_id, password_hash, status, totp_enabled FROM ctower_find_login(\(email))").firstRow
        }
        // Hash even when the user does not exist, so timing does not reveal which emails exist.
        let storedHash = try found?.decode("password_hash", as: String?.self) ?? nil
        let passwordOK = passwords.verify(request.password, against: storedHash ?? dummyHash)
        guard let found, storedHash != nil, passwordOK, try found.decode("status", as: String.self) == "active" else {
            throttle.recordFailure(throttleKeys)
            throw DomainError.unauthenticated("the email or password is wrong")
        }
        let userID = try found.decode("user_id", as: UserID.self)
        let orgID = try found.decode("org_id", as: OrgID.self)
        if try found.decode("totp_enabled", as: Bool.self) {
            let sealed = try await store.withTransaction(tenant: orgID, user: userID, deadline: context.deadline, readOnly: true) { tx in
                try await tx.query("SELECT totp_secret_encrypted FROM users WHERE id = \(userID)").one().decode(
                    "totp_secret_encrypted", as: [UInt8]?.self)
            }
            guard let sealed, let secret = try? keys.sealedBox.open(sealed, associatedData: Array("totp:\(userID)".utf8)),
                TOTP(secret: secret).verify(request.totpCode, at: Int64(Date().timeIntervalSince1970)) != nil
            else {
                throttle.recordFailure(throttleKeys)
                throw DomainError.unauthenticated("two-factor sign-in is on: send the current 6-digit code in totp_code")
            }
        }
        throttle.recordSuccess(throttleKeys)
        let principal = RequestPrincipal(
            actor: .user(userID), orgID: orgID, homeOrgID: orgID, role: .viewer, requestID: context.requestID, peer: context.peer)
        return try await store.withTransaction(tenant: orgID, user: userID, deadline: context.deadline) { tx in
            try await tx.execute("UPDATE users SET last_login_at = now() WHERE id = \(userID)")
            let session = try await issueSession(tx, userID: userID, orgID: orgID, family: nil)
            try await Audit.record(tx, principal, action: "auth.login", targetType: "user", targetID: userID.description)
            return session
        }
    }

    public func refresh(request: RefreshRequest, context: ServerContext) async throws -> Session {
        guard !request.refreshToken.isEmpty else { throw DomainError.invalid("refresh_token", "is required") }
        let token = try await findRefreshToken(request.refreshToken, context: context)
        let principal = RequestPrincipal(
            actor: .user(token.user), orgID: token.org, homeOrgID: token.org, role: .viewer, requestID: context.requestID,
            peer: context.peer)
        let outcome: Result<Session, DomainError> = try await store.withTransaction(
            tenant: token.org, user: token.user, deadline: context.deadline
        ) { tx in
            // Single use: only the first refresh of a token wins; any later use is theft or a replay.
            let claimed = try await tx.query(
                """
                UPDATE refresh_tokens SET rotated_at = now()
                WHERE id = \(token.id) AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()
                RETURNING id
                """)
            if claimed.isEmpty {
                let expired = try await tx.query(
                    "SELECT expires_at <= now() AS expired, revoked_at IS NOT NULL AS revoked FROM refresh_tokens WHERE id = \(token.id)"
                ).one()
                if try expired.decode("expired", as: Bool.self), !(try expired.decode("revoked", as: Bool.self)) {
                    return .failure(DomainError.unauthenticated("the refresh token expired; sign in again"))
                }
                try await tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = \(token.family) AND revoked_at IS NULL")
                try await Audit.record(
                    tx, principal, action: "auth.refresh_reuse", targetType: "session", targetID: token.family.uuidString.lowercased())
                return .failure(
                    DomainError.unauthenticated("this refresh token was already used; every session of that sign-in is now signed out"))
            }
            let active =
                try await tx.query("SELECT status = 'active' AS active FROM users WHERE id = \(token.user)").firstRow?.decode(
                    "active", as: Bool.self) ?? false
            guard active else { return .failure(DomainError.unauthenticated("the user is deactivated")) }
            let session = try await issueSession(tx, userID: token.user, orgID: token.org, family: token.family, replacing: token.id)
            return .success(session)
        }
        return try outcome.get()
    }

    public func logout(request: LogoutRequest, context: ServerContext) async throws -> Google_Protobuf_Empty {
        guard !request.refreshToken.isEmpty else { throw DomainError.invalid("refresh_token", "is required") }
        let token = try await findRefreshToken(request.refreshToken, context: context)
        let principal = RequestPrincipal(
            actor: .user(token.user), orgID: token.org, homeOrgID: token.org, role: .viewer, requestID: context.requestID,
            peer: context.peer)
        try await store.withTransaction(tenant: token.org, user: token.user, deadline: context.deadline) { tx in
            try await tx.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = \(token.family) AND revoked_at IS NULL")
            try await Audit.record(
                tx, principal, action: "auth.logout", targetType: "session", targetID: token.family.uuidString.lowercased())
        }
        return Google_Protobuf_Empty()
    }

    public func acceptInvite(request: AcceptInviteRequest, context: ServerContext) async throws -> Session {
        guard !request.inviteToken.isEmpty else { throw DomainError.invalid("invite_token", "is required") }
        try IdentityRecords.validatePassword(request.password)
        let hash = OpaqueSecret.hash(request.inviteToken)
        let found = try await store.withTransaction(tenant: nil, deadline: context.deadline, readOnly: true) { tx in
            try await tx.query("SELECT user_id, org_id FROM ctower_find_invite(\(hash))").firstRow
        }
        guard let found else {
            throw DomainError.unauthenticated("the invite token is not valid (unknown, used or expired); ask an admin for a new invite")
        }
        let userID = try found.decode("user_id", as: UserID.self)
        let orgID = try found.decode("org_id", as: OrgID.self)
        let passwordHash = try passwords.hash(request.password)
        let principal = RequestPrincipal(
            actor: .user(userID), orgID: orgID, homeOrgID: orgID, role: .viewer, requestID: context.requestID, peer: context.peer)
        return try await store.withTransaction(tenant: orgID, user: userID, deadline: context.deadline) { tx in
            let updated = try await tx.execute(
                """
                UPDATE users SET password_hash = \(passwordHash), status = 'active', invite_token_hash = NULL,
                       invite_expires_at = NULL, last_login_at = now()
                WHERE id = \(userID) AND invite_token_hash = \(hash) AND status = 'invited'
                """)
            guard updated == 1 else { throw DomainError.unauthenticated("the invite was already accepted") }
            let session = try await issueSession(tx, userID: userID, orgID: orgID, family: nil)
            try await Audit.record(tx, principal, action: "auth.accept_invite", targetType: "user", targetID: userID.description)
            return session
        }
    }

    // MARK: two-factor

    public func enrollTotp(request: Google_Protobuf_Empty, context: ServerContext) async throws -> EnrollTotpResponse {
        let secret = TOTP.generateSecret()
        return try await tenancy.transaction(context) { tx, principal in
            guard let userID = principal.userID else {
                throw DomainError.permissionDenied("two-factor enrollment needs a signed-in person")
            }
            let row = try await tx.query("SELECT email, totp_enabled FROM users WHERE id = \(userID)").one()
            if try row.decode("totp_enabled", as: Bool.self) {
                throw DomainError.failedPrecondition("two-factor sign-in is already on for this user")
            }
            let sealed = try keys.sealedBox.seal(secret, associatedData: Array("totp:\(userID)".utf8))
            try await tx.execute("UPDATE users SET totp_secret_encrypted = \(sealed) WHERE id = \(userID)")
            try await Audit.record(tx, principal, action: "auth.totp_enroll", targetType: "user", targetID: userID.description)
            var response = EnrollTotpResponse()
            response.secret = Base32.encode(secret)
            response.provisioningURI = TOTP(secret: secret).provisioningURI(issuer: "Control Tower", account: try row.decode("email"))
            return response
        }
    }

    public func verifyTotp(request: VerifyTotpRequest, context: ServerContext) async throws -> Google_Protobuf_Empty {
        try await tenancy.transaction(context) { tx, principal in
            guard let userID = principal.userID else {
                throw DomainError.permissionDenied("two-factor enrollment needs a signed-in person")
            }
            let sealed = try await tx.query("SELECT totp_secret_encrypted FROM users WHERE id = \(userID)").one().decode(
                "totp_secret_encrypted", as: [UInt8]?.self)
            guard let sealed else { throw DomainError.failedPrecondition("call EnrollTotp first") }
            let secret = try keys.sealedBox.open(sealed, associatedData: Array("totp:\(userID)".utf8))
            guard TOTP(secret: secret).verify(request.code, at: Int64(Date().timeIntervalSince1970)) != nil else {
                throw DomainError.invalid("code", "is not the current code of the authenticator app; check the device clock")
            }
            try await tx.execute("UPDATE users SET totp_enabled = true WHERE id = \(userID)")
            try await Audit.record(tx, principal, action: "auth.totp_enable", targetType: "user", targetID: userID.description)
            return Google_Protobuf_Empty()
        }
    }

    // MARK: API keys

    public func createApiKey(request: CreateApiKeyRequest, context: ServerContext) async throws -> CreateApiKeyResponse {
        var violations: [FieldViolationInput] = []
        let name = request.name.trimmingCharacters(in: .whitespaces)
        if name.isEmpty || name.count > 200 { violations.append(("name", "must be 1 to 200 characters")) }
        let scopes = request.scopes.compactMap(IdentityRecords.databaseName)
        if scopes.isEmpty || scopes.count != request.scopes.count {
            violations.append(("scopes", "name at least one of API_KEY_SCOPE_READ, API_KEY_SCOPE_WRITE, API_KEY_SCOPE_INTEGRATIONS"))
        }
        if request.rateLimitPerMinute < 0 || request.rateLimitPerMinute > 100_000 {
            violations.append(("rate_limit_per_minute", "must be 0 (default) to 100000"))
        }
        try throwIfInvalid(violations)
        let (key, prefix) = OpaqueSecret.newAPIKey()
        let expiresMicros = request.expireTime.map { $0.seconds * 1_000_000 + Int64($0.nanos / 1000) }
        return try await tenancy.transaction(context) { tx, principal in
            let rateLimit: Int32? = request.rateLimitPerMinute == 0 ? nil : request.rateLimitPerMinute
            let row = try await tx.query(
                """
                INSERT INTO api_keys AS k (org_id, name, prefix, key_hash, scopes, rate_limit_per_minute, created_by, expires_at)
                VALUES (\(principal.orgID), \(name), \(prefix), \(OpaqueSecret.hash(key)), \(scopes), \(rateLimit), \(principal.userID),
                        CASE WHEN \(expiresMicros)::bigint IS NULL THEN NULL ELSE to_timestamp(\(expiresMicros)::bigint / 1000000.0) END)
                RETURNING \(unsafeRaw: IdentityRecords.apiKeyColumns)
                """
            ).one()
            let apiKey = try IdentityRecords.apiKey(row)
            try await Audit.record(tx, principal, action: "auth.api_key_create", targetType: "api_key", targetID: apiKey.id)
            var response = CreateApiKeyResponse()
            response.apiKey = apiKey
            response.key = key
            return response
        }
    }

    public func listApiKeys(request: ListApiKeysRequest, context: ServerContext) async throws -> ListApiKeysResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let after: SQL =
                cursor.map { c in
                    "AND (k.created_at, k.id) < (to_timestamp(\(Int64(c.sortKey) ?? 0)::bigint / 1000000.0), \(UUIDText(c.id)))"
                } ?? ""
            let rows = try await tx.query(
                """
                SELECT \(unsafeRaw: IdentityRecords.apiKeyColumns) FROM api_keys k
                WHERE (\(request.includeRevoked) OR k.revoked_at IS NULL) \(after)
                ORDER BY k.created_at DESC, k.id DESC LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListApiKeysResponse()
            let page = KeysetPage(rows, size: size)
            response.apiKeys = try page.rows.map(IdentityRecords.apiKey)
            response.page = try page.info {
                PageCursor(
                    sortKey: String(try $0.decode("created_us", as: Int64.self)),
                    id: try $0.decode("id", as: UUID.self).uuidString.lowercased())
            }
            return response
        }
    }

    public func revokeApiKey(request: RevokeApiKeyRequest, context: ServerContext) async throws -> ApiKey {
        let id = try IdentityRecords.id(request.apiKeyID, field: "api_key_id")
        return try await tenancy.transaction(context) { tx, principal in
            try await tx.execute("UPDATE api_keys SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL")
            guard
                let row = try await tx.query("SELECT \(unsafeRaw: IdentityRecords.apiKeyColumns) FROM api_keys k WHERE k.id = \(id)")
                    .firstRow
            else {
                throw DomainError.notFound("API key", request.apiKeyID)
            }
            try await Audit.record(tx, principal, action: "auth.api_key_revoke", targetType: "api_key", targetID: id.text)
            return try IdentityRecords.apiKey(row)
        }
    }

    public func whoAmI(request: Google_Protobuf_Empty, context: ServerContext) async throws -> WhoAmIResponse {
        try await tenancy.transaction(context, readOnly: true) { tx, principal in
            var response = WhoAmIResponse()
            response.orgID = principal.orgID.description
            response.role = principal.role
            switch principal.actor {
            case .user(let userID):
                let row = try await tx.query("SELECT \(unsafeRaw: IdentityRecords.userColumns) FROM users u WHERE u.id = \(userID)").one()
                response.user = try IdentityRecords.user(row, role: principal.role.databaseName)
            case .apiKey(let id, _):
                if let row = try await tx.query(
                    "SELECT \(unsafeRaw: IdentityRecords.apiKeyColumns) FROM api_keys k WHERE k.id = \(UUIDText(id))"
                ).firstRow {
                    response.apiKey = try IdentityRecords.apiKey(row)
                }
            }
            return response
        }
    }

    // MARK: helpers

    struct RefreshTokenRecord {
        var id: UUID
        var org: OrgID
        var user: UserID
        var family: UUID
    }

    private func findRefreshToken(_ token: String, context: ServerContext) async throws -> RefreshTokenRecord {
        let hash = OpaqueSecret.hash(token)
        let row = try await store.withTransaction(tenant: nil, deadline: context.deadline, readOnly: true) { tx in
            try await tx.query("SELECT token_id, org_id, user_id, family_id FROM ctower_find_refresh_token(\(hash))").firstRow
        }
        guard let row else { throw DomainError.unauthenticated("the refresh token is not valid; sign in again") }
        return RefreshTokenRecord(
            id: try row.decode("token_id"), org: try row.decode("org_id"), user: try row.decode("user_id"),
            family: try row.decode("family_id"))
    }

    private func issueSession(_ tx: Transaction, userID: UserID, orgID: OrgID, family: UUID?, replacing: UUID? = nil) async throws
        -> Session
    {
        let now = Int64(Date().timeIntervalSince1970)
        let familyID = family ?? UUID()
        let refresh = OpaqueSecret.newToken(tag: "ctr")
        let newID = try await tx.query(
            """
            INSERT INTO refresh_tokens (org_id, user_id, family_id, token_hash, expires_at)
            VALUES (\(orgID), \(userID), \(familyID), \(OpaqueSecret.hash(refresh)), now() + make_interval(secs => \(refreshTokenLifetime)))
            RETURNING id
            """
        ).one().decode("id", as: UUID.self)
        if let replacing { try await tx.execute("UPDATE refresh_tokens SET replaced_by = \(newID) WHERE id = \(replacing)") }
        let role = try await tx.query("SELECT ctower_membership_role(\(userID), \(orgID)) AS role").one().decode("role", as: String?.self)
        let userRow = try await tx.query("SELECT \(unsafeRaw: IdentityRecords.userColumns) FROM users u WHERE u.id = \(userID)").one()
        var session = Session()
        session.accessToken = keys.signer.sign(
            AccessToken(
                userID: userID, orgID: orgID, sessionID: familyID.uuidString.lowercased(), issuedAt: now,
                expiresAt: now + accessTokenLifetime))
        session.accessTokenExpireTime = Timestamps.proto(micros: (now + accessTokenLifetime) * 1_000_000)
        session.refreshToken = refresh
        session.refreshTokenExpireTime = Timestamps.proto(micros: (now + refreshTokenLifetime) * 1_000_000)
        session.user = try IdentityRecords.user(userRow, role: role)
        session.orgID = orgID.description
        return session
    }

}

typealias FieldViolationInput = (field: String, fix: String)

func throwIfInvalid(_ violations: [FieldViolationInput]) throws {
    guard violations.isEmpty else {
        throw DomainError.invalid(violations.map { FieldViolation(field: $0.field, description: $0.fix) })
    }
}
