import TowerCrypto
import TowerProtoRuntime
import TowerStore

/// A short-lived signed statement "user U of org O, session S, until T".
///
/// Wire form: `ct1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "ct1." + claims))>`.
/// HMAC keeps verification local (no database round trip to check the signature); the session
/// id lets the server refuse tokens of a revoked session.
public struct AccessToken: Sendable, Hashable {
    public var userID: UserID
    public var orgID: OrgID
    /// The refresh-token family of the sign-in this token came from.
    public var sessionID: String
    public var issuedAt: Int64
    public var expiresAt: Int64

    static let prefix = "ct1."

    public init(userID: UserID, orgID: OrgID, sessionID: String, issuedAt: Int64, expiresAt: Int64) {
        self.userID = userID
        self.orgID = orgID
        self.sessionID = sessionID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// Signs and verifies access tokens with one secret key.
public struct AccessTokenSigner: Sendable {
    private let key: [UInt8]

    public init(key: [UInt8]) {
        precondition(key.count >= 32, "token signing keys are at least 32 bytes")
        self.key = key
    }

    public func sign(_ token: AccessToken) -> String {
        let claims: JSONValue = .object([
            ("sub", .string(token.userID.description)), ("org", .string(token.orgID.description)),
            ("sid", .string(token.sessionID)), ("iat", .number(String(token.issuedAt))), ("exp", .number(String(token.expiresAt))),
        ])
        let body = AccessToken.prefix + Base64.encode(Array(claims.serialized().utf8), padded: false, urlSafe: true)
        let signature = Crypto.hmacSHA256(key: key, data: Array(body.utf8))
        return body + "." + Base64.encode(signature, padded: false, urlSafe: true)
    }

    public enum Rejection: Error, Sendable, Hashable {
        case malformed, badSignature, expired
    }

    /// The token's claims if it is well formed, signed with this key and not expired at `now`.
    public func verify(_ text: String, now: Int64) -> Result<AccessToken, Rejection> {
        guard text.hasPrefix(AccessToken.prefix), text.utf8.count < 4096 else { return .failure(.malformed) }
        let parts = text.dropFirst(AccessToken.prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .failure(.malformed) }
        let body = AccessToken.prefix + parts[0]
        // Signature first: claims of an unsigned token are never parsed further than base64. The
        // signature's text is compared, not its decoded bytes: base64 letters that differ only in
        // unused trailing bits decode alike, and an altered token must never verify.
        let expected = Base64.encode(Crypto.hmacSHA256(key: key, data: Array(body.utf8)), padded: false, urlSafe: true)
        guard Crypto.constantTimeEquals(Array(parts[1].utf8), Array(expected.utf8)) else {
            return .failure(.badSignature)
        }
        guard let json = Base64.decode(String(parts[0])), let text = String(validating: json, as: UTF8.self),
            let claims = try? JSONValue.parse(text),
            case .string(let sub)? = claims["sub"], let user = UserID(sub),
            case .string(let org)? = claims["org"], let orgID = OrgID(org),
            case .string(let sid)? = claims["sid"],
            case .number(let iat)? = claims["iat"], let issuedAt = Int64(iat),
            case .number(let exp)? = claims["exp"], let expiresAt = Int64(exp)
        else { return .failure(.malformed) }
        guard now < expiresAt else { return .failure(.expired) }
        return .success(AccessToken(userID: user, orgID: orgID, sessionID: sid, issuedAt: issuedAt, expiresAt: expiresAt))
    }
}

/// Secrets handed out once and stored only as SHA-256: API keys, refresh tokens, invite tokens.
public enum OpaqueSecret {
    /// `ctk_<8 hex>_<43 base64url>`: the first 12 characters are a non-secret prefix for listings.
    public static func newAPIKey() -> (key: String, prefix: String) {
        let prefix = "ctk_" + Crypto.hex(Crypto.randomBytes(4))
        return (prefix + "_" + Base64.encode(Crypto.randomBytes(32), padded: false, urlSafe: true), prefix)
    }

    /// A refresh or invite token: 32 random bytes, base64url, with a type tag.
    public static func newToken(tag: String) -> String {
        tag + "_" + Base64.encode(Crypto.randomBytes(32), padded: false, urlSafe: true)
    }

    public static func hash(_ secret: String) -> [UInt8] { Crypto.sha256(secret) }
}
