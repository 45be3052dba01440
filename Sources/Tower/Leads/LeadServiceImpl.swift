import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStandardServices
import TowerStore

/// LeadService: imports (upload, progress, row errors) and, through the same tenancy, every
/// lead read and write.
public struct LeadServiceImpl: LeadService.ServiceProtocol {
    let tenancy: Tenancy
    let importer: LeadImporter

    public init(store: Store) {
        tenancy = Tenancy(store: store)
        importer = LeadImporter(store: store)
    }

    // MARK: Import

    static func validate(header: ImportHeader) throws -> LeadImporter.Upload {
        var violations: [FieldViolationInput] = []
        let fileName = header.fileName.trimmingCharacters(in: .whitespacesAndNewlines)
        if fileName.isEmpty || fileName.count > 255 { violations.append(("header.file_name", "must be 1 to 255 characters")) }
        switch header.format {
        case .csv, .unspecified, .xlsx: break
        default: violations.append(("header.format", "must be IMPORT_FORMAT_CSV or IMPORT_FORMAT_XLSX"))
        }
        for (i, entry) in header.columnMapping.enumerated() where entry.field == .unspecified {
            violations.append(("header.column_mapping[\(i)].field", "choose a LeadField (LEAD_FIELD_IGNORE skips the column)"))
        }
        if let consent = header.consent {
            if consent.source.trimmingCharacters(in: .whitespaces).isEmpty || consent.source.count > 500 {
                violations.append(("header.consent.source", "say how consent was collected, e.g. \"web form\" (1 to 500 characters)"))
            }
            if consent.sellerName.trimmingCharacters(in: .whitespaces).isEmpty || consent.sellerName.count > 200 {
                violations.append(("header.consent.seller_name", "name the seller the leads agreed to hear from (1 to 200 characters)"))
            }
            if consent.disclosureVersion.count > 100 {
                violations.append(("header.consent.disclosure_version", "at most 100 characters"))
            }
            if !consent.ipAddress.isEmpty, !Self.isIPAddress(consent.ipAddress) {
                violations.append(("header.consent.ip_address", "must be an IPv4 or IPv6 address such as 203.0.113.7"))
            }
            if consent.formURL.count > 2000 { violations.append(("header.consent.form_url", "at most 2000 characters")) }
        }
        try throwIfInvalid(violations)
        return LeadImporter.Upload(fileName: fileName, format: header.format == .xlsx ? "xlsx" : "csv", consent: header.consent)
    }

    static func isIPAddress(_ text: String) -> Bool {
        let v4 = text.split(separator: ".", omittingEmptySubsequences: false)
        if v4.count == 4, v4.allSatisfy({ part in part.count <= 3 && Int(part).map { (0...255).contains($0) } == true }) {
            return true
        }
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        return text.contains(":") && groups.count <= 8 && groups.count >= 3
            && groups.allSatisfy { $0.count <= 4 && $0.allSatisfy(\.isHexDigit) }
    }

    /// The plan for a header row: the caller's mapping, else the suggestion (which must find a phone).
    static func plan(headers: [String], mapping: [ColumnMappingEntry]) throws -> LeadImportPlan {
        guard !mapping.isEmpty else {
            let plan = LeadImportPlan.suggested(headers: headers)
            guard plan.hasPhone else {
                throw DomainError.invalid(
                    "header.column_mapping",
                    "no column header looks like a phone number (e.g. \"Phone 1\", \"Cell\"); send a column_mapping that maps your phone column to LEAD_FIELD_PHONE_1"
                )
            }
            return plan
        }
        let requests = mapping.map { entry -> LeadImportPlan.Request in
            let target: LeadImportPlan.Target
            switch entry.field {
            case .ignore: target = .ignore
            case .custom:
                target = .custom(
                    LeadImportPlan.customKey(header: entry.column.split(whereSeparator: \.isWhitespace).joined(separator: " ")))
            default:
                let field = LeadFieldMapping.field(entry.field) ?? .firstName
                let kind = LeadFieldMapping.kind(entry.phoneType) ?? LeadImportPlan.phoneKind(field, entry.column)
                target = .field(field, phoneKind: [.phone1, .phone2, .phone3].contains(field) ? kind : nil)
            }
            return LeadImportPlan.Request(column: entry.column, target: target)
        }
        do {
            return try LeadImportPlan.resolve(headers: headers, requests: requests, path: "header.column_mapping")
        } catch {
            throw DomainError.invalid(error.problems.map { FieldViolation(field: $0.field, description: $0.fix) })
        }
    }

