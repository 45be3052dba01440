import Foundation
import Logging
import Synchronization
import TowerProto
import TowerRPC
import TowerStore

/// Authenticates every call, resolves the org it acts in, checks the org's IP allowlist and the
/// role `AccessPolicy` requires, then runs the handler with `RequestPrincipal.current` set.
///
/// Credentials: `authorization: Bearer ct1.…` (access token from AuthService) or
/// `authorization: Bearer ctk_…` (API key). `x-ctower-org: <org id>` lets an agency member act in
/// one of the agency's client orgs; the membership is checked in the database every time.
public struct AuthInterceptor: RPCServerInterceptor {
    let store: Store
    let signer: AccessTokenSigner
    let keyLimiter: RateLimiter
    /// Failed credential checks per client address: guessing API keys or tokens is slowed the
    /// same way password guessing is.
    let failures: LoginThrottle

    public init(
        store: Store, signer: AccessTokenSigner, keyLimiter: RateLimiter = RateLimiter(),
        failures: LoginThrottle = LoginThrottle(maxFailures: 20, window: .seconds(60))
    ) {
        self.store = store
        self.signer = signer
        self.keyLimiter = keyLimiter
        self.failures = failures
    }

    public func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        guard let requirement = AccessPolicy.requirement(forPath: context.method.path) else {
            throw DomainError.permissionDenied("\(context.method.path) has no access rule; it is refused until one is declared")
        }
        if requirement == .open {
            try await next()
            return
        }
        let peerKey = Self.peerIP(context.peer).map { ["peer:" + $0] } ?? []
        if let wait = failures.retryAfter(peerKey) {
            throw DomainError(.resourceExhausted, "too many calls with invalid credentials from this address; retry in \(wait) s")
        }
        let principal: RequestPrincipal
        do {
            principal = try await authenticate(context)
        } catch let error as DomainError where error.code == .unauthenticated {
            failures.recordFailure(peerKey)
            throw error
        }
        try authorize(principal, requirement, method: context.method)
        try await RequestPrincipal.$current.withValue(principal) { try await next() }
    }

    func authenticate(_ context: ServerContext) async throws -> RequestPrincipal {
        guard let header = context.requestMetadata.firstString("authorization") else {
            throw DomainError.unauthenticated("missing credentials: send metadata authorization: Bearer <access token or API key>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw DomainError.unauthenticated("authorization must be \"Bearer <access token or API key>\"")
        }
        let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
        let requestedOrg = try requestedOrg(context)
        let peerIP = Self.peerIP(context.peer)

        if credential.hasPrefix(AccessToken.prefix) {
            let token: AccessToken
            switch signer.verify(credential, now: Int64(Date().timeIntervalSince1970)) {
            case .success(let t): token = t
            case .failure(.expired): throw DomainError.unauthenticated("the access token expired; get a new one with AuthService.Refresh")
            case .failure: throw DomainError.unauthenticated("the access token is not valid")
            }
            let actingOrg = requestedOrg ?? token.orgID
            let role = try await store.withTransaction(tenant: token.orgID, user: token.userID, deadline: context.deadline, readOnly: true)
            { tx in
                let row = try await tx.query(
                    """
                    SELECT u.status = 'active' AS active,
                           EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = \(UUIDText(token.sessionID)) AND t.revoked_at IS NULL) AS live,
                           ctower_membership_role(\(token.userID), \(actingOrg)) AS role
                    FROM users u WHERE u.id = \(token.userID)
                    """
                ).firstRow
                guard let row, try row.decode("active", as: Bool.self), try row.decode("live", as: Bool.self) else {
                    throw DomainError.unauthenticated(
                        "the session has ended (signed out, revoked or the user was deactivated); sign in again")
                }
                return try row.decode("role", as: String?.self)
            }
            guard let roleName = role, let role = Role(databaseName: roleName) else {
                throw DomainError.permissionDenied("you are not a member of org \(actingOrg) (nor of the agency that runs it)")
            }
            try await checkAllowlist(org: actingOrg, peerIP: peerIP, context: context)
            return RequestPrincipal(
                actor: .user(token.userID), orgID: actingOrg, homeOrgID: token.orgID, role: role,
                requestID: context.requestID, peer: context.peer)
        }

        if credential.hasPrefix("ctk_") {
            let hash = OpaqueSecret.hash(credential)
            let key = try await store.withTransaction(tenant: nil, deadline: context.deadline, readOnly: true) { tx in
                try await tx.query("SELECT key_id, org_id, scopes, rate_limit_per_minute, created_by FROM ctower_find_api_key(\(hash))")
                    .firstRow
            }
            guard let key else { throw DomainError.unauthenticated("the API key is not valid (unknown, revoked or expired)") }
            let keyID = try key.decode("key_id", as: UUID.self).uuidString.lowercased()
            let orgID = try key.decode("org_id", as: OrgID.self)
            let scopes = try key.decode("scopes", as: [String].self)
            let perMinute = try key.decode("rate_limit_per_minute", as: Int?.self) ?? RateLimiter.defaultPerMinute
            let createdBy = try key.decode("created_by", as: UserID?.self)
            if let requestedOrg, requestedOrg != orgID {
                throw DomainError.permissionDenied(
                    "an API key acts only in its own org; drop x-ctower-org or use a key of org \(requestedOrg)")
            }
            if let retryAfter = keyLimiter.take(key: keyID, perMinute: perMinute) {
                throw DomainError(
                    .resourceExhausted, "API key rate limit of \(perMinute) requests per minute reached; retry in \(retryAfter) s")
            }
            try await checkAllowlist(org: orgID, peerIP: peerIP, context: context)
            return RequestPrincipal(
                actor: .apiKey(id: keyID, createdBy: createdBy), orgID: orgID, homeOrgID: orgID, role: Self.role(forScopes: scopes),
                requestID: context.requestID, peer: context.peer)
        }
        throw DomainError.unauthenticated("unrecognised credential: expected an access token (ct1.…) or an API key (ctk_…)")
    }

    func authorize(_ principal: RequestPrincipal, _ requirement: AccessPolicy.Requirement, method: MethodDescriptor) throws {
        switch requirement {
        case .open, .authenticated:
            return
        case .person:
            guard case .user = principal.actor else {
                throw DomainError.permissionDenied("\(method.method) needs a signed-in person, not an API key")
            }
        case .role(let needed):
            if principal.apiKeyID != nil, method.service == AuthService.serviceName || method.service == UserService.serviceName {
                throw DomainError.permissionDenied("API keys cannot manage users or keys; sign in as an admin")
            }
            guard principal.role >= needed else {
                throw DomainError.permissionDenied(
                    "\(method.method) needs the \(needed.databaseName ?? "?") role in this org; you have \(principal.role.databaseName ?? "none")"
                )
            }
        }
    }

    private func requestedOrg(_ context: ServerContext) throws -> OrgID? {
        guard let text = context.requestMetadata.firstString("x-ctower-org"), !text.isEmpty else { return nil }
        guard let org = OrgID(text) else {
            throw DomainError.invalid("x-ctower-org", "must be an org id (UUID), got \"\(text.prefix(40))\"")
        }
        return org
    }

    private func checkAllowlist(org: OrgID, peerIP: String?, context: ServerContext) async throws {
        guard let peerIP else { return }  // in-process callers are the server itself
        let allowed = try await store.withTransaction(tenant: org, deadline: context.deadline, readOnly: true) { tx in
            try await tx.query(
                """
                SELECT cardinality(ip_allowlist) = 0 OR EXISTS (SELECT 1 FROM unnest(ip_allowlist) a WHERE \(peerIP)::inet <<= a) AS ok
                FROM orgs WHERE id = \(org)
                """
            ).firstRow?.decode("ok", as: Bool.self) ?? false
        }
        guard allowed else { throw DomainError.permissionDenied("calls from \(peerIP) are not in this org's IP allowlist") }
    }

    /// `127.0.0.1:52114` -> `127.0.0.1`, `[::1]:52114` -> `::1`; nil for in-process calls.
    static func peerIP(_ peer: String) -> String? {
        if peer.hasPrefix("[") { return peer.dropFirst().split(separator: "]").first.map(String.init) }
        let parts = peer.split(separator: ":")
        guard parts.count == 2, parts[0].split(separator: ".").count == 4 else { return nil }
        return String(parts[0])
    }

    static func role(forScopes scopes: [String]) -> Role {
        if scopes.contains("write") { return .admin }
        return .viewer
    }
}

/// Per-key request budget: a token bucket refilled continuously at `perMinute` per minute.
public final class RateLimiter: Sendable {
    public static let defaultPerMinute = 600
    private struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }
    private let buckets = Mutex<[String: Bucket]>([:])

    public init() {}

    /// nil when the request may go ahead; otherwise seconds until one will be allowed.
    public func take(key: String, perMinute: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { all in
            let capacity = Double(perMinute)
            var bucket = all[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = bucket.updated.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * capacity / 60)
            bucket.updated = now
            defer { all[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) * 60 / capacity).rounded(.up)))
        }
    }
}
