import Foundation
import Testing
import Tower
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStore

@Suite("Authentication: sessions, tokens, API keys")
struct AuthTests {
    @Test func loginThenWhoAmI() async throws {
        let env = try await IdentityEnvironment.get()
        let (org, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        #expect(session.orgID == org.orgID.description)
        #expect(session.user?.role == .owner)
        let me = try await AuthService.Client(channel: env.channel).whoAmI(Google_Protobuf_Empty(), options: bearer(session.accessToken))
        #expect(me.user?.email == email)
        #expect(me.role == .owner)
        #expect(me.orgID == org.orgID.description)
    }

    @Test func wrongPasswordAndUnknownEmailLookTheSame() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, _) = try await env.makeOrg()
        #expect(await status { try await env.login(email, "wrong password!") } == .unauthenticated)
        #expect(await status { try await env.login("nobody-\(UUID())@example.com", "wrong password!") } == .unauthenticated)
        #expect(await status { try await env.login("", "") } == .invalidArgument)
    }

    @Test func bruteForceIsThrottled() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let channel = env.channel(throttle: LoginThrottle(maxFailures: 5))
        for _ in 0..<5 { #expect(await status { try await env.login(email, "guess guess guess", via: channel) } == .unauthenticated) }
        // Even the right password is refused while the budget is spent.
        #expect(await status { try await env.login(email, password, via: channel) } == .resourceExhausted)
    }

    @Test func missingForgedAndExpiredCredentialsAreRejected() async throws {
        let env = try await IdentityEnvironment.get()
        let (org, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        let client = AuthService.Client(channel: env.channel)
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty()) } == .unauthenticated)
        // Every one-letter change of the signature is refused, including the last letter, whose
        // low bits base64 does not use.
        var forged = session.accessToken
        forged.removeLast()
        forged.append(session.accessToken.hasSuffix("A") ? "B" : "A")
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(forged)) } == .unauthenticated)
        var middle = Array(session.accessToken)
        middle[middle.count - 10] = middle[middle.count - 10] == "x" ? "y" : "x"
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(String(middle))) } == .unauthenticated)
        let otherKey = AccessTokenSigner(key: Array(repeating: 7, count: 32))
        let now = Int64(Date().timeIntervalSince1970)
        let userID = try #require(UserID(session.user?.id ?? ""))
        let alien = otherKey.sign(
            AccessToken(userID: userID, orgID: org.orgID, sessionID: UUID().uuidString, issuedAt: now, expiresAt: now + 600))
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(alien)) } == .unauthenticated)
        let expired = env.keys.signer.sign(
            AccessToken(userID: userID, orgID: org.orgID, sessionID: UUID().uuidString, issuedAt: now - 3600, expiresAt: now - 60))
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(expired)) } == .unauthenticated)
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer("not-a-token")) } == .unauthenticated)
    }

    @Test func refreshRotatesAndReuseRevokesTheFamily() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let client = AuthService.Client(channel: env.channel)
        let first = try await env.login(email, password)
        var refresh = RefreshRequest()
        refresh.refreshToken = first.refreshToken
        let second = try await client.refresh(refresh)
        #expect(second.refreshToken != first.refreshToken)
        #expect(try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(second.accessToken)).user?.email == email)
        // Replaying the rotated token is treated as theft: the whole family dies.
        #expect(await status { try await client.refresh(refresh) } == .unauthenticated)
        var next = RefreshRequest()
        next.refreshToken = second.refreshToken
        #expect(await status { try await client.refresh(next) } == .unauthenticated)
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(second.accessToken)) } == .unauthenticated)
        // Other sign-ins are unaffected.
        let other = try await env.login(email, password)
        #expect(try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(other.accessToken)).role == .owner)
    }

    @Test func logoutEndsTheSession() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let client = AuthService.Client(channel: env.channel)
        let session = try await env.login(email, password)
        var logout = LogoutRequest()
        logout.refreshToken = session.refreshToken
        _ = try await client.logout(logout)
        #expect(await status { try await client.whoAmI(Google_Protobuf_Empty(), options: bearer(session.accessToken)) } == .unauthenticated)
    }

    @Test func apiKeysAreShownOnceScopedAndRevocable() async throws {
        let env = try await IdentityEnvironment.get()
        let (org, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        let auth = AuthService.Client(channel: env.channel)
        let orgs = OrgService.Client(channel: env.channel)
        var create = CreateApiKeyRequest()
        create.name = "CRM sync"
        create.scopes = [.read]
        let created = try await auth.createApiKey(create, options: bearer(session.accessToken))
        #expect(created.key.hasPrefix(created.apiKey?.prefix ?? "?"))
        #expect(try await orgs.getOrg(GetOrgRequest(), options: bearer(created.key)).id == org.orgID.description)
        // Read scope cannot change settings, and no key manages users or keys.
        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.brandName = "New"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["brand_name"]
        #expect(await status { try await orgs.updateOrgSettings(update, options: bearer(created.key)) } == .permissionDenied)
        #expect(await status { try await auth.listApiKeys(ListApiKeysRequest(), options: bearer(created.key)) } == .permissionDenied)
        let listed = try await auth.listApiKeys(ListApiKeysRequest(), options: bearer(session.accessToken))
        #expect(listed.apiKeys.map(\.id) == [created.apiKey?.id ?? ""])
        var revoke = RevokeApiKeyRequest()
        revoke.apiKeyID = created.apiKey?.id ?? ""
        #expect(try await auth.revokeApiKey(revoke, options: bearer(session.accessToken)).revokeTime != nil)
        #expect(await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(created.key)) } == .unauthenticated)
        var badID = RevokeApiKeyRequest()
        badID.apiKeyID = "42"
        do {
            _ = try await auth.revokeApiKey(badID, options: bearer(session.accessToken))
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("api_key_id"))
        }
    }

    @Test func rolesAreEnforced() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let owner = try await env.login(email, password)
        let users = UserService.Client(channel: env.channel)
        var create = CreateUserRequest()
        create.email = "viewer-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        create.password = "viewer password 123"
        create.role = .viewer
        _ = try await users.createUser(create, options: bearer(owner.accessToken))
        var bad = create
        bad.email = "not an address"
        bad.password = "short"
        do {
            _ = try await users.createUser(bad, options: bearer(owner.accessToken))
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("email: must be an email address"))
            #expect(error.message.contains("password: must be at least 12 characters"))
        }
        let viewer = try await env.login(create.email, create.password)
        #expect(try await users.listUsers(ListUsersRequest(), options: bearer(viewer.accessToken)).users.count == 2)
        var another = create
        another.email = "x-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        #expect(await status { try await users.createUser(another, options: bearer(viewer.accessToken)) } == .permissionDenied)
    }

    @Test func invitedUserSetsAPasswordOnce() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let owner = try await env.login(email, password)
        var create = CreateUserRequest()
        create.email = "agent-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        create.role = .agent
        let invited = try await UserService.Client(channel: env.channel).createUser(create, options: bearer(owner.accessToken))
        #expect(invited.user?.status == .invited)
        #expect(!invited.inviteToken.isEmpty)
        var accept = AcceptInviteRequest()
        accept.inviteToken = invited.inviteToken
        accept.password = "short"
        #expect(await status { try await AuthService.Client(channel: env.channel).acceptInvite(accept) } == .invalidArgument)
        accept.password = "a long enough password"
        let session = try await AuthService.Client(channel: env.channel).acceptInvite(accept)
        #expect(session.user?.role == .agent)
        #expect(await status { try await AuthService.Client(channel: env.channel).acceptInvite(accept) } == .unauthenticated)
    }
}