    public func importLeads(requests: RequestStream<ImportLeadsRequest>, context: ServerContext) async throws -> ImportJob {
        let principal = try RequestPrincipal.required()
        var iterator = requests.makeAsyncIterator()
        guard case .header(let header)? = try await iterator.next()?.payload else {
            throw DomainError.invalid("header", "the first message of an upload must carry the ImportHeader (file name, format, mapping)")
        }
        let upload = try Self.validate(header: header)
        let chunks = ChunkReader(iterator: iterator)
        let rows = header.format == .xlsx ? try await Self.spreadsheetRows(chunks) : UploadRows(nextChunk: { try await chunks.next() })
        let plan = try await rows.headerRow().map { try Self.plan(headers: LeadImportPlan.headers($0), mapping: header.columnMapping) }
        let jobID = try await importer.createJob(principal, upload: upload, plan: plan, context: context)
        return try await importer.run(principal, jobID: jobID, upload: upload, plan: plan, rows: rows)
    }

    static let spreadsheetLimit = 20 << 20

    /// The whole workbook, read into memory (a zip's directory is at its end), then its first sheet.
    static func spreadsheetRows(_ chunks: ChunkReader) async throws -> UploadRows {
        var file: [UInt8] = []
        while let chunk = try await chunks.next() {
            file += chunk
            guard file.count <= spreadsheetLimit else {
                throw DomainError.invalid("header.format", "an .xlsx upload may be at most 20 MiB; save the sheet as CSV and upload that")
            }
        }
        guard !file.isEmpty else { return UploadRows(rows: []) }
        do {
            return UploadRows(rows: try XLSXSheetReader.rows(file))
        } catch {
            throw DomainError.invalid("chunk", "the file is not a readable .xlsx workbook: \(error.reason); upload it as CSV instead")
        }
    }

    public func suggestColumnMapping(request: SuggestColumnMappingRequest, context: ServerContext) async throws
        -> SuggestColumnMappingResponse
    {
        var headers = request.headers
        if headers.isEmpty, !request.sample.isEmpty {
            var reader = CSVReader()
            var first: [String]?
            do {
                try reader.feed(request.sample) { row in if first == nil, !LeadRowNormalizer.isBlank(row) { first = row } }
                if first == nil { try reader.finish { row in if first == nil { first = row } } }
            } catch {
                throw DomainError.invalid("sample", "the first row is longer than 1 MiB; send the header row only")
            }
            headers = first ?? []
        }
        guard !headers.isEmpty else { throw DomainError.invalid("headers", "send the header row's cells, or a sample of the file") }
        var response = SuggestColumnMappingResponse()
        response.columnMapping = ImportJobRecords.entries(LeadImportPlan.suggested(headers: LeadImportPlan.headers(headers)))
        return response
    }

    public func getImportJob(request: GetImportJobRequest, context: ServerContext) async throws -> ImportJob {
        let id = try IdentityRecords.id(request.importJobID, field: "import_job_id")
        return try await tenancy.transaction(context) { tx, _ in
            guard let job = try await ImportJobRecords.read(tx, id: id) else {
                throw DomainError.notFound("import job", request.importJobID)
            }
            return job
        }
    }

    public func listImportJobs(request: ListImportJobsRequest, context: ServerContext) async throws -> ListImportJobsResponse {
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        return try await tenancy.transaction(context) { tx, _ in
            var after: SQL = ""
            if let cursor {
                let (micros, id) = try cursor.timeKey()
                after = "WHERE (j.created_at, j.id) < (\(micros) * interval '1 microsecond' + 'epoch'::timestamptz, \(id))"
            }
            let rows = try await tx.query(
                "SELECT \(unsafeRaw: ImportJobRecords.columns) FROM import_jobs j \(after) ORDER BY j.created_at DESC, j.id DESC LIMIT \(PageCursor.fetchLimit(size))"
            )
            var response = ListImportJobsResponse()
            let page = KeysetPage(rows, size: size)
            for row in page.rows {
                var job = try ImportJobRecords.job(row)
                if job.status == .running || job.status == .pending, let id = UUIDText(job.id) {
                    job = try await ImportJobRecords.read(tx, id: id) ?? job
                }
                response.importJobs.append(job)
            }
            response.page = try page.info {
                PageCursor(sortKey: String(try $0.decode("created_us", as: Int64.self)), id: try $0.decode("id", as: String.self))
            }
            return response
        }
    }

