import Foundation
import Testing
import TowerProto
import TowerRPC
import TowerStore

@testable import Tower

/// Lead CRUD, filters, pagination, tags, lists and export, over loopback HTTP/2.
@Suite("Leads")
struct LeadServiceTests {
    static func newLead(_ first: String, phones: [String], county: String = "", state: String = "", score: Int32 = 0) -> CreateLeadRequest {
        var request = CreateLeadRequest()
        var lead = Lead()
        lead.firstName = first
        lead.lastName = "Tester"
        lead.county = county
        lead.propertyState = state
        lead.score = score
        lead.phones = phones.map {
            var p = LeadPhone()
            p.phone = $0
            p.type = .mobile
            return p
        }
        request.lead = lead
        return request
    }

    static func all(_ client: LeadService.Client, _ options: CallOptions, _ filter: LeadFilter = LeadFilter(), pageSize: Int32 = 2)
        async throws -> [Lead]
    {
        var request = ListLeadsRequest()
        request.filter = filter
        request.page = PageRequest()
        request.page?.pageSize = pageSize
        var leads: [Lead] = []
        repeat {
            let page = try await client.listLeads(request, options: options)
            #expect(page.leads.count <= Int(pageSize))
            leads += page.leads
            request.page?.pageToken = page.page?.nextPageToken ?? ""
        } while request.page?.pageToken.isEmpty == false
        return leads
    }

    @Test func createReadUpdateDelete() async throws {
        let (fixture, options, _) = try await LeadImportTests.org()
        let client = fixture.client
        var bad = Self.newLead("Ann", phones: ["5128674001", "(911) 555-1234"])
        do {
            _ = try await client.createLead(bad, options: options)
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("lead.phones[1].phone: N11 codes"))
        }
        bad.lead?.phones.removeLast()
        bad.lead?.propertyState = "texas"
        bad.lead?.county = "TRAVIS COUNTY"
        bad.lead?.acreage = "12.50"
        bad.lead?.customFields = ["source": "referral"]
        let created = try await client.createLead(bad, options: options)
        #expect(created.firstName == "Ann")
        #expect(created.propertyState == "TX")
        #expect(created.county == "Travis")
        #expect(created.acreage == "12.5")
        #expect(created.status == .new)
        #expect(created.phones.map(\.phone) == ["+15128674001"])
        #expect(created.phones.first?.type == .mobile)
        #expect(created.phones.first?.consentStatus == .unknown)

        var get = GetLeadRequest()
        get.leadID = created.id
        #expect(try await client.getLead(get, options: options) == created)

        var update = UpdateLeadRequest()
        update.leadID = created.id
        update.lead = Lead()
        update.lead?.score = 80
        update.lead?.status = .interested
        update.lead?.county = "bexar county"
        update.lead?.firstName = "ignored: not in the mask"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["score", "status", "county"]
        let updated = try await client.updateLead(update, options: options)
        #expect(updated.score == 80)
        #expect(updated.status == .interested)
        #expect(updated.county == "Bexar")
        #expect(updated.firstName == "Ann")
        update.updateMask?.paths = ["tags"]
        #expect(await status { try await client.updateLead(update, options: options) } == .invalidArgument)
        update.updateMask?.paths = ["score"]
        update.lead?.score = 101
        #expect(await status { try await client.updateLead(update, options: options) } == .invalidArgument)

