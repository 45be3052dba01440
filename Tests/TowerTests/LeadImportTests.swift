import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// LeadService imports against the real database, over loopback HTTP/2.
@Suite("Lead import")
struct LeadImportTests {
    struct Fixture: Sendable {
        let env: IdentityEnvironment
        /// Held for the whole test run: releasing it would stop it.
        let server: RPCServer
        let channel: HTTP2ClientChannel
        var client: LeadService.Client { LeadService.Client(channel: channel) }
    }

    static let shared = Task<Fixture, Error> {
        let env = try await IdentityEnvironment.get()
        let server = RPCServer(
            configuration: .init(host: "127.0.0.1", port: 0, interceptors: [env.interceptor]),
            services: env.services() + [LeadServiceImpl(store: env.store)])
        let address = try await server.start()
        return Fixture(env: env, server: server, channel: HTTP2ClientChannel(host: "127.0.0.1", port: address.port!))
    }

    /// A fresh org and its owner's call options.
    static func org(_ name: String = "Import Org") async throws -> (Fixture, CallOptions, OrgID) {
        let fixture = try await shared.value
        let (created, email, password) = try await fixture.env.makeOrg(name: name)
        let session = try await fixture.env.login(email, password)
        return (fixture, bearer(session.accessToken), created.orgID)
    }

    static func header(
        _ fileName: String = "leads.csv", mapping: [ColumnMappingEntry] = [], consent: ConsentDeclaration? = nil
    ) -> ImportHeader {
        var header = ImportHeader()
        header.fileName = fileName
        header.format = .csv
        header.columnMapping = mapping
        header.consent = consent
        return header
    }

