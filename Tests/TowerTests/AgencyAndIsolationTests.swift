import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

@Suite("Agencies act in their client orgs, never in others'")
struct AgencyTests {
    @Test func agencyAdminActsInClientOrgsOnly() async throws {
        let env = try await IdentityEnvironment.get()
        let (agencyA, emailA, passwordA) = try await env.makeOrg(.agency, name: "Agency A")
        let (_, emailB, passwordB) = try await env.makeOrg(.agency, name: "Agency B")
        let a = try await env.login(emailA, passwordA)
        let b = try await env.login(emailB, passwordB)
        let orgs = OrgService.Client(channel: env.channel)
        var create = CreateClientOrgRequest()
        create.name = "Client of A"
        create.requestID = UUID().uuidString
        let client = try await orgs.createClientOrg(create, options: bearer(a.accessToken))
        #expect(client.kind == .client)
        #expect(client.parentOrgID == agencyA.orgID.description)
        // A retried create returns the same org.
        #expect(try await orgs.createClientOrg(create, options: bearer(a.accessToken)).id == client.id)
        #expect(try await orgs.listClientOrgs(ListClientOrgsRequest(), options: bearer(a.accessToken)).orgs.map(\.id) == [client.id])

        // Acting inside the client org with x-ctower-org.
        let inClient = bearer(a.accessToken, org: client.id)
        #expect(try await orgs.getOrg(GetOrgRequest(), options: inClient).id == client.id)
        var user = CreateUserRequest()
        user.email = "client-agent-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        user.password = "client agent password"
        user.role = .agent
        _ = try await UserService.Client(channel: env.channel).createUser(user, options: inClient)
        let me = try await AuthService.Client(channel: env.channel).whoAmI(Google_Protobuf_Empty(), options: inClient)
        #expect(me.orgID == client.id)
        #expect(me.role == .owner)

        // Agency B cannot act in A's client, nor read it directly.
        #expect(
            await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(b.accessToken, org: client.id)) } == .permissionDenied)
        var byID = GetOrgRequest()
        byID.orgID = client.id
        #expect(await status { try await orgs.getOrg(byID, options: bearer(b.accessToken)) } == .notFound)

        // The client org's own user cannot act in the agency.
        let clientUser = try await env.login(user.email, user.password)
        #expect(
            await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(clientUser.accessToken, org: agencyA.orgID.description)) }
                == .permissionDenied)
        // A standard org cannot have clients.
        let (_, emailS, passwordS) = try await env.makeOrg(.standard)
        let s = try await env.login(emailS, passwordS)
        #expect(await status { try await orgs.createClientOrg(create, options: bearer(s.accessToken)) } == .failedPrecondition)
        #expect(
            await status { try await orgs.getOrg(GetOrgRequest(), options: bearer(a.accessToken, org: "not-a-uuid")) } == .invalidArgument)
    }

    @Test func settingsAreValidatedAndMasked() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, email, password) = try await env.makeOrg()
        let session = try await env.login(email, password)
        let orgs = OrgService.Client(channel: env.channel)
        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.brandName = "Sunbelt Land Co"
        update.settings?.quietHours = QuietHoursPolicy()
        update.settings?.quietHours?.startMinute = 540
        update.settings?.quietHours?.endMinute = 1200
        update.settings?.timeZone = "America/Chicago"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["brand_name", "quiet_hours", "time_zone"]
        let org = try await orgs.updateOrgSettings(update, options: bearer(session.accessToken))
        #expect(org.settings?.brandName == "Sunbelt Land Co")
        #expect(org.settings?.quietHours?.startMinute == 540)
        #expect(org.settings?.timeZone == "America/Chicago")
        #expect(org.settings?.defaultDailyCap == 200)  // not in the mask: unchanged

        update.settings?.quietHours?.endMinute = 1320  // 22:00 is past the federal limit
        update.updateMask?.paths = ["quiet_hours"]
        do {
            _ = try await orgs.updateOrgSettings(update, options: bearer(session.accessToken))
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("settings.quiet_hours"))
        }
        update.settings?.timeZone = "Mars/Olympus"
        update.updateMask?.paths = ["time_zone"]
        #expect(await status { try await orgs.updateOrgSettings(update, options: bearer(session.accessToken)) } == .invalidArgument)
        update.updateMask?.paths = []
        #expect(await status { try await orgs.updateOrgSettings(update, options: bearer(session.accessToken)) } == .invalidArgument)
    }
}