        var delete = DeleteLeadRequest()
        delete.leadID = created.id
        _ = try await client.deleteLead(delete, options: options)
        #expect(await status { try await client.getLead(get, options: options) } == .notFound)
        #expect(await status { try await client.deleteLead(delete, options: options) } == .notFound)
    }

    @Test func filtersAndPages() async throws {
        let (fixture, options, org) = try await LeadImportTests.org()
        let client = fixture.client
        var made: [String: Lead] = [:]
        for (name, phone, county, state, score) in [
            ("A", "5128675001", "Travis", "TX", Int32(10)), ("B", "5128675002", "Travis", "TX", 50), ("C", "5128675003", "Bexar", "TX", 90),
            ("D", "5128675004", "Pima", "AZ", 70), ("E", "5128675005", "Tulsa", "OK", 0),
        ] {
            made[name] = try await client.createLead(
                Self.newLead(name, phones: [phone], county: county, state: state, score: score), options: options)
        }
        // Pages of 2 cover every lead once, newest first.
        let everyone = try await Self.all(client, options)
        #expect(everyone.map(\.firstName) == ["E", "D", "C", "B", "A"])

        var filter = LeadFilter()
        filter.counties = ["TRAVIS COUNTY", "pima"]
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["D", "B", "A"])
        filter = LeadFilter()
        filter.states = ["Texas", "ok"]
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["E", "C", "B", "A"])
        filter.minScore = 20
        filter.maxScore = 90
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["C", "B"])

        var hot = CreateTagRequest()
        hot.name = "hot"
        hot.color = "#FF0000"
        let hotTag = try await client.createTag(hot, options: options)
        var spanish = CreateTagRequest()
        spanish.name = "Spanish"
        let spanishTag = try await client.createTag(spanish, options: options)
        #expect(await status { try await client.createTag(hot, options: options) } == .alreadyExists)
        #expect(try await client.listTags(ListTagsRequest(), options: options).tags.map(\.name) == ["hot", "Spanish"])
        var tagging = ModifyLeadTagsRequest()
        tagging.leadIds = [made["A"]!.id, made["B"]!.id, made["C"]!.id]
        tagging.tagIds = [hotTag.id]
        #expect(try await client.addLeadTags(tagging, options: options).changed == 3)
        #expect(try await client.addLeadTags(tagging, options: options).changed == 0)
        tagging.leadIds = [made["B"]!.id, made["D"]!.id]
        tagging.tagIds = [spanishTag.id]
        #expect(try await client.addLeadTags(tagging, options: options).changed == 2)
        filter = LeadFilter()
        filter.anyTagIds = [hotTag.id, spanishTag.id]
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["D", "C", "B", "A"])
        filter = LeadFilter()
        filter.allTagIds = [hotTag.id, spanishTag.id]
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["B"])
        #expect(try await client.getLead(GetLeadRequest.with(made["B"]!.id), options: options).tags.map(\.name) == ["hot", "Spanish"])
        tagging.leadIds = [made["B"]!.id]
        #expect(try await client.removeLeadTags(tagging, options: options).changed == 1)
        #expect(try await Self.all(client, options, filter).isEmpty)

        // Consent status and replies come from imports and inbound messages.
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute("UPDATE lead_phones SET consent_status = 'granted' WHERE phone = '+15128675003'")
            try await tx.execute(
                """
                INSERT INTO messages (org_id, lead_id, direction, to_phone, from_phone, body, status, received_at)
                VALUES (\(org), \(UUIDText(made["D"]!.id)!), 'inbound', '+15125550100', '+15128675004', 'yes, call me', 'received', now())
                """)
        }
        filter = LeadFilter()
        filter.consentStatus = .granted
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["C"])
        filter = LeadFilter()
        filter.hasReplied = true
        let replied = try await Self.all(client, options, filter)
        #expect(replied.map(\.firstName) == ["D"])
        #expect(replied.first?.hasReplied == true)
        filter.hasReplied = false
        #expect(try await Self.all(client, options, filter).count == 4)

        filter = LeadFilter()
        filter.createdAfter = made["B"]!.createTime
        filter.createdBefore = made["D"]!.createTime
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["C", "B"])

        var list = CreateLeadListRequest()
        list.name = "Call first"
        let callFirst = try await client.createLeadList(list, options: options)
        var members = ModifyListMembersRequest()
        members.listID = callFirst.id
        members.leadIds = [made["A"]!.id, made["E"]!.id]
        #expect(try await client.addListMembers(members, options: options).changed == 2)
        #expect(try await client.listLeadLists(ListLeadListsRequest(), options: options).lists.map(\.memberCount) == [2])
        filter = LeadFilter()
        filter.listID = callFirst.id
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["E", "A"])
        members.leadIds = [made["A"]!.id]
        #expect(try await client.removeListMembers(members, options: options).changed == 1)
        #expect(try await Self.all(client, options, filter).map(\.firstName) == ["E"])

        filter = LeadFilter()
        filter.states = ["Atlantis"]
        var bad = ListLeadsRequest()
        bad.filter = filter
        #expect(await status { try await client.listLeads(bad, options: options) } == .invalidArgument)
    }

    @Test func exportImportsBackUnchanged() async throws {
        let (fixture, options, _) = try await LeadImportTests.org()
        let client = fixture.client
        _ = try await LeadImportTests.upload(client, options, LeadImportTests.crafted)
        // One lead gets a second custom field through the API.
        let john = try #require(try await Self.all(client, options, pageSize: 50).first { $0.firstName == "John" })
        var update = UpdateLeadRequest()
        update.leadID = john.id
        update.lead = Lead()
        update.lead?.customFields = john.customFields.merging([Self.longKey: "line 1\nline 2, \"quoted\""]) { a, _ in a }
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["custom_fields"]
        _ = try await client.updateLead(update, options: options)
        var filter = LeadFilter()
        filter.states = ["TX"]
        var request = ExportLeadsRequest()
        request.filter = filter
        let csv = try await client.exportLeads(request, options: options) { stream in
            var bytes: [UInt8] = []
            for try await chunk in stream { bytes += chunk.data }
            return bytes
        }
        let text = String(decoding: csv, as: UTF8.self)
        #expect(text.hasPrefix("First Name,Last Name,Owner Name,Phone 1,Phone 1 Type,Phone 2,"))
        // Custom fields are columns after the fixed ones, sorted by key, "Custom: " + key; a key
        // longer than PostgreSQL's 63-byte names and holding a comma and a quote survives.
        let header = text.prefix { $0 != "\n" }
        let quotedKey = Self.longKey.replacingOccurrences(of: "\"", with: "\"\"")
        #expect(header.hasSuffix(",Lead ID,\"Custom: \(quotedKey)\",Custom: Notes"))
        let original = try await Self.all(client, options, LeadFilter(states: ["TX"]), pageSize: 50)
        #expect(original.count == 2)  // John (TX) and Carl (TX); Dee's state was not a state

        let (_, otherOptions, _) = try await LeadImportTests.org("Export target")
        let job = try await LeadImportTests.upload(client, otherOptions, csv)
        #expect(job.newRows == 2)
        #expect(job.invalidRows == 0)
        let copied = try await Self.all(client, otherOptions, pageSize: 50)
        func core(_ lead: Lead) -> [String] {
            [
                lead.firstName, lead.lastName, lead.ownerName, lead.propertyAddress, lead.propertyState, lead.county, lead.apn,
                lead.acreage,
                lead.phones.map { "\($0.position):\($0.phone):\($0.type)" }.joined(separator: ","),
                lead.customFields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}"),
            ]
        }
        #expect(Set(copied.map(core)) == Set(original.map(core)))
        #expect(copied.first { $0.firstName == "John" }?.customFields == ["Notes": "first", Self.longKey: "line 1\nline 2, \"quoted\""])
        #expect(copied.first { $0.firstName == "Carl" }?.customFields == ["Notes": "multi\nline, with comma"])
    }

    /// 75 bytes, with a comma, a quote and an apostrophe.
    static let longKey = "Assessor's remark, \"verbatim\" as published by the county (tax year 2024) ok"

    @Test func anotherOrgsLeadsTagsAndListsAreNotFound() async throws {
        let (fixture, optionsA, _) = try await LeadImportTests.org("Tenant A")
        let (_, optionsB, _) = try await LeadImportTests.org("Tenant B")
        let client = fixture.client
        let leadA = try await client.createLead(Self.newLead("Alma", phones: ["5128676001"]), options: optionsA)
        var tagRequest = CreateTagRequest()
        tagRequest.name = "A's tag"
        let tagA = try await client.createTag(tagRequest, options: optionsA)
        tagRequest.name = "B's tag"
        let tagB = try await client.createTag(tagRequest, options: optionsB)
        var listRequest = CreateLeadListRequest()
        listRequest.name = "A's list"
        let listA = try await client.createLeadList(listRequest, options: optionsA)
        let leadB = try await client.createLead(Self.newLead("Bea", phones: ["5128676001"]), options: optionsB)

        #expect(await status { try await client.getLead(GetLeadRequest.with(leadA.id), options: optionsB) } == .notFound)
        var update = UpdateLeadRequest()
        update.leadID = leadA.id
        update.lead = Lead()
        update.lead?.firstName = "Hijacked"
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["first_name"]
        #expect(await status { try await client.updateLead(update, options: optionsB) } == .notFound)
        var delete = DeleteLeadRequest()
        delete.leadID = leadA.id
        #expect(await status { try await client.deleteLead(delete, options: optionsB) } == .notFound)
        var tagging = ModifyLeadTagsRequest()
        tagging.leadIds = [leadA.id]
        tagging.tagIds = [tagB.id]
        #expect(await status { try await client.addLeadTags(tagging, options: optionsB) } == .notFound)
        tagging.leadIds = [leadB.id]
        tagging.tagIds = [tagA.id]
        #expect(await status { try await client.addLeadTags(tagging, options: optionsB) } == .notFound)
        var members = ModifyListMembersRequest()
        members.listID = listA.id
        members.leadIds = [leadB.id]
        #expect(await status { try await client.addListMembers(members, options: optionsB) } == .notFound)
        #expect(await status { try await client.removeListMembers(members, options: optionsB) } == .notFound)
        var filter = LeadFilter()
        filter.listID = listA.id
        #expect(try await Self.all(client, optionsB, filter).isEmpty)
        #expect(try await Self.all(client, optionsB).map(\.id) == [leadB.id])
        #expect(try await client.listTags(ListTagsRequest(), options: optionsB).tags.map(\.id) == [tagB.id])

        let stillA = try await client.getLead(GetLeadRequest.with(leadA.id), options: optionsA)
        #expect(stillA.firstName == "Alma")
        #expect(stillA.tags.isEmpty)
    }
}

extension GetLeadRequest {
    static func with(_ id: String) -> GetLeadRequest {
        var request = GetLeadRequest()
        request.leadID = id
        return request
    }
}

extension LeadFilter {
    init(states: [String]) {
        self.init()
        self.states = states
    }
}