    /// Uploads `bytes` in chunks of `chunkSize`.
    static func upload(
        _ client: LeadService.Client, _ options: CallOptions, _ bytes: [UInt8], chunkSize: Int = 64 * 1024,
        header: ImportHeader = header()
    ) async throws -> ImportJob {
        try await client.importLeads(options: options) { writer in
            var first = ImportLeadsRequest()
            first.payload = .header(header)
            try await writer.write(first)
            var offset = 0
            while offset < bytes.count {
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array(bytes[offset..<min(offset + chunkSize, bytes.count)]))
                try await writer.write(chunk)
                offset += chunkSize
            }
        }
    }

    static func upload(_ client: LeadService.Client, _ options: CallOptions, _ text: String, chunkSize: Int = 64 * 1024) async throws
        -> ImportJob
    {
        try await upload(client, options, Array(text.utf8), chunkSize: chunkSize)
    }

    /// Reads with the org's row-level security, as the server does.
    static func query(_ env: IdentityEnvironment, _ org: OrgID, _ sql: SQL) async throws -> QueryResult {
        try await env.store.withTransaction(tenant: org) { tx in try await tx.query(sql, prepared: false) }
    }

    static func phones(_ env: IdentityEnvironment, _ org: OrgID, leadWithPhone phone: String) async throws -> [String] {
        try await query(
            env, org,
            """
            SELECT p.phone::text AS phone FROM lead_phones p
            WHERE p.lead_id = (SELECT lead_id FROM lead_phones WHERE phone = \(phone)) ORDER BY p.position
            """
        ).map { try $0.decode("phone", as: String.self) }
    }

    static let crafted = [
        "Owner First Name,Owner Last Name,Phone 1,Phone 2,Property Address,County,Property State,Lot Acres,Notes",
        "JOHN,SMITH,(512) 867-5309,,123 Ranch Rd,TRAVIS COUNTY,texas,12.5 ac,first",
        "john,smith,512.867.5309,(512) 867-5310,,,,,\"same phone as row 1\"",
        "Mary,Jones,(911) 555-1234,,9 Oak St,Bexar,TX,3,only an N11 phone",
        "Carl,Diaz,214-867-5311,,77 Elm St,Dallas,TX,,\"multi\nline, with comma\"",
        "",
        "CARL,DIAZ,214 867 5312,,77  ELM ST,,,,same owner and property as row 4",
        "Dee,Fox,+1 469 867 5313,,,,Texxas,lots,\"he said \"\"hi\"\"\",extra cell",
        ",,,,,,,,",
        "Eve,Ng,(737) 555-0150,,,,,,fictional phone",
        "",
    ].joined(separator: "\r\n")

    @Test func dedupeCountsAreExact() async throws {
        let (fixture, options, org) = try await Self.org()
        let job = try await Self.upload(fixture.client, options, Self.crafted)
        #expect(job.status == .completed)
        // Blank lines and all-empty rows are not rows.
        #expect(job.totalRows == 7)
        #expect(job.newRows == 3)  // John Smith, Carl Diaz, Dee Fox
        #expect(job.mergedRows == 0)
        #expect(job.duplicateRows == 2)  // row 2 (phone), row 5 (owner + property)
        #expect(job.invalidRows == 2)  // N11, and 555-01xx
        #expect(job.totalRows == job.newRows + job.mergedRows + job.duplicateRows + job.invalidRows)
        #expect(!job.consentDeclared)
        #expect(job.columnMapping.map(\.field).prefix(4) == [.firstName, .lastName, .phone1, .phone2])

        let leads = try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads")
        #expect(try leads.one().decode("n", as: Int.self) == 3)
        // Row 2 added its second phone to John's lead; row 5 its phone to Carl's.
        #expect(try await Self.phones(fixture.env, org, leadWithPhone: "+15128675309") == ["+15128675309", "+15128675310"])
        #expect(try await Self.phones(fixture.env, org, leadWithPhone: "+12148675311") == ["+12148675311", "+12148675312"])
        let john = try await Self.query(
            fixture.env, org,
            "SELECT first_name, county, property_state, acreage::text AS acreage, custom_fields->>'Notes' AS notes, import_job_id::text AS job FROM leads WHERE property_address = '123 Ranch Rd'"
        ).one()
        #expect(try john.decode("first_name", as: String.self) == "John")
        #expect(try john.decode("county", as: String.self) == "Travis")
        #expect(try john.decode("property_state", as: String.self) == "TX")
        #expect(try john.decode("acreage", as: String.self) == "12.5000")
        #expect(try john.decode("notes", as: String.self) == "first")
        #expect(try john.decode("job", as: String.self) == job.id)
        let carl = try await Self.query(fixture.env, org, "SELECT custom_fields->>'Notes' AS notes FROM leads WHERE first_name = 'Carl'")
        #expect(try carl.one().decode("notes", as: String.self) == "multi\nline, with comma")
        let dee = try await Self.query(
            fixture.env, org, "SELECT custom_fields->>'Notes' AS notes, property_state FROM leads WHERE first_name = 'Dee'")
        #expect(try dee.one().decode("notes", as: String.self) == "he said \"hi\"")
        #expect(try dee.one().decode("property_state", as: String?.self) == nil)
        // Without a consent declaration nothing is recorded and consent stays unknown.
        #expect(try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM consent_records").one().decode("n", as: Int.self) == 0)
        let statuses = try await Self.query(fixture.env, org, "SELECT DISTINCT consent_status FROM lead_phones")
        #expect(try statuses.map { try $0.decode("consent_status", as: String.self) } == ["unknown"])
    }

    @Test func concurrentImportsIntoOneOrgDedupeAgainstEachOther() async throws {
        let (fixture, options, org) = try await Self.org()
        let client = fixture.client
        async let first = Self.upload(client, options, Self.crafted)
        async let second = Self.upload(client, options, Self.crafted)
        let jobs = try await [first, second]
        // One ran first and created the leads; the other merged into them.
        #expect(jobs.map(\.newRows).sorted() == [0, 3])
        #expect(jobs.map(\.mergedRows).sorted() == [0, 3])
        #expect(try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads").one().decode("n", as: Int.self) == 3)
    }

    @Test func rowErrorsAreListedPageByPage() async throws {
        let (fixture, options, _) = try await Self.org()
        let job = try await Self.upload(fixture.client, options, Self.crafted)
        #expect(job.errorCount == 7)
        var errors: [ImportError] = []
        var request = ListImportErrorsRequest()
        request.importJobID = job.id
        request.page = PageRequest()
        request.page?.pageSize = 2
        repeat {
            let page = try await fixture.client.listImportErrors(request, options: options)
            #expect(page.errors.count <= 2)
            errors += page.errors
            request.page?.pageToken = page.page?.nextPageToken ?? ""
        } while request.page?.pageToken.isEmpty == false
        let summary = errors.map { "\($0.rowNumber)|\($0.column)|\($0.reason)" }
        #expect(
            summary == [
                "3|Phone 1|phone \"(911) 555-1234\" rejected: N11 codes (211, 311 … 911) are not area codes",
                "3||no phone that can receive a text; the row was not imported",
                "6||the row has 10 cells but the header row has 9; the extra cells were ignored",
                "6|Property State|\"Texxas\" is not a US state name or USPS code; left empty",
                "6|Lot Acres|\"lots\" is not a number of acres; left empty",
                "7|Phone 1|phone \"(737) 555-0150\" rejected: 555-0100 to 555-0199 are reserved for fiction",
                "7||no phone that can receive a text; the row was not imported",
            ])
    }

    @Test func mergesIntoExistingLeadsByTheDocumentedRule() async throws {
        let (fixture, options, org) = try await Self.org()
        _ = try await Self.upload(fixture.client, options, Self.crafted)
        let second = """
            Phone,Phone 2,Phone 3,First Name,Owner,Property Address,County,Tag\n\
            5128678000,5128675309,5128678001,Johnny,,,Hays,second-file\n\
            2148675399,,,,Carl Diaz,77 Elm St,,\n\
            5128678002,,,,,,,\n\
            5128678003,,,Zed,,,,\n\
            5128678003,,,Zed,,,,\n

            """
        let job = try await Self.upload(fixture.client, options, second)
        #expect(job.totalRows == 5)
        #expect(job.mergedRows == 2)  // John (phone), Carl (owner + property)
        #expect(job.newRows == 2)
        #expect(job.duplicateRows == 1)
        #expect(job.invalidRows == 0)
        // Existing non-empty values win; empty ones are filled; custom fields are added.
        let john = try await Self.query(
            fixture.env, org,
            "SELECT first_name, county, custom_fields->>'Tag' AS tag, custom_fields->>'Notes' AS notes FROM leads WHERE property_address = '123 Ranch Rd'"
        ).one()
        #expect(try john.decode("first_name", as: String.self) == "John")
        #expect(try john.decode("county", as: String.self) == "Travis")
        #expect(try john.decode("tag", as: String.self) == "second-file")
        #expect(try john.decode("notes", as: String.self) == "first")
        // John had 2 phones: one free slot, filled by the first new phone in column order; the
        // other is dropped and reported.
        #expect(
            try await Self.phones(fixture.env, org, leadWithPhone: "+15128675309") == ["+15128675309", "+15128675310", "+15128678000"])
        #expect(try await Self.phones(fixture.env, org, leadWithPhone: "+12148675311") == ["+12148675311", "+12148675312", "+12148675399"])
        var request = ListImportErrorsRequest()
        request.importJobID = job.id
        let errors = try await fixture.client.listImportErrors(request, options: options).errors
        #expect(errors.map(\.rowNumber) == [1])
        #expect(errors.first?.reason == "phone +15128678001 not kept: the lead already has 3 phones")
        #expect(job.errorCount == 1)
        let leads = try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads")
        #expect(try leads.one().decode("n", as: Int.self) == 5)
    }

    @Test func consentIsRecordedPerPhoneAndNeverOverridesARevocation() async throws {
        let (fixture, options, org) = try await Self.org()
        var consent = ConsentDeclaration()
        consent.source = "web form"
        consent.sellerName = "Lone Star Land Co"
        consent.disclosureVersion = "2024-05 v3"
        consent.ipAddress = "203.0.113.7"
        consent.formURL = "https://example.com/sell"
        let file = """
            Name,Cell,Landline,Opt-in Date\n\
            Ana Ruiz,5128671001,5128671002,2024-05-01\n\
            Ben Ode,5128671003,,not a date\n

            """
        let job = try await Self.upload(fixture.client, options, Array(file.utf8), header: Self.header(consent: consent))
        #expect(job.consentDeclared)
        #expect(job.newRows == 2)
        let records = try await Self.query(
            fixture.env, org,
            """
            SELECT phone::text AS phone, source, seller_name, disclosure_version, host(ip_address) AS ip, form_url, channel,
                   to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day
            FROM consent_records ORDER BY phone
            """)
        #expect(records.count == 3)
        #expect(try records.map { try $0.decode("phone", as: String.self) } == ["+15128671001", "+15128671002", "+15128671003"])
        #expect(try records[0].decode("seller_name", as: String.self) == "Lone Star Land Co")
        #expect(try records[0].decode("disclosure_version", as: String.self) == "2024-05 v3")
        #expect(try records[0].decode("ip", as: String.self) == "203.0.113.7")
        #expect(try records[0].decode("form_url", as: String.self) == "https://example.com/sell")
        #expect(try records[0].decode("channel", as: String.self) == "import")
        #expect(try records[0].decode("day", as: String.self) == "2024-05-01")
        let types = try await Self.query(
            fixture.env, org, "SELECT phone::text AS phone, phone_type, consent_status FROM lead_phones ORDER BY phone")
        #expect(try types.map { try $0.decode("phone_type", as: String.self) } == ["mobile", "landline", "mobile"])
        #expect(try types.allSatisfy { try $0.decode("consent_status", as: String.self) == "granted" })

        // Ben revokes; a re-import that declares consent again does not bring it back.
        try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.execute("UPDATE lead_phones SET consent_status = 'revoked' WHERE phone = '+15128671003'")
        }
        let again = try await Self.upload(
            fixture.client, options, Array("Name,Cell\nBen Ode,5128671003\n".utf8), header: Self.header(consent: consent))
        #expect(again.mergedRows == 1)
        let ben = try await Self.query(fixture.env, org, "SELECT consent_status FROM lead_phones WHERE phone = '+15128671003'")
        #expect(try ben.one().decode("consent_status", as: String.self) == "revoked")
        let benRecords = try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM consent_records WHERE phone = '+15128671003'")
        #expect(try benRecords.one().decode("n", as: Int.self) == 1)
    }

    /// A file of `rows` leads, BOM and CRLF, about 150 bytes a row.
    static func bigFile(rows: Int) -> [UInt8] {
        var text = "\u{FEFF}First Name,Last Name,Phone 1,Mailing Address,Mailing City,Mailing State,Mailing Zip,Notes\r\n"
        for i in 0..<rows {
            let line = String(format: "%07d", i)
            text +=
                "Owner\(i),Family \(i % 97),(512) 86\(line.prefix(1))-\(line.suffix(4)) ,\"\(i) County Road \(i % 13), Unit 4\",Austin,TX,78701,"
            text += "\"a note that is long enough to make the file big: \(String(repeating: "x", count: 60))\"\r\n"
        }
        return Array(text.utf8)
    }

    @Test func largeUploadsSplitAcrossManyMessagesImportWhole() async throws {
        let (fixture, options, org) = try await Self.org()
        // Phones 512-86d-dddd repeat every 10,000 rows: 30,000 rows are 10,000 leads.
        let bytes = Self.bigFile(rows: 30_000)
        #expect(bytes.count > 4 * 1024 * 1024)
        let job = try await Self.upload(fixture.client, options, bytes, chunkSize: 100_003)
        #expect(job.totalRows == 30_000)
        #expect(job.invalidRows == 0)
        #expect(job.newRows + job.duplicateRows == 30_000)
        let leads = try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads")
        #expect(try leads.one().decode("n", as: Int.self) == Int(job.newRows))
    }

    @Test func tinyChunksSplitInsideQuotesAndCharacters() async throws {
        let (fixture, options, org) = try await Self.org()
        let file = "\u{FEFF}Name,Phone,Notes\r\n\"Núñez, José\",5128672001,\"línea 1\r\nlínea 2\"\r\nBob,5128672002,x"
        let job = try await Self.upload(fixture.client, options, Array(file.utf8), chunkSize: 1)
        #expect(job.totalRows == 2)
        #expect(job.newRows == 2)
        let row = try await Self.query(
            fixture.env, org, "SELECT owner_name, custom_fields->>'Notes' AS notes FROM leads ORDER BY owner_name DESC")
        #expect(try row[0].decode("owner_name", as: String.self) == "Núñez, José")
        #expect(try row[0].decode("notes", as: String.self) == "línea 1\r\nlínea 2")
    }

    @Test func emptyAndHeaderOnlyFilesComplete() async throws {
        let (fixture, options, _) = try await Self.org()
        let empty = try await Self.upload(fixture.client, options, "")
        #expect(empty.status == .completed)
        #expect(empty.totalRows == 0)
        let headerOnly = try await Self.upload(fixture.client, options, "Name,Phone 1\r\n")
        #expect(headerOnly.status == .completed)
        #expect(headerOnly.totalRows == 0)
        #expect(headerOnly.columnMapping.map(\.field) == [.fullName, .phone1])
    }

    @Test func badHeadersAndMappingsAreRefusedPrecisely() async throws {
        let (fixture, options, org) = try await Self.org()
        var mapping = ColumnMappingEntry()
        mapping.column = "Phone 4"
        mapping.field = .phone1
        do {
            _ = try await Self.upload(
                fixture.client, options, Array("Name,Phone\nA,5128673001\n".utf8), header: Self.header(mapping: [mapping]))
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("header.column_mapping[0].column: the header row has no column \"Phone 4\""))
            #expect(error.message.contains("\"Name\", \"Phone\""))
        }
        do {
            _ = try await Self.upload(fixture.client, options, "Name,Email\nA,a@example.com\n")
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("LEAD_FIELD_PHONE_1"))
        }
        var twice = [mapping, mapping]
        twice[0].column = "Phone"
        twice[1].column = "Name"
        do {
            _ = try await Self.upload(
                fixture.client, options, Array("Name,Phone\nA,5128673001\n".utf8), header: Self.header(mapping: twice))
            Issue.record("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            #expect(error.message.contains("header.column_mapping[1].field: phone_1 is already mapped from column \"Phone\""))
        }
        let noHeader = await status {
            try await fixture.client.importLeads(options: options) { writer in
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array("Name,Phone\n".utf8))
                try await writer.write(chunk)
            }
        }
        #expect(noHeader == .invalidArgument)
        var unclosed = "Name,Phone,Notes\nA,5128673001,\"never closed\n"
        unclosed += String(repeating: "y", count: 1 << 20)
        #expect(await status { try await Self.upload(fixture.client, options, unclosed) } == .invalidArgument)
        // Nothing half-written; the unclosed-quote upload failed after its job was created.
        let jobs = try await fixture.client.listImportJobs(ListImportJobsRequest(), options: options).importJobs
        #expect(jobs.count == 1)
        #expect(jobs.first?.status == .failed)
        #expect(jobs.first?.failureReason.contains("a quoted field is probably never closed") == true)
        #expect(try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads").one().decode("n", as: Int.self) == 0)
    }

    @Test func watchFollowsAJobToCompletion() async throws {
        let (fixture, options, _) = try await Self.org()
        let client = fixture.client
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let bytes = Self.bigFile(rows: 2_000)
        let split = 4096
        let upload = Task {
            try await client.importLeads(options: options) { writer in
                var first = ImportLeadsRequest()
                first.payload = .header(Self.header())
                try await writer.write(first)
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array(bytes[..<split]))
                try await writer.write(chunk)
                // Holds the rest back until the watcher is attached.
                for await _ in gate { break }
                chunk.payload = .chunk(Array(bytes[split...]))
                try await writer.write(chunk)
            }
        }
        var jobID = ""
        while jobID.isEmpty {
            jobID = try await client.listImportJobs(ListImportJobsRequest(), options: options).importJobs.first?.id ?? ""
            if jobID.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        var request = WatchImportJobRequest()
        request.importJobID = jobID
        let seen = try await client.watchImportJob(request, options: options) { stream in
            var seen: [ImportJob] = []
            for try await job in stream {
                seen.append(job)
                if seen.count == 1 { open.yield() }
            }
            return seen
        }
        let final = try await upload.value
        #expect(seen.first.map { [.pending, .running].contains($0.status) } == true)
        #expect(seen.last?.status == .completed)
        #expect(seen.last == final)
        #expect(final.totalRows == 2_000)
    }

    struct ClientGaveUp: Error {}

    @Test func anUploadCutShortSavesNothingAndFailsItsJob() async throws {
        let (fixture, options, org) = try await Self.org()
        let bytes = Self.bigFile(rows: 1_000)
        let outcome = await status {
            try await fixture.client.importLeads(options: options) { writer in
                var first = ImportLeadsRequest()
                first.payload = .header(Self.header())
                try await writer.write(first)
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array(bytes[..<50_000]))
                try await writer.write(chunk)
                // Gives up once the server has started the job (mid-file, more chunks to come).
                while try await fixture.client.listImportJobs(ListImportJobsRequest(), options: options).importJobs.isEmpty {
                    try await Task.sleep(for: .milliseconds(20))
                }
                throw ClientGaveUp()
            }
        }
        #expect(outcome != nil)
        // The server may still be unwinding: wait for the job to leave RUNNING.
        var job: ImportJob?
        while job == nil || job?.status == .running {
            job = try await fixture.client.listImportJobs(ListImportJobsRequest(), options: options).importJobs.first
            if job?.status == .running { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(job?.status == .failed)
        // Failed by the importer as it unwound, not later by the orphan check.
        #expect(job?.failureReason.isEmpty == false)
        #expect(job?.failureReason != ImportJobRecords.orphanReason)
        #expect(try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads").one().decode("n", as: Int.self) == 0)
    }

    @Test func aJobWithoutAWorkerIsFailedOnRead() async throws {
        let (fixture, options, org) = try await Self.org()
        // As a crash leaves it: running, and no transaction holds its lock. A young job is left
        // alone (its import transaction may be about to take the lock).
        let young = try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.query(
                "INSERT INTO import_jobs (org_id, file_name, status, started_at) VALUES (\(org), 'new.csv', 'running', now()) RETURNING id::text AS id"
            ).one().decode("id", as: String.self)
        }
        var youngRequest = GetImportJobRequest()
        youngRequest.importJobID = young
        #expect(try await fixture.client.getImportJob(youngRequest, options: options).status == .running)
        let id = try await fixture.env.store.withTransaction(tenant: org) { tx in
            try await tx.query(
                """
                INSERT INTO import_jobs (org_id, file_name, status, started_at, created_at)
                VALUES (\(org), 'crashed.csv', 'running', now() - interval '5 minutes', now() - interval '5 minutes')
                RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
        }
        var request = GetImportJobRequest()
        request.importJobID = id
        let job = try await fixture.client.getImportJob(request, options: options)
        #expect(job.status == .failed)
        #expect(job.failureReason == ImportJobRecords.orphanReason)
        var watch = WatchImportJobRequest()
        watch.importJobID = id
        let statuses = try await fixture.client.watchImportJob(watch, options: options) { stream in
            var all: [ImportJobStatus] = []
            for try await job in stream { all.append(job.status) }
            return all
        }
        #expect(statuses == [.failed])
    }

    @Test func orphanedJobsOfEveryOrgAreFailedAtStartButLiveOnesAreNot() async throws {
        let (fixture, _, orgA) = try await Self.org("Sweep A")
        let (_, _, orgB) = try await Self.org("Sweep B")
        func job(_ org: OrgID, age: String, id: String = UUID().uuidString.lowercased()) async throws -> String {
            try await fixture.env.store.withTransaction(tenant: org) { tx in
                try await tx.query(
                    """
                    INSERT INTO import_jobs (id, org_id, file_name, status, started_at, created_at)
                    VALUES (\(UUIDText(id)!), \(org), 'sweep.csv', 'running', now() - \(age)::interval, now() - \(age)::interval)
                    RETURNING id::text AS id
                    """
                ).one().decode("id", as: String.self)
            }
        }
        // A live import: its transaction holds the job's lock from before the job is visible
        // (servers of other suites may sweep at any moment) until after this sweep.
        let liveID = UUID().uuidString.lowercased()
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let (release, releasing) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await fixture.env.store.withTransaction(tenant: orgB) { tx in
                try await tx.execute("SELECT pg_advisory_xact_lock(\(ImportJobRecords.lockKey(liveID)))")
                holding.yield()
                for await _ in release { break }
            }
        }
        for await _ in held { break }
        let live = try await job(orgB, age: "10 minutes", id: liveID)
        let crashedA = try await job(orgA, age: "10 minutes")
        let crashedB = try await job(orgB, age: "10 minutes")
        let young = try await job(orgA, age: "1 second")
        _ = try await ImportJobRecords.failOrphanedJobs(fixture.env.store)
        releasing.yield()
        try await holder.value
        // (The count is not checked: other suites' servers sweep the shared database too.)
        func status(_ org: OrgID, _ id: String) async throws -> (String, String?) {
            let row = try await Self.query(fixture.env, org, "SELECT status, failure_reason FROM import_jobs WHERE id = \(UUIDText(id)!)")
                .one()
            return (try row.decode("status", as: String.self), try row.decode("failure_reason", as: String?.self))
        }
        #expect(try await status(orgA, crashedA) == ("failed", ImportJobRecords.orphanReason))
        #expect(try await status(orgB, crashedB) == ("failed", ImportJobRecords.orphanReason))
        #expect(try await status(orgA, young) == ("running", nil))
        #expect(try await status(orgB, live) == ("running", nil))
    }

    @Test func importedLeadsAndPhonesGetTimeOrderedIDs() async throws {
        let (fixture, options, org) = try await Self.org("Time-ordered ids")
        let job = try await Self.upload(fixture.client, options, Self.crafted)
        // Version 7 (the 13th hex digit), so bulk inserts append to the id indexes.
        let row = try await Self.query(
            fixture.env, org,
            """
            SELECT bool_and(substr(l.id::text, 15, 1) = '7') AS leads, bool_and(substr(p.id::text, 15, 1) = '7') AS phones,
                   count(DISTINCT l.id)::int AS n
            FROM leads l JOIN lead_phones p ON p.lead_id = l.id WHERE l.import_job_id = \(UUIDText(job.id)!)
            """
        ).one()
        #expect(try row.decode("n", as: Int.self) > 0)
        #expect(try row.decode("leads", as: Bool.self))
        #expect(try row.decode("phones", as: Bool.self))
    }

    @Test func bigImportsRefreshTheStatisticsTheAppRoleCannotCompute() async throws {
        let (fixture, _, _) = try await Self.org("Statistics")
        func analyzed() async throws -> Int {
            try await fixture.env.store.withTransaction(tenant: nil) { tx in
                try await tx.query(
                    """
                    SELECT (sum(analyze_count) + sum(autoanalyze_count))::int AS n FROM pg_stat_user_tables
                    WHERE relname IN ('leads', 'lead_phones', 'import_errors', 'consent_records')
                    """
                ).one().decode("n", as: Int.self)
            }
        }
        let before = try await analyzed()
        await LeadImporter(store: fixture.env.store).refreshStatistics()
        // One ANALYZE of each of the four tables (autovacuum may add its own).
        #expect(try await analyzed() >= before + 4)
    }

    @Test func anotherOrgNeverSeesOrMergesIntoTheseLeads() async throws {
        let (fixture, optionsA, orgA) = try await Self.org("Tenant A")
        let (_, optionsB, orgB) = try await Self.org("Tenant B")
        let jobA = try await Self.upload(fixture.client, optionsA, Self.crafted)
        let jobB = try await Self.upload(fixture.client, optionsB, Self.crafted)
        // Same phones, same owners: B's leads are B's own, new, not merged into A's.
        #expect(jobB.newRows == jobA.newRows)
        #expect(jobB.mergedRows == 0)
        for org in [orgA, orgB] {
            #expect(try await Self.query(fixture.env, org, "SELECT count(*) AS n FROM leads").one().decode("n", as: Int.self) == 3)
        }
        var get = GetImportJobRequest()
        get.importJobID = jobA.id
        #expect(await status { try await fixture.client.getImportJob(get, options: optionsB) } == .notFound)
        var watch = WatchImportJobRequest()
        watch.importJobID = jobA.id
        #expect(
            await status { try await fixture.client.watchImportJob(watch, options: optionsB) { stream in for try await _ in stream {} } }
                == .notFound)
        var errors = ListImportErrorsRequest()
        errors.importJobID = jobA.id
        #expect(await status { try await fixture.client.listImportErrors(errors, options: optionsB) } == .notFound)
        let listed = try await fixture.client.listImportJobs(ListImportJobsRequest(), options: optionsB).importJobs
        #expect(listed.map(\.id) == [jobB.id])
    }

    /// A small workbook written by Python's zipfile (deflate): shared strings with rich-text runs
    /// and entities, a number in exponent form, inline and formula strings, a boolean, a gap.
    static let workbook = Base64.decode(
        String(
            """
            UEsDBBQAAAAIAJljel0D0RfEnAAAAMQAAAATAAAAW0NvbnRlbnRfVHlwZXNdLnhtbCWOSw6DMAxE9z1F5D2EdlFVFYFFPyegB7CC+ajBiYhbwe0bytLzZsZT
            1svk1JfmOHo2cMwLUMTWtyP3Bl7NM7uAioLcovNMBlaKUFeHslkDRZXCHA0MIuGqdbQDTRhzH4gT6fw8oaRz7nVA+8ae9Kkoztp6FmLJZOuAqrxThx8n6rEk
            eR+S4qBuu297ZQBDcKNFSVhvVFel/o+oflBLAwQUAAAACACZY3pdwDxdH7wAAAAbAQAADwAAAHhsL3dvcmtib29rLnhtbI1PuW7DMAzd8xUC91puhjYwfCxF
            AAMd2w9QLToWbJEGqV5/X7lO9kwkH/GuuvuJi/lC0cDUwGNRgkEa2Ae6NPD+dn44gdHkyLuFCRv4RYWuPdTfLPMH82wyn7SBKaW1slaHCaPTglek/BlZokv5
            lIvVVdB5nRBTXOyxLJ9sdIFgV6jkHg0exzDgCw+fESntIoKLSzm9TmFVaOt/B71OQy7m1K+bcy6yQb3PPcFIFfIivX8G29b2xrK3Yu0fUEsDBBQAAAAIAJlj
            el3L3R64tQAAACcBAAAaAAAAeGwvX3JlbHMvd29ya2Jvb2sueG1sLnJlbHONzz2OAjEMBeCeU0TuGQ8UgNBkaFYr0a7gAFbi+REzSRQbFm5PKrRIW1DaT/6e
            3Bzu82RunGWMwcKqqsFwcNGPobdwPn0vd2BEKXiaYmALDxY4tIvmhyfSciPDmMQUJIiFQTXtEcUNPJNUMXEoSRfzTFrG3GMid6GecV3XG8x/DWjfTHP0FvLR
            b8GcHok/sWPXjY6/orvOHPSfCvyN+SIDsxaUcs9q4bUS9KRUFROwbfDtv/YJUEsDBBQAAAAIAJljel3LXuSJAAEAAJMBAAAUAAAAeGwvc2hhcmVkU3RyaW5n
            cy54bWxtkM1OwzAQhO88heVKvVEnPVTQOq4QPwcOaSTKhZtJlsRSsg5eJ7Rvj52CCoiL5flGO5pduT10LRvBkbGY8XSRcAZY2spgnfHn/cPlFWfkNVa6tQgZ
            PwLxrbqQRJ6FUaSMN973ayGobKDTtLA9YHDerOu0D9LVgnoHuqIGwHetWCbJSnTaIGelHdBnfMXZgOZ9gNtvrSQZJb3afSA4lusOpPBKikhPTtGEPiz9i6eE
            42/qovG4e5rPlkm6YSfTTdwV4XkVUcfftNOael2GVUNpAjcCV/l8dri72cT56839yzmgaGK0qdE6qL5wZD8K7Z0eDbH/enmVWw90hiJcVX0CUEsDBBQAAAAI
            AJljel1NciZOMQEAAHgCAAAWAAAAeGwvd29ya3NoZWV0cy9kYXRhLnhtbHWSwVKDMBCG7z5FJgdGD21IbGtrQzrV6qk39QFSCJAREibJtPr2botDAcdbNv/+
            P98u4ZuvukJH5by2JsF0GmOkTGozbYoEf7y/TpYY+SBNJitrVIK/lccbccNP1n36UqmAIMD4BJchNI+E+LRUtfRT2ygDSm5dLQOUriC+cUpmF1NdERbHC1JL
            bbDgl7udDBKCnT0hByRwnZ4PW4pRSLCH+ihiTo6Ck/RXe+prdKg99zU21HZ9bd5pBL59JWAdAet1348IWJsxpWy5eFjFMX1ZjTj67tmIo9W0qbRRb8FBj/aC
            ByFRVIX1ISrCGkWybtYo5SSA8yz/RZ11qLN/ArfGoL1Sw5B2gtbiL8252MIa8zPq7ZyyOwRDTWCq8f5az2G09yHUHBMoyPXfctI9GvEDUEsBAhQDFAAAAAgA
            mWN6XQPRF8ScAAAAxAAAABMAAAAAAAAAAAAAAIABAAAAAFtDb250ZW50X1R5cGVzXS54bWxQSwECFAMUAAAACACZY3pdwDxdH7wAAAAbAQAADwAAAAAAAAAA
            AAAAgAHNAAAAeGwvd29ya2Jvb2sueG1sUEsBAhQDFAAAAAgAmWN6XcvdHri1AAAAJwEAABoAAAAAAAAAAAAAAIABtgEAAHhsL19yZWxzL3dvcmtib29rLnht
            bC5yZWxzUEsBAhQDFAAAAAgAmWN6Xcte5IkAAQAAkwEAABQAAAAAAAAAAAAAAIABowIAAHhsL3NoYXJlZFN0cmluZ3MueG1sUEsBAhQDFAAAAAgAmWN6XU1y
            Jk4xAQAAeAIAABYAAAAAAAAAAAAAAIAB1QMAAHhsL3dvcmtzaGVldHMvZGF0YS54bWxQSwUGAAAAAAUABQBMAQAAOgUAAAAA
            """.filter { !$0.isWhitespace }))!

    @Test func xlsxWorkbooksImportTheirFirstSheet() async throws {
        #expect(
            try XLSXSheetReader.rows(Self.workbook) == [
                ["Owner Name", "Phone 1", "County", "Notes"], ["JOSÉ NÚÑEZ", "5128679001", "Travis County", "a <b> & c"],
                // Row 3 is absent from the sheet; row 5 is empty.
                ["Ann Lee", "(512) 867-9002", "", "TRUE"], [],
            ])
        let (fixture, options, org) = try await Self.org()
        var header = Self.header("leads.xlsx")
        header.format = .xlsx
        let job = try await Self.upload(fixture.client, options, Self.workbook, chunkSize: 500, header: header)
        #expect(job.status == .completed)
        #expect(job.format == .xlsx)
        #expect(job.totalRows == 2)
        #expect(job.newRows == 2)
        let leads = try await Self.query(
            fixture.env, org,
            "SELECT l.owner_name, l.county, p.phone::text AS phone FROM leads l JOIN lead_phones p ON p.lead_id = l.id ORDER BY p.phone")
        #expect(try leads.map { try $0.decode("owner_name", as: String.self) } == ["José Núñez", "Ann Lee"])
        #expect(try leads.map { try $0.decode("phone", as: String.self) } == ["+15128679001", "+15128679002"])
        #expect(try leads[0].decode("county", as: String.self) == "Travis")

        let notAWorkbook = await status {
            try await Self.upload(fixture.client, options, Array("Name,Phone\nA,5128679003\n".utf8), header: header)
        }
        #expect(notAWorkbook == .invalidArgument)
    }

    @Test func suggestionPreviewsTheMapping() async throws {
        let (fixture, options, _) = try await Self.org()
        var request = SuggestColumnMappingRequest()
        request.sample = Array("\u{FEFF}Owner Name,Cell Phone,Phone 2,Phone 2 Type,Mailing State,Parcel #,Notes\r\nA,B".utf8)
        let response = try await fixture.client.suggestColumnMapping(request, options: options)
        #expect(response.columnMapping.map(\.field) == [.fullName, .phone1, .phone2, .phone2Type, .mailingState, .apn, .custom])
        #expect(response.columnMapping[1].phoneType == .mobile)
        #expect(response.columnMapping.map(\.column).first == "Owner Name")
    }
}

@Suite("CSV reader")
struct CSVReaderTests {
    static func read(_ text: String, chunk: Int) throws -> [[String]] {
        let bytes = Array(text.utf8)
        var reader = CSVReader()
        var rows: [[String]] = []
        var i = 0
        while i < bytes.count {
            try reader.feed(Array(bytes[i..<min(i + chunk, bytes.count)])) { rows.append($0) }
            i += chunk
        }
        try reader.finish { rows.append($0) }
        return rows
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func rfc4180AtAnySplit(_ chunk: Int) throws {
        let text = "\u{FEFF}a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\n1,,3\r4,5\n\"é\",ü,"
        #expect(
            try Self.read(text, chunk: chunk) == [
                ["a", "b", "c"], ["x, y", "say \"hi\"", "two\r\nlines"], ["1", "", "3"], ["4", "5"], ["é", "ü", ""],
            ])
    }

    /// Sloppy files: text after a closing quote is kept, a quote inside a plain field is a
    /// character, and a closing quote is followed by the same delimiters as a plain field.
    @Test(arguments: [1, 2, 5, 1000])
    func lenientWhereFilesAreSloppy(_ chunk: Int) throws {
        let text = "\"ab\"cd,x\"y,\"q\"\r\n\"r\"\n\"s\",\"\"\r\"t\""
        #expect(try Self.read(text, chunk: chunk) == [["abcd", "x\"y", "q"], ["r"], ["s", ""], ["t"]])
    }

    @Test func aMarkOnlyAtTheStartIsSkipped() throws {
        #expect(try Self.read("\u{FEFF}", chunk: 1) == [])
        #expect(try Self.read("ïx", chunk: 1) == [["ïx"]])
        // The first bytes of a mark that turns out not to be one are data.
        var reader = CSVReader()
        var rows: [[String]] = []
        try reader.feed([0xEF, 0xBB]) { rows.append($0) }
        try reader.feed([0x41, 0x0A]) { rows.append($0) }
        #expect(rows == [[String(decoding: [0xEF, 0xBB, 0x41] as [UInt8], as: UTF8.self)]])
        #expect(try Self.read("a,\u{FEFF}b", chunk: 2) == [["a", "\u{FEFF}b"]])
    }

    @Test func anUnclosedQuoteCannotBufferTheWholeFile() {
        var reader = CSVReader(maxRowBytes: 100)
        #expect(throws: CSVReader.RowTooLong(row: 2, limit: 100)) {
            try reader.feed(Array(("ok\n\"" + String(repeating: "z", count: 200)).utf8)) { _ in }
        }
    }
}
