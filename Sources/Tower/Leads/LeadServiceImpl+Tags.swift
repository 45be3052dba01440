import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// Tags and static lists.
extension LeadServiceImpl {
    static let tagColumns = "t.id::text AS id, t.name, t.color, \(Timestamps.micros("t.created_at")) AS created_us"

    static func tag(_ row: Row) throws -> Tag {
        var tag = Tag()
        tag.id = try row.decode("id", as: String.self)
        tag.name = try row.decode("name", as: String.self)
        tag.color = try row.decode("color", as: String?.self) ?? ""
        tag.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        return tag
    }

    public func createTag(request: CreateTagRequest, context: ServerContext) async throws -> Tag {
        let name = try FieldCheck.name(request.name, maxLength: 100)
        let color = request.color.isEmpty ? nil : request.color
        if let color, color.wholeMatch(of: /#[0-9a-fA-F]{6}/) == nil {
            throw DomainError.invalid("color", "must be #RRGGBB, e.g. #2E7D32, or empty")
        }
        return try await tenancy.transaction(context) { tx, principal in
            let row = try await tx.query(
                "INSERT INTO tags AS t (org_id, name, color) VALUES (\(principal.orgID), \(name), \(color)) RETURNING \(unsafeRaw: Self.tagColumns)"
            ).one()
            let tag = try Self.tag(row)
            try await Audit.record(tx, principal, action: "tag.create", targetType: "tag", targetID: tag.id)
            return tag
        }
    }