/// Every RPC that takes an id, called by org A with org B's id, answers NOT_FOUND. The list of
/// id-taking requests comes from the served schema (the embedded descriptors), so a new RPC with
/// an `*_id` field fails this test until a case for it is added below.
@Suite("Tenant isolation matrix")
struct IsolationMatrixTests {
    /// Request fields (by JSON name) that carry the id of another tenant's resource.
    static let idFieldsByRequest: [String: String] = [
        "ctower.v1.GetOrgRequest": "orgId",
        "ctower.v1.UpdateOrgSettingsRequest": "orgId",
        "ctower.v1.GetUserRequest": "userId",
        "ctower.v1.UpdateUserRoleRequest": "userId",
        "ctower.v1.DeactivateUserRequest": "userId",
        "ctower.v1.RevokeApiKeyRequest": "apiKeyId",
        // Exercised in IntegrationServiceTests.crossTenantConnectionIdsAreNotFound.
        "ctower.v1.GetCarrierConnectionRequest": "connectionId",
        "ctower.v1.UpdateCarrierConnectionRequest": "connectionId",
        "ctower.v1.DeleteCarrierConnectionRequest": "connectionId",
        "ctower.v1.TestCarrierConnectionRequest": "connectionId",
        "ctower.v1.SendTestMessageRequest": "connectionId",
        // Exercised in TemplateServiceTests.otherOrgsCannotReadUpdateOrPreview (lead_id there too).
        "ctower.v1.GetTemplateRequest": "templateId",
        "ctower.v1.UpdateTemplateRequest": "templateId",
        "ctower.v1.ArchiveTemplateRequest": "templateId",
        "ctower.v1.RestoreTemplateRequest": "templateId",
        "ctower.v1.PreviewTemplateRequest": "templateId",
        // Exercised in MessageServiceTests.crossTenantIdsAreNotFound.
        "ctower.v1.GetMessageRequest": "messageId",
        "ctower.v1.ListThreadRequest": "leadId",
        "ctower.v1.SendMessageRequest": "leadId",
        "ctower.v1.ResolveReviewRequest": "messageId",
        "ctower.v1.MarkThreadReadRequest": "leadId",
        // Exercised in LeadImportTests.anotherOrgNeverSeesOrMergesIntoTheseLeads.
        "ctower.v1.GetImportJobRequest": "importJobId",
        "ctower.v1.WatchImportJobRequest": "importJobId",
        "ctower.v1.ListImportErrorsRequest": "importJobId",
        // Exercised in LeadServiceTests.anotherOrgsLeadsTagsAndListsAreNotFound.
        "ctower.v1.GetLeadRequest": "leadId",
        "ctower.v1.UpdateLeadRequest": "leadId",
        "ctower.v1.DeleteLeadRequest": "leadId",
        "ctower.v1.ModifyListMembersRequest": "listId",
        // Exercised in NumberServiceTests.otherTenantsNumbersAndConnectionsAreNotFound.
        "ctower.v1.AddNumberRequest": "carrierConnectionId",
        "ctower.v1.UpdateNumberRequest": "phoneNumberId",
        "ctower.v1.ReleaseNumberRequest": "phoneNumberId",
        // Exercised in CampaignServiceTests.otherTenantsCampaignsAndReferencesAreNotFound.
        "ctower.v1.CreateCampaignRequest": "templateId",
        "ctower.v1.GetCampaignRequest": "campaignId",
        "ctower.v1.UpdateCampaignRequest": "campaignId",
        "ctower.v1.StartCampaignRequest": "campaignId",
        "ctower.v1.PauseCampaignRequest": "campaignId",
        "ctower.v1.ResumeCampaignRequest": "campaignId",
        "ctower.v1.CancelCampaignRequest": "campaignId",
        "ctower.v1.CloneCampaignRequest": "campaignId",
        "ctower.v1.WatchCampaignProgressRequest": "campaignId",
    ]

