import Foundation
import Testing
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

@testable import Tower

/// TemplateService against the real database, over loopback HTTP/2 (the same bytes a stock gRPC
/// client sends).
@Suite("TemplateService")
struct TemplateServiceTests {
    struct Fixture {
        let env: IdentityEnvironment
        let server: RPCServer
        let channel: HTTP2ClientChannel
        var templates: TemplateService.Client { TemplateService.Client(channel: channel) }
        var orgs: OrgService.Client { OrgService.Client(channel: channel) }

        func close() async {
            await channel.close()
            await server.shutdown(gracePeriod: .seconds(1))
        }

        /// A fresh org whose brand is `brand`, and its owner's call options.
        func org(brand: String = "Sunbelt Land Co") async throws -> (IdentityBootstrap.Created, CallOptions) {
            let (org, email, password) = try await env.makeOrg(name: "Templates \(UUID().uuidString.prefix(6))")
            let options = bearer(try await env.login(email, password).accessToken)
            var update = UpdateOrgSettingsRequest()
            update.settings = OrgSettings()
            update.settings?.brandName = brand
            update.updateMask = Google_Protobuf_FieldMask()
            update.updateMask?.paths = ["brand_name"]
            _ = try await orgs.updateOrgSettings(update, options: options)
            return (org, options)
        }
    }

    static func fixture() async throws -> Fixture {
        let env = try await IdentityEnvironment.get()
        let server = RPCServer(
            configuration: .init(host: "127.0.0.1", port: 0, interceptors: [env.interceptor]),
            services: env.services() + [TemplateServiceImpl(store: env.store)])
        let address = try await server.start()
        return Fixture(env: env, server: server, channel: HTTP2ClientChannel(host: "127.0.0.1", port: address.port!))
    }

    static func create(_ name: String, _ category: TemplateCategory, _ language: Language, _ bodies: [String])
        -> CreateTemplateRequest
    {
        var request = CreateTemplateRequest()
        request.name = name
        request.category = category
        request.language = language
        request.variants = bodies.map {
            var v = TemplateVariantInput()
            v.body = $0
            return v
        }
        return request
    }

    /// The error a call failed with (the test fails if it succeeded).
    static func failure<T>(_ call: () async throws -> T) async -> RPCError? {
        do {
            _ = try await call()
            Issue.record("expected the call to fail")
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func unknownVariablesAreRefusedWithVariableVariantAndPosition() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org()
        let request = Self.create(
            "Typos", .initial, .en,
            [
                "Hi {first_name|there}, {brand} here. Reply STOP to opt out.",
                "{brand}: selling your land? Reply STOP to opt out.",
                "Hello {frist_name}, {brand} about {countee}. Reply STOP to opt out.",
            ])
        let error = await Self.failure { try await f.templates.createTemplate(request, options: options) }
        #expect(error?.code == .invalidArgument)
        let violations = error?.fieldViolations ?? []
        #expect(violations.map(\.field) == ["variants[2].body", "variants[2].body"])
        #expect(violations.first?.description.contains("unknown variable {frist_name} at character 7") == true)
        #expect(violations.last?.description.contains("{countee} at character 35") == true)
        // Nothing was written.
        #expect(try await f.templates.listTemplates(ListTemplatesRequest(), options: options).templates.isEmpty)
    }

    @Test func everySaveReportsSegmentsEncodingAndFindings() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org(brand: "Sunbelt Land Co")
        let gsm = "{brand}: Hi {first_name|there}, would you sell your land? We buy for cash. Reply STOP to opt out."
        let spanish = "{brand}: Hola {first_name}, ¿vendería su terreno? Responda ALTO para no recibir más mensajes."
        let euro = "{brand}: offers from €5,000 per acre. Reply STOP to opt out."
        let created = try await f.templates.createTemplate(
            Self.create("First touch", .initial, .en, [gsm, spanish, euro]), options: options)
        #expect(created.category == .initial && created.language == .en && !created.archived)
        #expect(created.variants.map(\.position) == [1, 2, 3])
        #expect(created.variants.allSatisfy { $0.enabled && $0.revision == 1 && $0.sendCount == 0 })

        let gsmInfo = created.variants[0].segments
        #expect(gsmInfo?.encoding == .gsm7 && gsmInfo?.segments == 1 && gsmInfo?.unitsPerSegment == 160)
        #expect(
            gsmInfo?.units
                == Int32(
                    MessageEncoding("Sunbelt Land Co: Hi Maria, would you sell your land? We buy for cash. Reply STOP to opt out.").units))
        #expect(created.variants[0].findings.isEmpty)

