import Foundation
import TowerCrypto
import TowerProto
import TowerStore

/// Creating an org with its first owner: the first start of a server, agency sign-up, tests.
public enum IdentityBootstrap {
    public struct Created: Sendable {
        public var orgID: OrgID
        public var ownerID: UserID
    }

    /// Whether any org exists yet.
    public static func anyOrgExists(_ store: Store) async throws -> Bool {
        try await store.withTransaction(tenant: nil, readOnly: true) { tx in
            try await tx.query("SELECT ctower_any_org() AS any").one().decode("any", as: Bool.self)
        }
    }

    /// A standard or agency org with one active owner. Runs as the app role: the new org's id is
    /// the transaction's tenant, so row-level security admits exactly these rows.
    public static func createOrg(
        _ store: Store, name: String, kind: OrgKind, ownerEmail: String, ownerPassword: String,
        brandName: String? = nil, passwords: PasswordHasher = PasswordHasher(), requestID: String = "bootstrap", peer: String = "local"
    ) async throws -> Created {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 200 else { throw DomainError.invalid("name", "must be 1 to 200 characters") }
        guard kind == .standard || kind == .agency else { throw DomainError.invalid("kind", "a first org is standard or an agency") }
        let email = try IdentityRecords.validateEmail(ownerEmail)
        try IdentityRecords.validatePassword(ownerPassword)
        let hash = try passwords.hash(ownerPassword)
        let orgID = OrgID.random()
        let userID = UserID.random()
        let principal = RequestPrincipal(
            actor: .user(userID), orgID: orgID, homeOrgID: orgID, role: .owner, requestID: requestID, peer: peer)
        try await store.withTransaction(tenant: orgID, user: userID) { tx in
            try await tx.execute(
                """
                INSERT INTO orgs (id, kind, name, brand_name) VALUES (\(orgID), \(kind == .agency ? "agency" : "standard"), \(name), \(brandName ?? name))
                """)
            try await tx.execute(
                "INSERT INTO users (id, org_id, email, password_hash, status) VALUES (\(userID), \(orgID), \(email), \(hash), 'active')")
            try await tx.execute("INSERT INTO memberships (org_id, user_id, role) VALUES (\(orgID), \(userID), 'owner')")
            try await Audit.record(tx, principal, action: "org.create", targetType: "org", targetID: orgID.description)
        }
        return Created(orgID: orgID, ownerID: userID)
    }
}