    @Test func everyIdTakingRequestIsCovered() throws {
        let schema = try SchemaIndex(files: TowerProtoFiles.all)
        let servedRequests = Set(AccessPolicy.table.keys.compactMap { schema.inputType(ofPath: $0) })
        // request_id is an idempotency key, not a resource of some tenant.
        let idTaking = servedRequests.filter { schema.fields(of: $0).contains { $0.hasSuffix("_id") && $0 != "request_id" } }
        #expect(!idTaking.isEmpty)
        for request in idTaking.sorted() {
            #expect(Self.idFieldsByRequest[request] != nil, "add \(request) to the isolation matrix")
        }
    }

    @Test func crossTenantIdsAreNotFound() async throws {
        let env = try await IdentityEnvironment.get()
        let (_, emailA, passwordA) = try await env.makeOrg(name: "Tenant A")
        let (orgB, emailB, passwordB) = try await env.makeOrg(name: "Tenant B")
        let a = try await env.login(emailA, passwordA)
        let b = try await env.login(emailB, passwordB)
        var keyRequest = CreateApiKeyRequest()
        keyRequest.name = "B's key"
        keyRequest.scopes = [.write]
        let bKey = try await AuthService.Client(channel: env.channel).createApiKey(keyRequest, options: bearer(b.accessToken))
        let ids = ["orgId": orgB.orgID.description, "userId": orgB.ownerID.description, "apiKeyId": bKey.apiKey?.id ?? ""]
        let options = bearer(a.accessToken)
        let orgs = OrgService.Client(channel: env.channel)
        let users = UserService.Client(channel: env.channel)
        let auth = AuthService.Client(channel: env.channel)

        var getOrg = GetOrgRequest()
        getOrg.orgID = ids["orgId"]!
        #expect(await status { try await orgs.getOrg(getOrg, options: options) } == .notFound)
        var update = UpdateOrgSettingsRequest()
        update.orgID = ids["orgId"]!
        update.settings = OrgSettings()
        update.settings?.brandName = "Hijacked"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["brand_name"]
        #expect(await status { try await orgs.updateOrgSettings(update, options: options) } == .notFound)
        var getUser = GetUserRequest()
        getUser.userID = ids["userId"]!
        #expect(await status { try await users.getUser(getUser, options: options) } == .notFound)
        var role = UpdateUserRoleRequest()
        role.userID = ids["userId"]!
        role.role = .viewer
        #expect(await status { try await users.updateUserRole(role, options: options) } == .notFound)
        var deactivate = DeactivateUserRequest()
        deactivate.userID = ids["userId"]!
        #expect(await status { try await users.deactivateUser(deactivate, options: options) } == .notFound)
        var revoke = RevokeApiKeyRequest()
        revoke.apiKeyID = ids["apiKeyId"]!
        #expect(await status { try await auth.revokeApiKey(revoke, options: options) } == .notFound)

        // B's resources are untouched.
        let stillB = try await orgs.getOrg(GetOrgRequest(), options: bearer(b.accessToken))
        #expect(stillB.settings?.brandName != "Hijacked")
        #expect(try await orgs.getOrg(GetOrgRequest(), options: bearer(bKey.key)).id == orgB.orgID.description)
    }
}

/// Just enough of descriptor.proto's wire format to list each method's input type and each
/// message's field names from the embedded FileDescriptorProtos.
struct SchemaIndex {
    private var inputTypeByPath: [String: String] = [:]
    private var fieldsByMessage: [String: [String]] = [:]

