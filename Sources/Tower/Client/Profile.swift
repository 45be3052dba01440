import Foundation
import TowerProto
import TowerRPC

#if canImport(Glibc)
    import Glibc
#endif

/// A saved sign-in for the `ctower` CLI: which server, and the session tokens.
///
/// Stored in `$XDG_CONFIG_HOME/ctower/profiles.json` (default `~/.config/ctower/`), mode 0600,
/// keyed by profile name ("default" unless `--profile` says otherwise).
public struct Profile: Codable, Sendable, Hashable {
    public var server: String
    public var email: String
    public var orgID: String
    public var accessToken: String
    public var accessTokenExpiresAt: Int64
    public var refreshToken: String

    public init(server: String, session: Session, email: String) {
        self.server = server
        self.email = email
        self.orgID = session.orgID
        self.accessToken = session.accessToken
        self.accessTokenExpiresAt = session.accessTokenExpireTime?.seconds ?? 0
        self.refreshToken = session.refreshToken
    }

    mutating func update(with session: Session) {
        accessToken = session.accessToken
        accessTokenExpiresAt = session.accessTokenExpireTime?.seconds ?? 0
        refreshToken = session.refreshToken
        orgID = session.orgID
    }
}

/// Reads and writes profiles; refreshes a profile's access token when it is about to expire.
public struct ProfileStore: Sendable {
    public let path: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let base =
            environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path) + "/.config"
        path = base + "/ctower/profiles.json"
    }

    public init(path: String) { self.path = path }

    public func all() throws -> [String: Profile] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        do {
            return try JSONDecoder().decode([String: Profile].self, from: data)
        } catch {
            throw ProfileError("\(path) is not a valid profile file; delete it and run ctower login again")
        }
    }

    public func load(_ name: String) throws -> Profile {
        guard let profile = try all()[name] else { throw ProfileError("no profile \"\(name)\": run ctower login first") }
        return profile
    }

    public func save(_ profile: Profile, as name: String) throws {
        var profiles = try all()
        profiles[name] = profile
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(profiles)
        // Written to a private temporary file, then renamed: never a moment with loose permissions.
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw ProfileError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw ProfileError("cannot replace \(path): \(String(cString: strerror(errno)))") }
    }

    /// Bearer credentials for `name`, refreshing (and saving) the session when the access token
    /// expires within a minute.
    public func credentials(_ name: String, channel: any RPCChannel) async throws -> CallOptions {
        var profile = try load(name)
        if profile.accessTokenExpiresAt - 60 < Int64(Date().timeIntervalSince1970) {
            var request = RefreshRequest()
            request.refreshToken = profile.refreshToken
            let session = try await AuthService.Client(channel: channel).refresh(request)
            profile.update(with: session)
            try save(profile, as: name)
        }
        return CallOptions(metadata: ["authorization": .string("Bearer \(profile.accessToken)")])
    }
}

public struct ProfileError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