    public func watchImportJob(request: WatchImportJobRequest, responses: ResponseStreamWriter<ImportJob>, context: ServerContext)
        async throws
    {
        let id = try IdentityRecords.id(request.importJobID, field: "import_job_id")
        let read = { () async throws -> ImportJob in
            try await tenancy.transaction(context) { tx, _ in
                guard let job = try await ImportJobRecords.read(tx, id: id) else {
                    throw DomainError.notFound("import job", request.importJobID)
                }
                return job
            }
        }
        var job = try await read()
        try await responses.write(job)
        if ImportJobRecords.isTerminal(job.status) { return }
        // Woken by the importer's NOTIFY; a slow tick also notices a job whose server died.
        let listener = try await tenancy.store.listen(to: ["ctower_import_progress"])
        defer { listener.stop() }
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let forward = Task {
            for await note in listener where note.payload == id.text || note.isReconnect { wake.yield() }
        }
        let tick = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                wake.yield()
            }
        }
        defer {
            forward.cancel()
            tick.cancel()
            wake.finish()
        }
        // The job may have moved between the first read and LISTEN.
        wake.yield()
        for await _ in wakeups {
            let next = try await read()
            if next != job {
                job = next
                try await responses.write(job)
            }
            if ImportJobRecords.isTerminal(job.status) { return }
        }
    }

    public func listImportErrors(request: ListImportErrorsRequest, context: ServerContext) async throws -> ListImportErrorsResponse {
        let id = try IdentityRecords.id(request.importJobID, field: "import_job_id")
        let size = try PageCursor.size(request.page)
        let cursor = try PageCursor.decode(request.page)
        var after: SQL = ""
        if let cursor {
            guard let row = Int64(cursor.sortKey), let seq = Int32(cursor.id) else { throw PageCursor.invalidToken() }
            after = "AND (e.row_number, e.seq) > (\(row), \(seq))"
        }
        return try await tenancy.transaction(context, readOnly: true) { tx, _ in
            guard try await tx.query("SELECT 1 FROM import_jobs WHERE id = \(id)").firstRow != nil else {
                throw DomainError.notFound("import job", request.importJobID)
            }
            let rows = try await tx.query(
                """
                SELECT e.row_number, e.seq, e.column_name, e.reason FROM import_errors e
                WHERE e.import_job_id = \(id) \(after) ORDER BY e.row_number, e.seq LIMIT \(PageCursor.fetchLimit(size))
                """)
            var response = ListImportErrorsResponse()
            let page = KeysetPage(rows, size: size)
            for row in page.rows {
                var error = ImportError()
                error.rowNumber = try row.decode("row_number", as: Int64.self)
                error.column = try row.decode("column_name", as: String.self)
                error.reason = try row.decode("reason", as: String.self)
                response.errors.append(error)
            }
            response.page = try page.info {
                PageCursor(sortKey: String(try $0.decode("row_number", as: Int64.self)), id: String(try $0.decode("seq", as: Int32.self)))
            }
            return response
        }
    }
}

/// The byte chunks after an upload's header message.
final class ChunkReader {
    private var iterator: RequestStream<ImportLeadsRequest>.AsyncIterator

    init(iterator: RequestStream<ImportLeadsRequest>.AsyncIterator) { self.iterator = iterator }

    func next() async throws -> [UInt8]? {
        while let message = try await iterator.next() {
            switch message.payload {
            case .chunk(let bytes): return bytes
            case .header:
                throw DomainError.invalid("header", "only the first message of an upload may carry a header; send the file as chunks")
            case nil: continue
            }
        }
        return nil
    }
}