    init(files: [ProtoFileDescriptor]) throws {
        for file in files {
            let top = try WireReader.fields(file.serialized)
            let package = top.first { $0.number == 2 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
            for message in top where message.number == 4 { try indexMessage(message.bytes, scope: package) }
            for service in top where service.number == 6 {
                let s = try WireReader.fields(service.bytes)
                let name = s.first { $0.number == 1 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
                for method in s where method.number == 2 {
                    let m = try WireReader.fields(method.bytes)
                    let methodName = m.first { $0.number == 1 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
                    let input = m.first { $0.number == 2 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
                    inputTypeByPath["/\(package).\(name)/\(methodName)"] = String(input.drop { $0 == "." })
                }
            }
        }
    }

    private mutating func indexMessage(_ bytes: [UInt8], scope: String) throws {
        let m = try WireReader.fields(bytes)
        let name = m.first { $0.number == 1 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
        let full = scope.isEmpty ? name : scope + "." + name
        fieldsByMessage[full] = try m.filter { $0.number == 2 }.map { field in
            try WireReader.fields(field.bytes).first { $0.number == 1 }.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
        }
        for nested in m where nested.number == 3 { try indexMessage(nested.bytes, scope: full) }
    }

    func inputType(ofPath path: String) -> String? { inputTypeByPath[path] }
    func fields(of message: String) -> [String] { fieldsByMessage[message] ?? [] }
}

enum WireReader {
    struct Field { var number: Int; var bytes: [UInt8] }
    struct Malformed: Error {}

    /// Top-level length-delimited fields (wire type 2); other wire types are skipped.
    static func fields(_ data: [UInt8]) throws -> [Field] {
        var out: [Field] = []
        var i = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < data.count, shift < 64 else { throw Malformed() }
                let b = data[i]
                i += 1
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while i < data.count {
            let key = try varint()
            switch key & 7 {
            case 0: _ = try varint()
            case 1: i += 8
            case 5: i += 4
            case 2:
                let length = Int(try varint())
                guard i + length <= data.count else { throw Malformed() }
                out.append(Field(number: Int(key >> 3), bytes: Array(data[i..<i + length])))
                i += length
            default: throw Malformed()
            }
        }
        return out
    }
}

@Suite("Creating orgs (sign-up and the first-start setup token)")
struct CreateOrgTests {
    func request(_ kind: OrgKind = .agency, token: String = "") -> CreateOrgRequest {
        var r = CreateOrgRequest()
        r.name = "Signup Land Co"
        r.kind = kind
        r.ownerEmail = "founder-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        r.ownerPassword = "founder password 1"
        r.setupToken = token
        return r
    }

    @Test func openSignupCreatesAnOrgWhoseOwnerCanSignIn() async throws {
        let env = try await IdentityEnvironment.get()
        let orgs = OrgService.Client(
            channel: InProcessChannel(
                services: [OrgServiceImpl(store: env.store, signup: .open, passwords: env.passwords)], interceptors: [env.interceptor]))
        let r = request()
        let created = try await orgs.createOrg(r)
        #expect(created.org?.kind == .agency)
        #expect(created.owner?.role == .owner)
        let session = try await env.login(r.ownerEmail, r.ownerPassword)
        #expect(session.orgID == created.org?.id)
        #expect(await status { try await orgs.createOrg(self.request(.client)) } == .invalidArgument)
        var weak = request()
        weak.ownerPassword = "short"
        #expect(await status { try await orgs.createOrg(weak) } == .invalidArgument)
    }

    @Test func closedServersAndWrongTokensRefuse() async throws {
        let env = try await IdentityEnvironment.get()
        for policy in [SignupPolicy.closed, .setupToken("cts_right")] {
            let orgs = OrgService.Client(
                channel: InProcessChannel(
                    services: [OrgServiceImpl(store: env.store, signup: policy, passwords: env.passwords)], interceptors: [env.interceptor])
            )
            #expect(await status { try await orgs.createOrg(self.request(token: "cts_wrong")) } == .permissionDenied)
        }
    }

    @Test func setupTokenWorksOnlyUntilTheFirstOrgExists() {
        let policy = SignupPolicy.setupToken("cts_abc")
        #expect(policy.allows(token: "cts_abc", anyOrgExists: false))
        #expect(!policy.allows(token: "cts_abc", anyOrgExists: true))
        #expect(!policy.allows(token: "cts_abd", anyOrgExists: false))
        #expect(!policy.allows(token: "", anyOrgExists: false))
        #expect(SignupPolicy.open.allows(token: "", anyOrgExists: true))
        #expect(!SignupPolicy.closed.allows(token: "anything", anyOrgExists: false))
    }
}
