import Foundation
import Testing
import Tower
import TowerProto
import TowerRPC
import TowerStore

/// Checks that need a real client address: IP allowlists and per-address throttling.
@Suite("Authentication over loopback HTTP/2")
struct NetworkAuthTests {
    func serve(_ env: IdentityEnvironment, interceptor: AuthInterceptor) async throws -> (RPCServer, HTTP2ClientChannel) {
        let server = RPCServer(configuration: .init(host: "127.0.0.1", port: 0, interceptors: [interceptor]), services: env.services())
        let address = try await server.start()
        return (server, HTTP2ClientChannel(host: "127.0.0.1", port: address.port!))
    }

    @Test func ipAllowlistIsEnforcedAtAuthentication() async throws {
        let env = try await IdentityEnvironment.get()
        let (server, channel) = try await serve(env, interceptor: env.interceptor)
        defer {
            Task {
                await channel.close(); await server.shutdown(gracePeriod: .seconds(1))
            }
        }
        let (_, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        let orgs = OrgService.Client(channel: channel)
        #expect(try await orgs.getOrg(GetOrgRequest(), options: bearer(session.accessToken)).settings?.ipAllowlist == [])

        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.ipAllowlist = ["10.20.0.0/16"]
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["ip_allowlist"]
        _ = try await orgs.updateOrgSettings(update, options: bearer(session.accessToken))
        // 127.0.0.1 is not in 10.20.0.0/16: refused before any handler runs.
        #expect(await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(session.accessToken)) } == .permissionDenied)

        // Through the in-process channel (the server itself) the owner can widen the list again.
        update.settings?.ipAllowlist = ["10.20.0.0/16", "127.0.0.0/8"]
        _ = try await OrgService.Client(channel: env.channel).updateOrgSettings(update, options: bearer(session.accessToken))
        #expect(try await orgs.getOrg(GetOrgRequest(), options: bearer(session.accessToken)).settings?.ipAllowlist.count == 2)

        update.settings?.ipAllowlist = ["not-an-address"]
        #expect(await status { try await orgs.updateOrgSettings(update, options: bearer(session.accessToken)) } == .invalidArgument)
    }

    @Test func guessingCredentialsIsThrottledPerAddress() async throws {
        let env = try await IdentityEnvironment.get()
        let interceptor = AuthInterceptor(
            store: env.store, signer: env.keys.signer, failures: LoginThrottle(maxFailures: 3, window: .seconds(60)))
        let (server, channel) = try await serve(env, interceptor: interceptor)
        defer {
            Task {
                await channel.close(); await server.shutdown(gracePeriod: .seconds(1))
            }
        }
        let orgs = OrgService.Client(channel: channel)
        for i in 0..<3 {
            #expect(await status { try await orgs.getOrg(GetOrgRequest(), options: bearer("ctk_deadbeef_guess\(i)")) } == .unauthenticated)
        }
        #expect(await status { try await orgs.getOrg(GetOrgRequest(), options: bearer("ctk_deadbeef_guess4")) } == .resourceExhausted)
    }

    @Test func apiKeyRateLimitAnswersResourceExhausted() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        var create = CreateApiKeyRequest()
        create.name = "slow integration"
        create.scopes = [.read]
        create.rateLimitPerMinute = 2
        let key = try await AuthService.Client(channel: env.channel).createApiKey(create, options: bearer(session.accessToken)).key
        let orgs = OrgService.Client(channel: env.channel)
        _ = try await orgs.getOrg(GetOrgRequest(), options: bearer(key))
        _ = try await orgs.getOrg(GetOrgRequest(), options: bearer(key))
        #expect(await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(key)) } == .resourceExhausted)
    }

    @Test func mutationsWriteAuditEventsInTheirTransaction() async throws {
        let env = try await IdentityEnvironment.get()
        let (org, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        var create = CreateUserRequest()
        create.email = "audited-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        create.password = "audited password 1"
        create.role = .viewer
        let user = try await UserService.Client(channel: env.channel).createUser(create, options: bearer(session.accessToken)).user
        let actions = try await env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query("SELECT action, target_id, actor_user_id::text AS actor FROM audit_events ORDER BY id").map {
                [
                    try $0.decode("action", as: String.self), try $0.decode("target_id", as: String.self),
                    try $0.decode("actor", as: String?.self) ?? "",
                ]
            }
        }
        #expect(actions.contains(["user.create", user?.id ?? "?", org.ownerID.description]))
        #expect(actions.map { $0[0] }.contains("auth.login"))
        // A failed mutation leaves no audit row behind.
        #expect(
            await status { try await UserService.Client(channel: env.channel).createUser(create, options: bearer(session.accessToken)) }
                == .alreadyExists)
        let creates = try await env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'user.create'").one().decode("n", as: Int32.self)
        }
        #expect(creates == 1)
    }
}
