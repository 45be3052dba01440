import Foundation
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// TemplateService: templates with rotating variants. Every save parses each body (unknown
/// variables refused with their position), costs it in segments and runs the compliance lint
/// under the org's policy; lint errors on an enabled variant refuse the save.
public struct TemplateServiceImpl: TemplateService.ServiceProtocol {
    let tenancy: Tenancy

    public init(store: Store) { tenancy = Tenancy(store: store) }

    static let maxVariants = 20
    static let maxBodyLength = 1600

    // MARK: Validation

    static func validateName(_ name: String, field: String = "name") -> (String, FieldViolationInput?) {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 100 else { return (name, (field, "must be 1 to 100 characters")) }
        return (name, nil)
    }

    /// Length and variable problems of one body, as field violations on `field`.
    static func bodyViolations(_ body: String, field: String) -> [FieldViolationInput] {
        guard !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, body.count <= maxBodyLength else {
            return [(field, "must be 1 to \(maxBodyLength) characters of text")]
        }
        return TemplateText.problems(in: body).map { (field, $0.message) }
    }

    /// Lint errors of an enabled variant, as field violations that name the rule.
    static func lintViolations(_ analysis: TemplateRecords.Analysis, field: String, label: String? = nil) -> [FieldViolationInput] {
        analysis.errors.map { (field, (label.map { "\($0): " } ?? "") + "\($0.message) [\($0.code)]") }
    }

    // MARK: Create

    public func createTemplate(request: CreateTemplateRequest, context: ServerContext) async throws -> Template {
        var violations: [FieldViolationInput] = []
        let (name, nameProblem) = Self.validateName(request.name)
        if let nameProblem { violations.append(nameProblem) }
        let category = TemplateRecords.databaseName(request.category)
        if category == nil { violations.append(("category", TemplateRecords.categoryFix)) }
        let language = TemplateRecords.databaseName(request.language)
        if language == nil { violations.append(("language", TemplateRecords.languageFix)) }
        if request.variants.isEmpty || request.variants.count > Self.maxVariants {
            violations.append(("variants", "give 1 to \(Self.maxVariants) variants, each with a body"))
        }
        for (i, variant) in request.variants.enumerated() {
            violations += Self.bodyViolations(variant.body, field: "variants[\(i)].body")
        }
        try throwIfInvalid(violations)
        return try await tenancy.transaction(context) { tx, principal in
            let policy = try await TemplateRecords.policy(tx, orgID: principal.orgID)
            var lint: [FieldViolationInput] = []
            for (i, variant) in request.variants.enumerated() {
                let analysis = TemplateRecords.Analysis(body: variant.body, category: request.category, policy: policy)
                lint += Self.lintViolations(analysis, field: "variants[\(i)].body")
            }
            try throwIfInvalid(lint)
            let id = try await Self.insert(
                tx, orgID: principal.orgID, name: name, category: category!, language: language!, libraryKey: nil,
                bodies: request.variants.map(\.body))
            guard let id else {
                throw DomainError(.alreadyExists, "name: a template named \"\(name)\" already exists; choose another name")
            }
            try await Audit.record(
                tx, principal, action: "template.create", targetType: "template", targetID: id.text,
                details: .object([
                    ("name", .string(name)), ("category", .string(category!)), ("variants", .number(String(request.variants.count))),
                ]))
            return try await TemplateRecords.load(tx, id: id, policy: policy)
        }
    }

    /// Inserts a template and its variants; nil when the name (or library key) is already taken.
    static func insert(
        _ tx: Transaction, orgID: OrgID, name: String, category: String, language: String, libraryKey: String?, bodies: [String]
    )
        async throws -> UUIDText?
    {
        guard
            let row = try await tx.query(
                """
                INSERT INTO templates (org_id, name, category, language, library_key)
                VALUES (\(orgID), \(name), \(category), \(language), \(libraryKey))
                ON CONFLICT DO NOTHING RETURNING id::text AS id
                """
            ).firstRow
        else { return nil }
        let id = UUIDText(try row.decode("id", as: String.self))!
        try await tx.execute(
            """
            INSERT INTO template_variants (org_id, template_id, position, body)
            SELECT \(orgID), \(id), b.position, b.body
            FROM unnest(\(bodies)::text[]) WITH ORDINALITY AS b(body, position)
            """)
        return id
    }

