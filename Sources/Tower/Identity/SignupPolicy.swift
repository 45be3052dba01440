import TowerCrypto

/// Who may create a top-level org with OrgService.CreateOrg.
public enum SignupPolicy: Sendable, Hashable {
    /// Only the first org, with the one-time setup token the server logged at start.
    case setupToken(String)
    /// Anyone (a public SaaS deployment).
    case open
    /// Nobody: orgs come from CTOWER_INIT_* or an operator.
    case closed

    /// A fresh random setup token.
    public static func newSetupToken() -> String { "cts_" + Crypto.hex(Crypto.randomBytes(16)) }

    /// Whether a CreateOrg with `token` is allowed, given whether any org exists yet.
    func allows(token: String, anyOrgExists: Bool) -> Bool {
        switch self {
        case .open: return true
        case .closed: return false
        case .setupToken(let expected):
            return !anyOrgExists && !token.isEmpty && Crypto.constantTimeEquals(Array(token.utf8), Array(expected.utf8))
        }
    }
}