        let ucs = created.variants[1].segments
        #expect(ucs?.encoding == .ucs2 && ucs?.ucs2Characters == ["í", "á"] && ucs?.segments == 2 && ucs?.unitsPerSegment == 67)
        #expect(created.variants[1].findings.map(\.code) == ["ucs2"])
        #expect(created.variants[1].findings.first?.severity == .warning)

        // "€" is GSM-7 but costs two septets.
        let euroText = "Sunbelt Land Co: offers from €5,000 per acre. Reply STOP to opt out."
        #expect(created.variants[2].segments?.encoding == .gsm7)
        #expect(created.variants[2].segments?.units == Int32(euroText.count + 1))
    }

    @Test func lintErrorsRefuseTheSaveAndWarningsComeBack() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org()
        let noOptOut = Self.create("No opt-out", .initial, .en, ["{brand}: want to sell your land?"])
        let error = await Self.failure { try await f.templates.createTemplate(noOptOut, options: options) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.fieldViolations.map(\.field) == ["variants[0].body"])
        #expect(error?.fieldViolations.first?.description.contains("[missing_opt_out]") == true)

        let shortener = Self.create("Link", .followUp, .en, ["See your offer: bit.ly/x1", "Still interested?"])
        let linkError = await Self.failure { try await f.templates.createTemplate(shortener, options: options) }
        #expect(linkError?.fieldViolations.map(\.field) == ["variants[0].body"])
        #expect(linkError?.fieldViolations.first?.description.contains("[link_shortener]") == true)

        // SHAFT words only warn; the template is saved.
        let shaft = try await f.templates.createTemplate(
            Self.create("Closing gift", .followUp, .en, ["We bring a bottle of wine to every closing!"]), options: options)
        #expect(shaft.variants[0].findings.map(\.code) == ["shaft_content"])
        #expect(shaft.variants[0].findings[0].severity == .warning)

        // The org's brand name written out satisfies the brand rule.
        let literal = try await f.templates.createTemplate(
            Self.create("Literal brand", .initial, .en, ["Sunbelt Land Co here: sell your land? Reply STOP to opt out."]), options: options)
        #expect(literal.variants[0].findings.isEmpty)
    }

    @Test func theOrgDecidesWhetherOptOutLanguageIsRequired() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org()
        #expect(try await f.orgs.getOrg(GetOrgRequest(), options: options).settings?.requireOptOutLanguage == true)
        let request = Self.create("Soft opener", .initial, .en, ["{brand}: would you sell your land near {property_city|you}?"])
        #expect(await status { try await f.templates.createTemplate(request, options: options) } == .invalidArgument)

        var update = UpdateOrgSettingsRequest()
        update.settings = OrgSettings()
        update.settings?.requireOptOutLanguage = false
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["require_opt_out_language"]
        #expect(try await f.orgs.updateOrgSettings(update, options: options).settings?.requireOptOutLanguage == false)
        let saved = try await f.templates.createTemplate(request, options: options)
        #expect(saved.variants[0].findings.map(\.code) == ["missing_opt_out"])
        #expect(saved.variants[0].findings[0].severity == .warning)

        update.settings?.requireOptOutLanguage = true
        _ = try await f.orgs.updateOrgSettings(update, options: options)
        var second = request
        second.name = "Soft opener 2"
        #expect(await status { try await f.templates.createTemplate(second, options: options) } == .invalidArgument)
        // Reads show the finding as an error again.
        var get = GetTemplateRequest()
        get.templateID = saved.id
        #expect(try await f.templates.getTemplate(get, options: options).variants[0].findings.first?.severity == .error)
    }

    @Test func updatesKeepSentVariantsAndRecordBodyEdits() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (org, options) = try await f.org()
        let created = try await f.templates.createTemplate(
            Self.create("Follow-up", .followUp, .en, ["Still thinking it over? - {brand}", "Any news on your land? - {brand}"]),
            options: options)
        let sent = created.variants[0]
        // The dispatcher counts sends and replies on the variant row.
        try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.execute(
                "UPDATE template_variants SET send_count = 41, reply_count = 6, last_sent_at = now() WHERE id = \(UUIDText(sent.id)!)")
        }

        var update = UpdateTemplateRequest()
        update.templateID = created.id
        update.name = "Follow-up (renamed)"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["name"]
        var edit = TemplateVariantEdit()
        edit.variantID = sent.id
        edit.body = "Still thinking it over, {first_name|friend}? - {brand}"
        var disable = TemplateVariantEdit()
        disable.variantID = created.variants[1].id
        disable.enabled = false
        var add = TemplateVariantEdit()
        add.body = "Happy to answer questions about selling. - {brand}"
        update.variants = [edit, disable, add]
        let updated = try await f.templates.updateTemplate(update, options: options)
        #expect(updated.name == "Follow-up (renamed)")
        #expect(updated.variants.map(\.position) == [1, 2, 3])
        #expect(updated.variants[0].id == sent.id)
        #expect(updated.variants[0].revision == 2 && updated.variants[0].bodyUpdateTime != nil)
        #expect(updated.variants[0].sendCount == 41 && updated.variants[0].replyCount == 6 && updated.variants[0].lastSentTime != nil)
        #expect(updated.variants[1].enabled == false && updated.variants[1].revision == 1)
        #expect(updated.variants[2].body == add.body && updated.variants[2].enabled)

        let audit = try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.query(
                """
                SELECT metadata->>'previous_body' AS previous, metadata->>'send_count' AS sends FROM audit_events
                WHERE action = 'template.variant_body_edit' AND target_id = \(sent.id)
                """
            ).one()
        }
        #expect(try audit.decode("previous", as: String.self) == "Still thinking it over? - {brand}")
        #expect(try audit.decode("sends", as: String.self) == "41")

        // An edit with an unknown variable names the edit's position in the request.
        var typo = UpdateTemplateRequest()
        typo.templateID = created.id
        var bad = TemplateVariantEdit()
        bad.variantID = sent.id
        bad.enabled = true
        var badBody = TemplateVariantEdit()
        badBody.variantID = created.variants[1].id
        badBody.body = "Hi {owner}"
        typo.variants = [bad, badBody]
        let typoError = await Self.failure { try await f.templates.updateTemplate(typo, options: options) }
        #expect(typoError?.fieldViolations.map(\.field) == ["variants[1].body"])
        #expect(typoError?.fieldViolations.first?.description.contains("{owner} at character 4") == true)

        // Every variant disabled is refused; so is recategorising into rules the bodies break.
        var none = UpdateTemplateRequest()
        none.templateID = created.id
        var off0 = TemplateVariantEdit()
        off0.variantID = updated.variants[0].id
        off0.enabled = false
        var off2 = TemplateVariantEdit()
        off2.variantID = updated.variants[2].id
        off2.enabled = false
        none.variants = [off0, off2]
        #expect(await status { try await f.templates.updateTemplate(none, options: options) } == .invalidArgument)
        var recategorise = UpdateTemplateRequest()
        recategorise.templateID = created.id
        recategorise.category = .initial
        recategorise.updateMask = Google_Protobuf_FieldMask()
        recategorise.updateMask?.paths = ["category"]
        let recategoriseError = await Self.failure { try await f.templates.updateTemplate(recategorise, options: options) }
        #expect(recategoriseError?.fieldViolations.map(\.field) == ["category", "category"])
        #expect(recategoriseError?.fieldViolations.first?.description.contains("[missing_opt_out]") == true)

        // Nothing of the refused updates was written.
        var get = GetTemplateRequest()
        get.templateID = created.id
        let after = try await f.templates.getTemplate(get, options: options)
        #expect(after.category == .followUp && after.variants.map(\.enabled) == [true, false, true])
        #expect(after.variants[1].body == "Any news on your land? - {brand}")
    }

    @Test func listFiltersPagesAndArchives() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org()
        let a = try await f.templates.createTemplate(
            Self.create("A opener", .initial, .en, ["{brand}: sell your land? Reply STOP to opt out."]), options: options)
        _ = try await f.templates.createTemplate(
            Self.create("B apertura", .initial, .es, ["{brand}: ¿vende su terreno? Responda ALTO para no recibir más mensajes."]),
            options: options)
        _ = try await f.templates.createTemplate(Self.create("C nudge", .followUp, .en, ["Any thoughts? - {brand}"]), options: options)
        #expect(
            await status { try await f.templates.createTemplate(Self.create("C nudge", .followUp, .en, ["Again?"]), options: options) }
                == .alreadyExists)

        var page = ListTemplatesRequest()
        page.page = PageRequest()
        page.page?.pageSize = 2
        let first = try await f.templates.listTemplates(page, options: options)
        #expect(first.templates.map(\.name) == ["A opener", "B apertura"])
        page.page?.pageToken = first.page?.nextPageToken ?? ""
        let second = try await f.templates.listTemplates(page, options: options)
        #expect(second.templates.map(\.name) == ["C nudge"] && second.page?.nextPageToken == "")

        var spanish = ListTemplatesRequest()
        spanish.language = .es
        #expect(try await f.templates.listTemplates(spanish, options: options).templates.map(\.name) == ["B apertura"])
        var followUps = ListTemplatesRequest()
        followUps.category = .followUp
        #expect(try await f.templates.listTemplates(followUps, options: options).templates.map(\.name) == ["C nudge"])

        var archive = ArchiveTemplateRequest()
        archive.templateID = a.id
        let archived = try await f.templates.archiveTemplate(archive, options: options)
        #expect(archived.archived && archived.archiveTime != nil)
        #expect(try await f.templates.archiveTemplate(archive, options: options).archiveTime == archived.archiveTime)
        #expect(try await f.templates.listTemplates(ListTemplatesRequest(), options: options).templates.count == 2)
        var all = ListTemplatesRequest()
        all.includeArchived = true
        #expect(try await f.templates.listTemplates(all, options: options).templates.count == 3)
        var rename = UpdateTemplateRequest()
        rename.templateID = a.id
        rename.name = "A renamed"
        rename.updateMask = Google_Protobuf_FieldMask()
        rename.updateMask?.paths = ["name"]
        #expect(await status { try await f.templates.updateTemplate(rename, options: options) } == .failedPrecondition)
        var restore = RestoreTemplateRequest()
        restore.templateID = a.id
        #expect(try await f.templates.restoreTemplate(restore, options: options).archived == false)
        #expect(try await f.templates.updateTemplate(rename, options: options).name == "A renamed")

        var badToken = ListTemplatesRequest()
        badToken.page = PageRequest()
        badToken.page?.pageToken = "not a token"
        #expect(await status { try await f.templates.listTemplates(badToken, options: options) } == .invalidArgument)
    }

    @Test func rotationStatsShowOnReads() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (org, options) = try await f.org()
        let created = try await f.templates.createTemplate(
            Self.create("Stats", .followUp, .en, ["One - {brand}", "Two - {brand}"]), options: options)
        try await f.env.store.withTransaction(tenant: org.orgID) { tx in
            try await tx.execute(
                """
                UPDATE template_variants SET send_count = 120, reply_count = 9, last_sent_at = '2026-11-20T15:00:00Z'
                WHERE id = \(UUIDText(created.variants[1].id)!)
                """)
        }
        let listed = try await f.templates.listTemplates(ListTemplatesRequest(), options: options).templates[0]
        #expect(listed.variants.map(\.sendCount) == [0, 120])
        #expect(listed.variants.map(\.replyCount) == [0, 9])
        #expect(listed.variants[0].lastSentTime == nil)
        #expect(listed.variants[1].lastSentTime?.seconds == 1_795_186_800)
    }

    /// A lead of `org` with no first name, written as the lead importer would.
    static func insertLead(_ env: IdentityEnvironment, org: OrgID) async throws -> String {
        try await env.store.withTransaction(tenant: org) { tx in
            let id = try await tx.query(
                """
                INSERT INTO leads (org_id, last_name, owner_name, county, property_state, property_city, property_address, acreage, apn)
                VALUES (\(org), 'Núñez', 'Rosa Núñez', 'Travis', 'TX', 'Bastrop', '1234 County Road 210', 12.5, 'R0123456')
                RETURNING id::text
                """
            ).one().decode(0, as: String.self)
            try await tx.execute(
                """
                INSERT INTO lead_phones (org_id, lead_id, position, phone) VALUES
                    (\(org), \(UUIDText(id)!), 2, '+15125550199'), (\(org), \(UUIDText(id)!), 1, '+15125550123')
                """)
            return id
        }
    }

    @Test func previewAgainstARealLeadShowsFallbacksAndCost() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (org, options) = try await f.org(brand: "Sunbelt Land Co")
        let leadID = try await Self.insertLead(f.env, org: org.orgID)
        let created = try await f.templates.createTemplate(
            Self.create(
                "Preview", .initial, .en,
                [
                    "Hi {first_name|there}, {brand} here about your {acreage} acres in {county} County (APN {apn}). Reply STOP to opt out.",
                    "{full_name|Hello}, {agent_name} at {brand}: is {phone} still the best number? Reply STOP to opt out.",
                ]), options: options)

        var preview = PreviewTemplateRequest()
        preview.templateID = created.id
        preview.leadID = leadID
        let all = try await f.templates.previewTemplate(preview, options: options)
        #expect(all.variants.count == 2)
        #expect(
            all.variants[0].text
                == "Hi there, Sunbelt Land Co here about your 12.5 acres in Travis County (APN R0123456). Reply STOP to opt out.")
        #expect(all.variants[0].fallbackVariables == ["first_name"] && all.variants[0].emptyVariables.isEmpty)
        #expect(all.variants[0].segments?.encoding == .gsm7 && all.variants[0].segments?.segments == 1)
        // The owner's name carries ú: that preview travels as UCS-2 and says why.
        #expect(all.variants[1].text == "Rosa Núñez, at Sunbelt Land Co: is (512) 555-0123 still the best number? Reply STOP to opt out.")
        #expect(all.variants[1].emptyVariables == ["agent_name"])
        #expect(all.variants[1].segments?.encoding == .ucs2 && all.variants[1].segments?.ucs2Characters == ["ú"])
        #expect(all.variants[1].segments?.segments == 2)
        #expect(all.values["phone"] == "(512) 555-0123" && all.values["county"] == "Travis" && all.values["brand"] == "Sunbelt Land Co")
        #expect(all.values["first_name"] == nil)

        // One variant, with a sample value overriding the lead.
        preview.variantID = created.variants[0].id
        preview.values = ["first_name": "Rosa"]
        let one = try await f.templates.previewTemplate(preview, options: options)
        #expect(one.variants.map(\.variantID) == [created.variants[0].id])
        #expect(one.variants[0].text.hasPrefix("Hi Rosa, Sunbelt Land Co") && one.variants[0].fallbackVariables.isEmpty)

        // Samples only, no lead.
        var samples = PreviewTemplateRequest()
        samples.templateID = created.id
        samples.variantID = created.variants[0].id
        samples.values = ["county": "Polk", "acreage": "40", "apn": "P-77"]
        let sampled = try await f.templates.previewTemplate(samples, options: options)
        #expect(
            sampled.variants[0].text
                == "Hi there, Sunbelt Land Co here about your 40 acres in Polk County (APN P-77). Reply STOP to opt out.")

        samples.values = ["favourite_color": "blue"]
        let unknown = await Self.failure { try await f.templates.previewTemplate(samples, options: options) }
        #expect(unknown?.fieldViolations.map(\.field) == ["values[\"favourite_color\"]"])
        var missingLead = PreviewTemplateRequest()
        missingLead.templateID = created.id
        missingLead.leadID = UUID().uuidString.lowercased()
        #expect(await status { try await f.templates.previewTemplate(missingLead, options: options) } == .notFound)
        missingLead.leadID = ""
        missingLead.variantID = UUID().uuidString.lowercased()
        #expect(await status { try await f.templates.previewTemplate(missingLead, options: options) } == .notFound)
    }

    @Test func starterLibraryInstallsOnceAndIsLintClean() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, options) = try await f.org()
        // The org already has its own template under one of the library's names.
        _ = try await f.templates.createTemplate(
            Self.create("Starter: STOP confirmation (ES)", .stop, .es, ["{brand}: no recibirá más mensajes."]), options: options)

        var spanishOnly = InstallStarterLibraryRequest()
        spanishOnly.languages = [.es]
        let es = try await f.templates.installStarterLibrary(spanishOnly, options: options)
        #expect(es.installed.allSatisfy { $0.language == .es })
        #expect(es.nameConflicts == ["Starter: STOP confirmation (ES)"])

        let first = try await f.templates.installStarterLibrary(InstallStarterLibraryRequest(), options: options)
        #expect(first.installed.allSatisfy { $0.language == .en })
        #expect(first.installed.count == StarterLibrary.english.count)
        #expect(first.alreadyInstalled == Int32(es.installed.count))
        let variants = first.installed.flatMap(\.variants) + es.installed.flatMap(\.variants)
        #expect(variants.count == StarterLibrary.entries.reduce(0) { $0 + $1.variants.count } - StarterLibrary.spanish.last!.variants.count)
        // Lint-clean as the server sees it, with this org's brand.
        #expect(variants.allSatisfy { $0.findings.allSatisfy { $0.severity == .warning && $0.code == "ucs2" } })
        #expect(first.installed.flatMap(\.variants).allSatisfy { $0.segments?.encoding == .gsm7 && $0.findings.isEmpty })
        #expect(first.summary.hasPrefix("installed \(first.installed.count) templates"))

        // Rename and archive one copy: a second install still adds nothing, and says so.
        var rename = UpdateTemplateRequest()
        rename.templateID = first.installed[0].id
        rename.name = "Our opener"
        rename.updateMask = Google_Protobuf_FieldMask()
        rename.updateMask?.paths = ["name"]
        _ = try await f.templates.updateTemplate(rename, options: options)
        var archive = ArchiveTemplateRequest()
        archive.templateID = first.installed[1].id
        _ = try await f.templates.archiveTemplate(archive, options: options)
        let again = try await f.templates.installStarterLibrary(InstallStarterLibraryRequest(), options: options)
        #expect(again.installed.isEmpty)
        #expect(again.alreadyInstalled == Int32(StarterLibrary.entries.count - 1))
        #expect(again.nameConflicts == ["Starter: STOP confirmation (ES)"])
        #expect(again.summary.contains("nothing was added"))
        var all = ListTemplatesRequest()
        all.includeArchived = true
        #expect(try await f.templates.listTemplates(all, options: options).templates.count == StarterLibrary.entries.count)

        // A fresh org gets the whole library, and a repeat says it is already installed.
        let (_, other) = try await f.org(brand: "Mesa Land Partners")
        let fresh = try await f.templates.installStarterLibrary(InstallStarterLibraryRequest(), options: other)
        #expect(fresh.installed.count == StarterLibrary.entries.count && fresh.nameConflicts.isEmpty)
        let repeatInstall = try await f.templates.installStarterLibrary(InstallStarterLibraryRequest(), options: other)
        #expect(repeatInstall.installed.isEmpty && repeatInstall.summary == "the starter library is already installed; nothing was added")
    }

    @Test func viewersReadAndPreviewButDoNotWrite() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (_, owner) = try await f.org()
        let created = try await f.templates.createTemplate(
            Self.create("Viewer check", .followUp, .en, ["Any news on your land? - {brand}"]), options: owner)
        var user = CreateUserRequest()
        user.email = "viewer-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        user.password = "viewer password 123"
        user.role = .viewer
        _ = try await UserService.Client(channel: f.channel).createUser(user, options: owner)
        let viewer = bearer(try await f.env.login(user.email, user.password).accessToken)

        #expect(try await f.templates.listTemplates(ListTemplatesRequest(), options: viewer).templates.map(\.id) == [created.id])
        var preview = PreviewTemplateRequest()
        preview.templateID = created.id
        #expect(try await f.templates.previewTemplate(preview, options: viewer).variants.count == 1)
        let create = Self.create("Viewer's", .followUp, .en, ["Hello - {brand}"])
        #expect(await status { try await f.templates.createTemplate(create, options: viewer) } == .permissionDenied)
        #expect(
            await status { try await f.templates.installStarterLibrary(InstallStarterLibraryRequest(), options: viewer) }
                == .permissionDenied)
        var archive = ArchiveTemplateRequest()
        archive.templateID = created.id
        #expect(await status { try await f.templates.archiveTemplate(archive, options: viewer) } == .permissionDenied)
    }

    @Test func otherOrgsCannotReadUpdateOrPreview() async throws {
        let f = try await Self.fixture()
        defer { Task { await f.close() } }
        let (orgA, a) = try await f.org()
        let (orgB, b) = try await f.org()
        let leadA = try await Self.insertLead(f.env, org: orgA.orgID)
        let leadB = try await Self.insertLead(f.env, org: orgB.orgID)
        let templateA = try await f.templates.createTemplate(
            Self.create("A's", .initial, .en, ["{brand}: Hi {first_name|there}. Reply STOP to opt out."]), options: a)
        let templateB = try await f.templates.createTemplate(
            Self.create("B's", .initial, .en, ["{brand}: Hello {first_name|there}. Reply STOP to opt out."]), options: b)

        var get = GetTemplateRequest()
        get.templateID = templateA.id
        #expect(await status { try await f.templates.getTemplate(get, options: b) } == .notFound)
        var update = UpdateTemplateRequest()
        update.templateID = templateA.id
        update.name = "Hijacked"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["name"]
        #expect(await status { try await f.templates.updateTemplate(update, options: b) } == .notFound)
        // B's template with A's variant id: not found either.
        var crossVariant = UpdateTemplateRequest()
        crossVariant.templateID = templateB.id
        var edit = TemplateVariantEdit()
        edit.variantID = templateA.variants[0].id
        edit.body = "Hijacked {brand}. Reply STOP to opt out."
        crossVariant.variants = [edit]
        #expect(await status { try await f.templates.updateTemplate(crossVariant, options: b) } == .notFound)
        var archive = ArchiveTemplateRequest()
        archive.templateID = templateA.id
        #expect(await status { try await f.templates.archiveTemplate(archive, options: b) } == .notFound)
        var restore = RestoreTemplateRequest()
        restore.templateID = templateA.id
        #expect(await status { try await f.templates.restoreTemplate(restore, options: b) } == .notFound)
        var preview = PreviewTemplateRequest()
        preview.templateID = templateA.id
        #expect(await status { try await f.templates.previewTemplate(preview, options: b) } == .notFound)
        // B previewing its own template with A's lead: the lead is not there.
        preview.templateID = templateB.id
        preview.leadID = leadA
        #expect(await status { try await f.templates.previewTemplate(preview, options: b) } == .notFound)
        preview.leadID = leadB
        #expect(try await f.templates.previewTemplate(preview, options: b).values["county"] == "Travis")

        #expect(try await f.templates.listTemplates(ListTemplatesRequest(), options: b).templates.map(\.id) == [templateB.id])
        let stillA = try await f.templates.getTemplate(get, options: a)
        #expect(stillA.name == "A's" && stillA.variants[0].body == templateA.variants[0].body && !stillA.archived)
    }
}