    // MARK: Read

    public func getTemplate(request: GetTemplateRequest, context: ServerContext) async throws -> Template {
        let id = try IdentityRecords.id(request.templateID, field: "template_id")
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            try await TemplateRecords.load(tx, id: id, policy: try await TemplateRecords.policy(tx, orgID: principal.orgID))
        }
    }

    public func listTemplates(request: ListTemplatesRequest, context: ServerContext) async throws -> ListTemplatesResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        if let cursor, UUIDText(cursor.id) == nil { throw PageCursor.invalidToken() }
        var filters: [SQL] = []
        if request.category != .unspecified {
            guard let category = TemplateRecords.databaseName(request.category) else {
                throw DomainError.invalid("category", TemplateRecords.categoryFix + ", or leave it unspecified for all")
            }
            filters.append("t.category = \(category)")
        }
        if request.language != .unspecified {
            guard let language = TemplateRecords.databaseName(request.language) else {
                throw DomainError.invalid("language", TemplateRecords.languageFix + ", or leave it unspecified for both")
            }
            filters.append("t.language = \(language)")
        }
        if !request.includeArchived { filters.append("t.archived_at IS NULL") }
        if let cursor { filters.append("(t.name, t.id) > (\(cursor.sortKey), \(UUIDText(cursor.id)))") }
        let whereClause: SQL = filters.isEmpty ? "" : "WHERE \(SQL.join(filters, separator: " AND "))"
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let policy = try await TemplateRecords.policy(tx, orgID: principal.orgID)
            let rows = try await tx.query(
                "SELECT \(unsafeRaw: TemplateRecords.templateColumns) FROM templates t \(whereClause) ORDER BY t.name, t.id LIMIT \(PageCursor.fetchLimit(size))"
            )
            var response = ListTemplatesResponse()
            let page = KeysetPage(rows, size: size)
            response.templates = try await TemplateRecords.templates(tx, rows: page.rows, policy: policy)
            response.page = page.info(last: response.templates.last) { PageCursor(sortKey: $0.name, id: $0.id) }
            return response
        }
    }

    // MARK: Update

    public func updateTemplate(request: UpdateTemplateRequest, context: ServerContext) async throws -> Template {
        let id = try IdentityRecords.id(request.templateID, field: "template_id")
        let paths = request.updateMask?.paths ?? []
        guard !paths.isEmpty || !request.variants.isEmpty else {
            throw DomainError.invalid("update_mask", "name what to change (name, category, language) or give variant edits in `variants`")
        }
        var violations: [FieldViolationInput] = []
        var assignments: [SQL] = []
        for path in paths {
            switch path {
            case "name":
                let (name, problem) = Self.validateName(request.name)
                if let problem { violations.append(problem) }
                assignments.append("name = \(name)")
            case "category":
                if let category = TemplateRecords.databaseName(request.category) {
                    assignments.append("category = \(category)")
                } else {
                    violations.append(("category", TemplateRecords.categoryFix))
                }
            case "language":
                if let language = TemplateRecords.databaseName(request.language) {
                    assignments.append("language = \(language)")
                } else {
                    violations.append(("language", TemplateRecords.languageFix))
                }
            default:
                violations.append(
                    ("update_mask", "\"\(path)\" cannot be changed here; use name, category or language (variants go in `variants`)"))
            }
        }
        if request.variants.count > Self.maxVariants {
            violations.append(("variants", "at most \(Self.maxVariants) edits per call"))
        }
        var editIDs: [UUIDText?] = []
        for (i, edit) in request.variants.enumerated() {
            let field = "variants[\(i)]"
            var editID: UUIDText?
            if !edit.variantID.isEmpty {
                editID = UUIDText(edit.variantID)
                if editID == nil { violations.append(("\(field).variant_id", "must be a variant id (UUID) as returned by this API")) }
            } else if edit.body == nil {
                violations.append(("\(field).body", "a new variant (no variant_id) needs a body"))
            }
            if !edit.variantID.isEmpty, edit.body == nil, edit.enabled == nil {
                violations.append((field, "set body and/or enabled to change this variant"))
            }
            if let body = edit.body { violations += Self.bodyViolations(body, field: "\(field).body") }
            editIDs.append(editID)
        }
        let duplicates = Dictionary(grouping: editIDs.compactMap { $0?.text.lowercased() }, by: { $0 }).filter { $0.value.count > 1 }.keys
        for duplicate in duplicates.sorted() {
            violations.append(("variants", "variant \(duplicate) appears more than once; combine its edits"))
        }
        try throwIfInvalid(violations)

        return try await tenancy.transaction(context) { tx, principal in
            let policy = try await TemplateRecords.policy(tx, orgID: principal.orgID)
            let current = try await TemplateRecords.load(tx, id: id, policy: policy, forUpdate: true)
            guard !current.archived else {
                throw DomainError.failedPrecondition(
                    "template \(current.id) is archived; restore it with RestoreTemplate before changing it")
            }
            let category = paths.contains("category") ? request.category : current.category
            var final = current.variants
            var touched: Set<Int> = []  // indexes into `final` that this request saves
            var requestIndex: [Int: Int] = [:]  // final index -> index in request.variants
            var bodyEdits: [(variant: TemplateVariant, previous: String)] = []
            for (i, edit) in request.variants.enumerated() {
                if let editID = editIDs[i] {
                    guard let at = final.firstIndex(where: { $0.id.lowercased() == editID.text.lowercased() }) else {
                        throw DomainError.notFound("variant", "\(edit.variantID) of template \(current.id)")
                    }
                    if let body = edit.body, body != final[at].body {
                        bodyEdits.append((final[at], final[at].body))
                        final[at].body = body
                    }
                    if let enabled = edit.enabled { final[at].enabled = enabled }
                    touched.insert(at)
                    requestIndex[at] = i
                } else {
                    var added = TemplateVariant()
                    added.body = edit.body ?? ""
                    added.enabled = edit.enabled ?? true
                    final.append(added)
                    touched.insert(final.count - 1)
                    requestIndex[final.count - 1] = i
                }
            }
            guard final.count <= Self.maxVariants else {
                throw DomainError.invalid("variants", "a template holds at most \(Self.maxVariants) variants; disable or reuse one")
            }
            guard final.contains(where: \.enabled) else {
                throw DomainError.invalid("variants", "at least one variant must stay enabled; archive the template to stop using it")
            }
            // Recategorising re-saves every variant; otherwise only the ones this request edits.
            let recategorised = paths.contains("category") && category != current.category
            var lint: [FieldViolationInput] = []
            for (at, variant) in final.enumerated() where variant.enabled && (recategorised || touched.contains(at)) {
                let analysis = TemplateRecords.Analysis(body: variant.body, category: category, policy: policy)
                if let i = requestIndex[at] {
                    lint += Self.lintViolations(analysis, field: "variants[\(i)].body")
                } else {
                    lint += Self.lintViolations(analysis, field: "category", label: "variant \(variant.position) (\(variant.id))")
                }
            }
            try throwIfInvalid(lint)

            if !assignments.isEmpty {
                try await tx.execute("UPDATE templates t SET \(SQL.join(assignments, separator: ", ")) WHERE t.id = \(id)")
            } else {
                try await tx.execute("UPDATE templates t SET updated_at = now() WHERE t.id = \(id)")
            }
            var nextPosition = (current.variants.map(\.position).max() ?? 0) + 1
            for (at, variant) in final.enumerated() where touched.contains(at) {
                if variant.id.isEmpty {
                    try await tx.execute(
                        """
                        INSERT INTO template_variants (org_id, template_id, position, body, enabled)
                        VALUES (\(principal.orgID), \(id), \(Int(nextPosition)), \(variant.body), \(variant.enabled))
                        """)
                    nextPosition += 1
                } else {
                    let edited = bodyEdits.contains { $0.variant.id == variant.id }
                    let bodyChange: SQL = edited ? ", body = \(variant.body), revision = v.revision + 1, body_updated_at = now()" : ""
                    try await tx.execute(
                        "UPDATE template_variants v SET enabled = \(variant.enabled) \(bodyChange) WHERE v.id = \(UUIDText(variant.id)!)")
                }
            }
            for edit in bodyEdits {
                // The text that earned the variant's counts so far, for reports and disputes.
                try await Audit.record(
                    tx, principal, action: "template.variant_body_edit", targetType: "template_variant", targetID: edit.variant.id,
                    details: .object([
                        ("template_id", .string(current.id)), ("previous_body", .string(edit.previous)),
                        ("previous_revision", .number(String(edit.variant.revision))),
                        ("send_count", .number(String(edit.variant.sendCount))), ("reply_count", .number(String(edit.variant.replyCount))),
                    ]))
            }
            try await Audit.record(
                tx, principal, action: "template.update", targetType: "template", targetID: current.id,
                details: .object([("paths", .array(paths.map { .string($0) })), ("variant_edits", .number(String(request.variants.count)))])
            )
            return try await TemplateRecords.load(tx, id: id, policy: policy)
        }
    }

    // MARK: Archive

    public func archiveTemplate(request: ArchiveTemplateRequest, context: ServerContext) async throws -> Template {
        try await setArchived(true, idText: request.templateID, context: context)
    }

    public func restoreTemplate(request: RestoreTemplateRequest, context: ServerContext) async throws -> Template {
        try await setArchived(false, idText: request.templateID, context: context)
    }

    func setArchived(_ archived: Bool, idText: String, context: ServerContext) async throws -> Template {
        let id = try IdentityRecords.id(idText, field: "template_id")
        return try await tenancy.transaction(context) { tx, principal in
            let value: SQL = archived ? "coalesce(t.archived_at, now())" : "NULL"
            guard try await tx.execute("UPDATE templates t SET archived_at = \(value) WHERE t.id = \(id)") > 0 else {
                throw DomainError.notFound("template", idText)
            }
            try await Audit.record(
                tx, principal, action: archived ? "template.archive" : "template.restore", targetType: "template", targetID: id.text)
            return try await TemplateRecords.load(tx, id: id, policy: try await TemplateRecords.policy(tx, orgID: principal.orgID))
        }
    }

    // MARK: Preview

    public func previewTemplate(request: PreviewTemplateRequest, context: ServerContext) async throws -> PreviewTemplateResponse {
        var violations: [FieldViolationInput] = []
        let id = UUIDText(request.templateID)
        if id == nil { violations.append(("template_id", "must be an id (UUID) as returned by this API")) }
        let variantID = request.variantID.isEmpty ? nil : UUIDText(request.variantID)
        if !request.variantID.isEmpty, variantID == nil {
            violations.append(("variant_id", "must be a variant id (UUID), or empty for all"))
        }
        let leadID = request.leadID.isEmpty ? nil : UUIDText(request.leadID)
        if !request.leadID.isEmpty, leadID == nil {
            violations.append(("lead_id", "must be a lead id (UUID), or empty to use only values"))
        }
        for (name, value) in request.values.sorted(by: { $0.key < $1.key }) {
            if !TemplateText.knownVariables.contains(name) {
                violations.append(
                    ("values[\"\(name)\"]", "is not a variable; use one of \(TemplateText.knownVariables.sorted().joined(separator: ", "))")
                )
            } else if value.count > 500 {
                violations.append(("values[\"\(name)\"]", "must be at most 500 characters"))
            }
        }
        try throwIfInvalid(violations)
        return try await tenancy.transaction(context, readOnly: true) { tx, principal in
            let policy = try await TemplateRecords.policy(tx, orgID: principal.orgID)
            let template = try await TemplateRecords.load(tx, id: id!, policy: policy)
            var variants = template.variants
            if let variantID {
                variants = variants.filter { $0.id.lowercased() == variantID.text.lowercased() }
                guard !variants.isEmpty else { throw DomainError.notFound("variant", "\(request.variantID) of template \(template.id)") }
            }
            var values: [String: String] = [:]
            if let leadID {
                guard let lead = try await LeadTemplateValues.load(tx, leadID: leadID) else {
                    throw DomainError.notFound("lead", request.leadID)
                }
                values = lead
            }
            if let brand = policy.brandName { values["brand"] = brand }
            for (name, value) in request.values { values[name] = value }
            var response = PreviewTemplateResponse()
            response.values = values.filter { !$0.value.trimmed(" ").isEmpty }
            response.variants = variants.map { variant in
                var preview = VariantPreview()
                preview.variantID = variant.id
                preview.position = variant.position
                preview.enabled = variant.enabled
                if let text = try? TemplateText(parsing: variant.body) {
                    let rendering = text.rendering(values)
                    preview.text = rendering.text
                    preview.fallbackVariables = rendering.fellBack
                    preview.emptyVariables = rendering.empty
                } else {
                    preview.text = variant.body
                }
                preview.segments = TemplateRecords.segmentInfo(MessageEncoding(preview.text))
                return preview
            }
            return response
        }
    }

    // MARK: Starter library

    public func installStarterLibrary(request: InstallStarterLibraryRequest, context: ServerContext) async throws
        -> InstallStarterLibraryResponse
    {
        var languages: Set<Language> = [.en, .es]
        if !request.languages.isEmpty {
            for (i, language) in request.languages.enumerated() where TemplateRecords.databaseName(language) == nil {
                throw DomainError.invalid("languages[\(i)]", TemplateRecords.languageFix)
            }
            languages = Set(request.languages)
        }
        let entries = StarterLibrary.entries.filter { languages.contains($0.language) }
        return try await tenancy.transaction(context) { tx, principal in
            let policy = try await TemplateRecords.policy(tx, orgID: principal.orgID)
            var response = InstallStarterLibraryResponse()
            var installedIDs: [UUIDText] = []
            var variantCount = 0
            for entry in entries {
                if let id = try await Self.insert(
                    tx, orgID: principal.orgID, name: entry.name, category: TemplateRecords.databaseName(entry.category)!,
                    language: TemplateRecords.databaseName(entry.language)!, libraryKey: entry.key, bodies: entry.variants)
                {
                    installedIDs.append(id)
                    variantCount += entry.variants.count
                } else if try await tx.query("SELECT EXISTS (SELECT 1 FROM templates WHERE library_key = \(entry.key)) AS e").one().decode(
                    "e", as: Bool.self)
                {
                    response.alreadyInstalled += 1
                } else {
                    response.nameConflicts.append(entry.name)
                }
            }
            for id in installedIDs { response.installed.append(try await TemplateRecords.load(tx, id: id, policy: policy)) }
            if installedIDs.isEmpty {
                response.summary =
                    response.nameConflicts.isEmpty
                    ? "the starter library is already installed; nothing was added"
                    : "nothing was added: \(response.alreadyInstalled) already installed, \(response.nameConflicts.count) blocked by templates of the same name"
            } else {
                response.summary = "installed \(installedIDs.count) templates (\(variantCount) variants)"
                if response.alreadyInstalled > 0 { response.summary += "; \(response.alreadyInstalled) were already installed" }
                if !response.nameConflicts.isEmpty {
                    response.summary += "; \(response.nameConflicts.count) skipped: the org has templates with the same name"
                }
                try await Audit.record(
                    tx, principal, action: "template.install_starter_library", targetType: "org", targetID: principal.orgID.description,
                    details: .object([
                        ("templates", .array(installedIDs.map { .string($0.text) })), ("variants", .number(String(variantCount))),
                    ]))
            }
            return response
        }
    }
}
