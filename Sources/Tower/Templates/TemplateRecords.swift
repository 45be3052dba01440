import Foundation
import TowerProto
import TowerStore

/// SQL and row mapping for `templates` and `template_variants`, and the per-variant analysis
/// (segments and lint) every read and save returns.
enum TemplateRecords {
    static let templateColumns = """
        t.id::text AS id, t.name, t.category, t.language, t.library_key, \(Timestamps.micros("t.archived_at")) AS archived_us,
        \(Timestamps.micros("t.created_at")) AS created_us, \(Timestamps.micros("t.updated_at")) AS updated_us
        """

    static let variantColumns = """
        v.id::text AS id, v.template_id::text AS template_id, v.position::int AS position, v.body, v.enabled, v.send_count, v.reply_count,
        \(Timestamps.micros("v.last_sent_at")) AS last_sent_us, v.revision, \(Timestamps.micros("v.body_updated_at")) AS body_updated_us,
        \(Timestamps.micros("v.created_at")) AS created_us
        """

    /// A variant row as the service works with it.
    struct Variant: Sendable {
        var id: String
        var templateID: String
        var position: Int
        var body: String
        var enabled: Bool
        var sendCount: Int64
        var replyCount: Int64
        var lastSentMicros: Int64?
        var revision: Int
        var bodyUpdatedMicros: Int64?
        var createdMicros: Int64?

        init(_ row: Row) throws {
            id = try row.decode("id")
            templateID = try row.decode("template_id")
            position = try row.decode("position")
            body = try row.decode("body")
            enabled = try row.decode("enabled")
            sendCount = try row.decode("send_count")
            replyCount = try row.decode("reply_count")
            lastSentMicros = try row.decode("last_sent_us")
            revision = try row.decode("revision")
            bodyUpdatedMicros = try row.decode("body_updated_us")
            createdMicros = try row.decode("created_us")
        }
    }

    // MARK: Enums

    static func databaseName(_ category: TemplateCategory) -> String? {
        switch category {
        case .initial: "initial"
        case .followUp: "follow_up"
        case .reply: "reply"
        case .help: "help"
        case .stop: "stop"
        case .other: "other"
        default: nil
        }
    }

    static func category(_ name: String) -> TemplateCategory {
        switch name {
        case "initial": .initial
        case "follow_up": .followUp
        case "reply": .reply
        case "help": .help
        case "stop": .stop
        case "other": .other
        default: .unspecified
        }
    }

    static func lintCategory(_ category: TemplateCategory) -> ComplianceLint.Category {
        switch category {
        case .initial: .initial
        case .followUp: .followUp
        case .reply: .reply
        case .help: .help
        case .stop: .stop
        default: .other
        }
    }

    static func databaseName(_ language: Language) -> String? {
        switch language {
        case .en: "en"
        case .es: "es"
        default: nil
        }
    }

    static func language(_ name: String) -> Language { name == "es" ? .es : .en }

    static let categoryFix = "choose TEMPLATE_CATEGORY_INITIAL, _FOLLOW_UP, _REPLY, _HELP, _STOP or _OTHER"
    static let languageFix = "choose LANGUAGE_EN or LANGUAGE_ES"

    // MARK: The org's lint policy

    /// The brand recipients see (the org name when no brand is set) and the opt-out switch.
    static func policy(_ tx: Transaction, orgID: OrgID) async throws -> ComplianceLint.Policy {
        let row = try await tx.query(
            "SELECT coalesce(nullif(brand_name, ''), name) AS brand, require_opt_out_language FROM orgs WHERE id = \(orgID)"
        ).one()
        return ComplianceLint.Policy(
            brandName: try row.decode("brand", as: String.self), requireOptOutLanguage: try row.decode("require_opt_out_language"))
    }

    // MARK: Analysis

    /// Segments and lint findings of one body; parse problems when it does not parse (only
    /// possible for bodies saved before a variable was retired).
    struct Analysis: Sendable {
        var problems: [TemplateText.ParseError]
        var encoding: MessageEncoding
        var findings: [ComplianceLint.Finding]