@Suite("Two-factor sign-in (TOTP)")
struct TwoFactorTests {
    @Test func enrollVerifyThenLoginNeedsTheCode() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        let auth = AuthService.Client(channel: env.channel)
        let enrolled = try await auth.enrollTotp(Google_Protobuf_Empty(), options: bearer(session.accessToken))
        #expect(enrolled.provisioningURI.hasPrefix("otpauth://totp/"))
        let totp = TOTP(secret: try #require(Base32.decode(enrolled.secret)))
        let now = Int64(Date().timeIntervalSince1970)

        var wrong = VerifyTotpRequest()
        wrong.code = totp.code(at: now - 3600)
        #expect(await status { try await auth.verifyTotp(wrong, options: bearer(session.accessToken)) } == .invalidArgument)
        // Until verified, sign-in does not ask for a code.
        _ = try await env.login(email, password)

        var verify = VerifyTotpRequest()
        verify.code = totp.code(at: now)
        _ = try await auth.verifyTotp(verify, options: bearer(session.accessToken))
        #expect(
            await status { try await auth.enrollTotp(Google_Protobuf_Empty(), options: bearer(session.accessToken)) } == .failedPrecondition
        )

        #expect(await status { try await env.login(email, password) } == .unauthenticated)
        var login = LoginRequest()
        login.email = email
        login.password = password
        login.totpCode = totp.code(at: Int64(Date().timeIntervalSince1970))
        let second = try await auth.login(login)
        #expect(second.user?.totpEnabled == true)
        login.totpCode = "000000" == login.totpCode ? "111111" : "000000"
        #expect(await status { try await auth.login(login) } == .unauthenticated)
    }
}
