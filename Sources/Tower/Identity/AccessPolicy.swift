import TowerProto
import TowerRPC

/// What each RPC requires, in one table: a method missing here is refused (fail closed), and a
/// test checks that every served method has an entry.
public enum AccessPolicy {
    public enum Requirement: Sendable, Hashable {
        /// No credentials: sign-in, health, reflection.
        case open
        /// Any authenticated caller.
        case authenticated
        /// At least this role in the org the request acts in.
        case role(Role)
        /// A signed-in person (not an API key), e.g. two-factor enrollment.
        case person
    }

    public static let table: [String: Requirement] = {
        var t: [String: Requirement] = [:]
        func set(_ m: MethodDescriptor, _ r: Requirement) { t[m.path] = r }
        for m in Grpc_Health_V1_Health.Method.all { set(m, .open) }
        for m in Grpc_Reflection_V1_ServerReflection.Method.all { set(m, .open) }
        for m in Grpc_Reflection_V1alpha_ServerReflection.Method.all { set(m, .open) }

        set(AuthService.Method.login, .open)
        set(AuthService.Method.refresh, .open)
        set(AuthService.Method.logout, .open)
        set(AuthService.Method.acceptInvite, .open)
        set(AuthService.Method.enrollTotp, .person)
        set(AuthService.Method.verifyTotp, .person)
        set(AuthService.Method.createApiKey, .role(.admin))
        set(AuthService.Method.listApiKeys, .role(.admin))
        set(AuthService.Method.revokeApiKey, .role(.admin))
        set(AuthService.Method.whoAmI, .authenticated)

        // Open: the handler applies the server's sign-up policy (setup token, open, closed).
        set(OrgService.Method.createOrg, .open)
        set(OrgService.Method.getOrg, .role(.viewer))
        set(OrgService.Method.updateOrgSettings, .role(.admin))
        set(OrgService.Method.createClientOrg, .role(.admin))
        set(OrgService.Method.listClientOrgs, .role(.viewer))

        set(UserService.Method.createUser, .role(.admin))
        set(UserService.Method.getUser, .role(.viewer))
        set(UserService.Method.listUsers, .role(.viewer))
        set(UserService.Method.updateUserRole, .role(.admin))
        set(UserService.Method.deactivateUser, .role(.admin))

        set(IntegrationService.Method.createCarrierConnection, .role(.admin))
        set(IntegrationService.Method.getCarrierConnection, .role(.viewer))
        set(IntegrationService.Method.listCarrierConnections, .role(.viewer))
        set(IntegrationService.Method.updateCarrierConnection, .role(.admin))
        set(IntegrationService.Method.deleteCarrierConnection, .role(.admin))
        set(IntegrationService.Method.testCarrierConnection, .role(.admin))
        set(IntegrationService.Method.sendTestMessage, .role(.admin))

        set(TemplateService.Method.createTemplate, .role(.admin))
        set(TemplateService.Method.getTemplate, .role(.viewer))
        set(TemplateService.Method.listTemplates, .role(.viewer))
        set(TemplateService.Method.updateTemplate, .role(.admin))
        set(TemplateService.Method.archiveTemplate, .role(.admin))
        set(TemplateService.Method.restoreTemplate, .role(.admin))
        set(TemplateService.Method.previewTemplate, .role(.viewer))
        set(TemplateService.Method.installStarterLibrary, .role(.admin))
        set(MessageService.Method.getMessage, .role(.viewer))
        set(MessageService.Method.listThread, .role(.viewer))
        set(MessageService.Method.listInbox, .role(.viewer))
        set(MessageService.Method.subscribeInbound, .role(.viewer))
        set(MessageService.Method.sendMessage, .role(.agent))
        set(MessageService.Method.resolveReview, .role(.agent))
        set(MessageService.Method.markThreadRead, .role(.agent))

        set(NumberService.Method.addNumber, .role(.admin))
        set(NumberService.Method.listNumbers, .role(.viewer))
        set(NumberService.Method.updateNumber, .role(.admin))
        set(NumberService.Method.releaseNumber, .role(.admin))

        set(CampaignService.Method.createCampaign, .role(.agent))
        set(CampaignService.Method.getCampaign, .role(.viewer))
        set(CampaignService.Method.listCampaigns, .role(.viewer))
        set(CampaignService.Method.updateCampaign, .role(.agent))
        set(CampaignService.Method.startCampaign, .role(.agent))
        set(CampaignService.Method.pauseCampaign, .role(.agent))
        set(CampaignService.Method.resumeCampaign, .role(.agent))
        set(CampaignService.Method.cancelCampaign, .role(.agent))
        set(CampaignService.Method.cloneCampaign, .role(.agent))
        set(CampaignService.Method.watchCampaignProgress, .role(.viewer))

        set(LeadService.Method.importLeads, .role(.agent))
        set(LeadService.Method.suggestColumnMapping, .role(.viewer))
        set(LeadService.Method.getImportJob, .role(.viewer))
        set(LeadService.Method.listImportJobs, .role(.viewer))
        set(LeadService.Method.watchImportJob, .role(.viewer))
        set(LeadService.Method.listImportErrors, .role(.viewer))
        set(LeadService.Method.createLead, .role(.agent))
        set(LeadService.Method.getLead, .role(.viewer))
        set(LeadService.Method.updateLead, .role(.agent))
        set(LeadService.Method.deleteLead, .role(.admin))
        set(LeadService.Method.listLeads, .role(.viewer))
        set(LeadService.Method.exportLeads, .role(.agent))
        set(LeadService.Method.createTag, .role(.agent))
        set(LeadService.Method.listTags, .role(.viewer))
        set(LeadService.Method.addLeadTags, .role(.agent))
        set(LeadService.Method.removeLeadTags, .role(.agent))
        set(LeadService.Method.createLeadList, .role(.agent))
        set(LeadService.Method.listLeadLists, .role(.viewer))
        set(LeadService.Method.addListMembers, .role(.agent))
        set(LeadService.Method.removeListMembers, .role(.agent))
        return t
    }()

    public static func requirement(forPath path: String) -> Requirement? { table[path] }
}
