import Foundation
import TowerProto
import TowerStore

/// Row <-> message conversions shared by the identity services.
enum IdentityRecords {
    /// Columns for `user(row, role:)`; `u` is the users alias.
    static let userColumns = """
        u.id, u.email, u.display_name, u.status, u.totp_enabled, \
        (extract(epoch FROM u.created_at) * 1000000)::bigint AS created_us, \
        (extract(epoch FROM u.last_login_at) * 1000000)::bigint AS last_login_us
        """

    static func user(_ row: Row, role: String?) throws -> User {
        var user = User()
        user.id = try row.decode("id", as: UUID.self).uuidString.lowercased()
        user.email = try row.decode("email")
        user.displayName = try row.decode("display_name")
        switch try row.decode("status", as: String.self) {
        case "invited": user.status = .invited
        case "active": user.status = .active
        default: user.status = .deactivated
        }
        user.role = role.flatMap(Role.init(databaseName:)) ?? .unspecified
        user.totpEnabled = try row.decode("totp_enabled")
        user.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        user.lastLoginTime = Timestamps.proto(micros: try row.decode("last_login_us", as: Int64?.self))
        return user
    }

    static let orgColumns = """
        o.id, o.name, o.kind, o.parent_org_id, o.brand_name, o.time_zone, o.quiet_hours_start_minute, \
        o.quiet_hours_end_minute, o.default_daily_cap, o.help_reply_text, o.stop_reply_text, o.free_text_opt_out, \
        array_to_string(o.ip_allowlist, ',') AS ip_allowlist, o.require_opt_out_language, o.require_consent, \
        (extract(epoch FROM o.created_at) * 1000000)::bigint AS created_us, \
        (extract(epoch FROM o.updated_at) * 1000000)::bigint AS updated_us
        """

    static func org(_ row: Row) throws -> Org {
        var org = Org()
        org.id = try row.decode("id", as: UUID.self).uuidString.lowercased()
        org.name = try row.decode("name")
        switch try row.decode("kind", as: String.self) {
        case "agency": org.kind = .agency
        case "client": org.kind = .client
        default: org.kind = .standard
        }
        org.parentOrgID = try row.decode("parent_org_id", as: UUID?.self)?.uuidString.lowercased() ?? ""
        var s = OrgSettings()
        s.brandName = try row.decode("brand_name", as: String?.self) ?? ""
        s.timeZone = try row.decode("time_zone")
        var quiet = QuietHoursPolicy()
        quiet.startMinute = try row.decode("quiet_hours_start_minute")
        quiet.endMinute = try row.decode("quiet_hours_end_minute")
        s.quietHours = quiet
        s.defaultDailyCap = try row.decode("default_daily_cap")
        s.helpReplyText = try row.decode("help_reply_text", as: String?.self) ?? ""
        s.stopReplyText = try row.decode("stop_reply_text", as: String?.self) ?? ""
        s.freeTextOptOut = try row.decode("free_text_opt_out")
        let allowlist = try row.decode("ip_allowlist", as: String?.self) ?? ""
        s.ipAllowlist = allowlist.isEmpty ? [] : allowlist.split(separator: ",").map(String.init)
        s.requireOptOutLanguage = try row.decode("require_opt_out_language")
        s.requireConsent = try row.decode("require_consent")
        org.settings = s
        org.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        org.updateTime = Timestamps.proto(micros: try row.decode("updated_us", as: Int64?.self))
        return org
    }

    static let apiKeyColumns = """
        k.id, k.name, k.prefix, k.scopes, coalesce(k.rate_limit_per_minute, 0)::int AS rate_limit, \
        (extract(epoch FROM k.created_at) * 1000000)::bigint AS created_us, \
        (extract(epoch FROM k.expires_at) * 1000000)::bigint AS expires_us, \
        (extract(epoch FROM k.revoked_at) * 1000000)::bigint AS revoked_us, \
        (extract(epoch FROM k.last_used_at) * 1000000)::bigint AS used_us
        """

    static func apiKey(_ row: Row) throws -> ApiKey {
        var key = ApiKey()
        key.id = try row.decode("id", as: UUID.self).uuidString.lowercased()
        key.name = try row.decode("name")
        key.prefix = try row.decode("prefix")
        key.scopes = try row.decode("scopes", as: [String].self).compactMap(scope(databaseName:))
        key.rateLimitPerMinute = try row.decode("rate_limit")
        key.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        key.expireTime = Timestamps.proto(micros: try row.decode("expires_us", as: Int64?.self))
        key.revokeTime = Timestamps.proto(micros: try row.decode("revoked_us", as: Int64?.self))
        key.lastUsedTime = Timestamps.proto(micros: try row.decode("used_us", as: Int64?.self))
        return key
    }

    static func scope(databaseName: String) -> ApiKeyScope? {
        switch databaseName {
        case "read": .read
        case "write": .write
        case "integrations": .integrations
        default: nil
        }
    }

    static func databaseName(_ scope: ApiKeyScope) -> String? {
        switch scope {
        case .read: "read"
        case .write: "write"
        case .integrations: "integrations"
        default: nil
        }
    }

    /// A request id field that must be a UUID.
    static func id(_ text: String, field: String) throws -> UUIDText {
        guard let id = UUIDText(text) else { throw DomainError.invalid(field, "must be an id (UUID) as returned by this API") }
        return id
    }

    static let emailFix = "must be an email address such as ana@example.com"

    /// The email lowercased and trimmed, or nil when it is not an address.
    static func normalizedEmail(_ email: String) -> String? {
        let e = email.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = e.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !e.contains(" "), e.utf8.count <= 254 else { return nil }
        return e
    }

    /// What is wrong with a new password, or nil when it is acceptable.
    static func passwordProblem(_ password: String) -> String? {
        if password.count < 12 { return "must be at least 12 characters" }
        if password.utf8.count > 1024 { return "must be at most 1024 bytes" }
        return nil
    }

    static func validateEmail(_ email: String, field: String = "email") throws -> String {
        guard let e = normalizedEmail(email) else { throw DomainError.invalid(field, emailFix) }
        return e
    }

    static func validatePassword(_ password: String, field: String = "password") throws {
        if let problem = passwordProblem(password) { throw DomainError.invalid(field, problem) }
    }
}