    public func listTags(request: ListTagsRequest, context: ServerContext) async throws -> ListTagsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let after: SQL = cursor.map { "WHERE (lower(t.name), t.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let rows = try await tx.query(
                "SELECT \(unsafeRaw: Self.tagColumns) FROM tags t \(after) ORDER BY lower(t.name), t.id LIMIT \(PageCursor.fetchLimit(size))",
                prepared: false)
            var response = ListTagsResponse()
            let page = KeysetPage(rows, size: size)
            response.tags = try page.rows.map(Self.tag)
            response.page = page.info(last: response.tags.last) { PageCursor(sortKey: $0.name.lowercased(), id: $0.id) }
            return response
        }
    }

    public func addLeadTags(request: ModifyLeadTagsRequest, context: ServerContext) async throws -> ModifyLeadTagsResponse {
        try await modifyTags(request, context: context, add: true)
    }

    public func removeLeadTags(request: ModifyLeadTagsRequest, context: ServerContext) async throws -> ModifyLeadTagsResponse {
        try await modifyTags(request, context: context, add: false)
    }

    private func modifyTags(_ request: ModifyLeadTagsRequest, context: ServerContext, add: Bool) async throws -> ModifyLeadTagsResponse {
        let leads = try FieldCheck.ids(request.leadIds, field: "lead_ids", required: true, max: 10_000).sorted()
        let tags = try FieldCheck.ids(request.tagIds, field: "tag_ids", required: true, max: 100).sorted()
        return try await tenancy.transaction(context) { tx, principal in
            try await LeadRecords.requireAll(tx, table: "leads", ids: leads, field: "lead_ids", what: "leads")
            try await LeadRecords.requireAll(tx, table: "tags", ids: tags, field: "tag_ids", what: "tags")
            let changed =
                add
                ? try await tx.execute(
                    """
                    INSERT INTO lead_tags (org_id, lead_id, tag_id)
                    SELECT \(principal.orgID), l, t FROM unnest(\(leads)::uuid[]) AS l CROSS JOIN unnest(\(tags)::uuid[]) AS t
                    ON CONFLICT DO NOTHING
                    """)
                : try await tx.execute("DELETE FROM lead_tags WHERE lead_id = ANY(\(leads)::uuid[]) AND tag_id = ANY(\(tags)::uuid[])")
            try await Audit.record(
                tx, principal, action: add ? "lead.tags_add" : "lead.tags_remove", targetType: "tag", targetID: tags.joined(separator: ","),
                details: .object([("leads", .number(String(leads.count))), ("changed", .number(String(changed)))]))
            var response = ModifyLeadTagsResponse()
            response.changed = Int64(changed)
            return response
        }
    }

    static let listColumns = """
        ll.id::text AS id, ll.name, \(Timestamps.micros("ll.created_at")) AS created_us,
        (SELECT count(*) FROM lead_list_members m WHERE m.list_id = ll.id) AS member_count
        """

    static func list(_ row: Row) throws -> LeadList {
        var list = LeadList()
        list.id = try row.decode("id", as: String.self)
        list.name = try row.decode("name", as: String.self)
        list.memberCount = try row.decode("member_count", as: Int64.self)
        list.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        return list
    }

    public func createLeadList(request: CreateLeadListRequest, context: ServerContext) async throws -> LeadList {
        let name = try FieldCheck.name(request.name, maxLength: 200)
        return try await tenancy.transaction(context) { tx, principal in
            let id = try await tx.query(
                "INSERT INTO lead_lists (org_id, name, kind) VALUES (\(principal.orgID), \(name), 'static') RETURNING id::text AS id"
            ).one().decode("id", as: String.self)
            try await Audit.record(tx, principal, action: "lead_list.create", targetType: "lead_list", targetID: id)
            return try Self.list(
                try await tx.query("SELECT \(unsafeRaw: Self.listColumns) FROM lead_lists ll WHERE ll.id = \(UUIDText(id)!)").one())
        }
    }

    public func listLeadLists(request: ListLeadListsRequest, context: ServerContext) async throws -> ListLeadListsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            let after: SQL = cursor.map { "AND (ll.name, ll.id) > (\($0.sortKey), \(UUIDText($0.id)))" } ?? ""
            let rows = try await tx.query(
                "SELECT \(unsafeRaw: Self.listColumns) FROM lead_lists ll WHERE ll.kind = 'static' \(after) ORDER BY ll.name, ll.id LIMIT \(PageCursor.fetchLimit(size))",
                prepared: false)
            var response = ListLeadListsResponse()
            let page = KeysetPage(rows, size: size)
            response.lists = try page.rows.map(Self.list)
            response.page = page.info(last: response.lists.last) { PageCursor(sortKey: $0.name, id: $0.id) }
            return response
        }
    }

    public func addListMembers(request: ModifyListMembersRequest, context: ServerContext) async throws -> ModifyListMembersResponse {
        try await modifyMembers(request, context: context, add: true)
    }

    public func removeListMembers(request: ModifyListMembersRequest, context: ServerContext) async throws -> ModifyListMembersResponse {
        try await modifyMembers(request, context: context, add: false)
    }

    private func modifyMembers(_ request: ModifyListMembersRequest, context: ServerContext, add: Bool) async throws
        -> ModifyListMembersResponse
    {
        let list = try IdentityRecords.id(request.listID, field: "list_id")
        let leads = try FieldCheck.ids(request.leadIds, field: "lead_ids", required: true, max: 10_000).sorted()
        return try await tenancy.transaction(context) { tx, principal in
            guard let kind = try await tx.query("SELECT kind FROM lead_lists WHERE id = \(list)").firstRow?.decode("kind", as: String.self)
            else { throw DomainError.notFound("list", request.listID) }
            guard kind == "static" else {
                throw DomainError.failedPrecondition("list \(request.listID) is dynamic: its members come from its filter")
            }
            try await LeadRecords.requireAll(tx, table: "leads", ids: leads, field: "lead_ids", what: "leads")
            let changed =
                add
                ? try await tx.execute(
                    """
                    INSERT INTO lead_list_members (org_id, list_id, lead_id)
                    SELECT \(principal.orgID), \(list), l FROM unnest(\(leads)::uuid[]) AS l ON CONFLICT DO NOTHING
                    """)
                : try await tx.execute("DELETE FROM lead_list_members WHERE list_id = \(list) AND lead_id = ANY(\(leads)::uuid[])")
            try await Audit.record(
                tx, principal, action: add ? "lead_list.members_add" : "lead_list.members_remove", targetType: "lead_list",
                targetID: list.text, details: .object([("changed", .number(String(changed)))]))
            var response = ModifyListMembersResponse()
            response.changed = Int64(changed)
            return response
        }
    }
}