        init(body: String, category: TemplateCategory, policy: ComplianceLint.Policy) {
            problems = TemplateText.problems(in: body)
            guard problems.isEmpty, let text = try? TemplateText(parsing: body) else {
                encoding = MessageEncoding(body)
                findings = []
                return
            }
            encoding = MessageEncoding(text.render(ComplianceLint.sampleValues(brandName: policy.brandName)))
            findings = ComplianceLint.check(text, raw: body, category: lintCategory(category), policy: policy, encoding: encoding)
        }

        var errors: [ComplianceLint.Finding] { findings.filter { $0.severity == .error } }
    }

    static func segmentInfo(_ encoding: MessageEncoding) -> SegmentInfo {
        var info = SegmentInfo()
        info.encoding = encoding.charset == .gsm7 ? .gsm7 : .ucs2
        info.segments = Int32(clamping: encoding.segments)
        info.units = Int32(clamping: encoding.units)
        info.unitsPerSegment = Int32(clamping: encoding.unitsPerSegment)
        info.ucs2Characters = encoding.nonGSMCharacters.map { String($0) }
        return info
    }

    static func finding(_ f: ComplianceLint.Finding) -> LintFinding {
        var out = LintFinding()
        out.severity = f.severity == .error ? .error : .warning
        out.code = f.code
        out.message = f.message
        return out
    }

    static func variant(_ v: Variant, category: TemplateCategory, policy: ComplianceLint.Policy) -> TemplateVariant {
        var out = TemplateVariant()
        out.id = v.id
        out.position = Int32(v.position)
        out.body = v.body
        out.enabled = v.enabled
        out.sendCount = v.sendCount
        out.replyCount = v.replyCount
        out.lastSentTime = Timestamps.proto(micros: v.lastSentMicros)
        out.revision = Int32(clamping: v.revision)
        out.bodyUpdateTime = Timestamps.proto(micros: v.bodyUpdatedMicros)
        out.createTime = Timestamps.proto(micros: v.createdMicros)
        let analysis = Analysis(body: v.body, category: category, policy: policy)
        out.segments = segmentInfo(analysis.encoding)
        out.findings = analysis.findings.map(finding)
        return out
    }

    static func template(_ row: Row, variants: [Variant], policy: ComplianceLint.Policy) throws -> Template {
        var t = Template()
        t.id = try row.decode("id")
        t.name = try row.decode("name")
        t.category = category(try row.decode("category"))
        t.language = language(try row.decode("language"))
        t.libraryKey = try row.decode("library_key", as: String?.self) ?? ""
        let archived = try row.decode("archived_us", as: Int64?.self)
        t.archived = archived != nil
        t.archiveTime = Timestamps.proto(micros: archived)
        t.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        t.updateTime = Timestamps.proto(micros: try row.decode("updated_us", as: Int64?.self))
        t.variants = variants.sorted { $0.position < $1.position }.map { variant($0, category: t.category, policy: policy) }
        return t
    }

    // MARK: Reads

    static func variants(_ tx: Transaction, templateIDs: [String]) async throws -> [String: [Variant]] {
        guard !templateIDs.isEmpty else { return [:] }
        let rows = try await tx.query(
            "SELECT \(unsafeRaw: variantColumns) FROM template_variants v WHERE v.template_id = ANY(\(templateIDs)::uuid[]) ORDER BY v.position"
        )
        return Dictionary(grouping: try rows.map(Variant.init), by: \.templateID)
    }

    /// Templates with their variants, in the order of `rows`.
    static func templates(_ tx: Transaction, rows: some Collection<Row>, policy: ComplianceLint.Policy) async throws -> [Template] {
        let ids = try rows.map { try $0.decode("id", as: String.self) }
        let byTemplate = try await variants(tx, templateIDs: ids)
        return try zip(rows, ids).map { row, id in try template(row, variants: byTemplate[id] ?? [], policy: policy) }
    }

    /// One template of the caller's org (row-level security hides the others), or NOT_FOUND.
    static func load(_ tx: Transaction, id: UUIDText, policy: ComplianceLint.Policy, forUpdate: Bool = false) async throws -> Template {
        let lock: SQL = forUpdate ? "FOR UPDATE" : ""
        guard let row = try await tx.query("SELECT \(unsafeRaw: templateColumns) FROM templates t WHERE t.id = \(id) \(lock)").firstRow
        else { throw DomainError.notFound("template", id.text) }
        return try await templates(tx, rows: [row], policy: policy)[0]
    }
}
