import Foundation
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

/// Rows of an upload, read incrementally: the CSV parser runs over each chunk as it arrives and
/// holds at most one chunk's rows, so memory stays bounded whatever the file's size.
final class UploadRows {
    private let nextChunk: () async throws -> [UInt8]?
    private var reader = CSVReader()
    private var ready: [[String]] = []
    private var readyIndex = 0
    private var finished = false
    /// Data rows handed out so far (blank rows are skipped and not counted).
    private(set) var dataRows = 0
    private var headerRead = false

    init(nextChunk: @escaping () async throws -> [UInt8]?) {
        self.nextChunk = nextChunk
    }

    /// Rows read already (a spreadsheet, which cannot be read as a stream).
    init(rows: [[String]]) {
        nextChunk = { nil }
        ready = rows
        finished = true
    }

    private func nextRawRow() async throws -> [String]? {
        while readyIndex == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyIndex = 0
            if finished { return nil }
            do {
                if let chunk = try await nextChunk() {
                    try reader.feed(chunk) { ready.append($0) }
                } else {
                    finished = true
                    try reader.finish { ready.append($0) }
                }
            } catch let error as CSVReader.RowTooLong {
                throw DomainError.invalid(
                    "chunk",
                    "row \(error.row) of the file is longer than \(error.limit / 1024) KiB; a quoted field is probably never closed (check for a stray \")"
                )
            }
        }
        defer { readyIndex += 1 }
        return ready[readyIndex]
    }

    /// The header row (the first non-blank row), or nil for an empty file.
    func headerRow() async throws -> [String]? {
        precondition(!headerRead, "the header row is read once, first")
        headerRead = true
        while let row = try await nextRawRow() {
            if !LeadRowNormalizer.isBlank(row) { return row }
        }
        return nil
    }

    /// The next non-blank data row.
    func nextDataRow() async throws -> [String]? {
        while let row = try await nextRawRow() {
            if !LeadRowNormalizer.isBlank(row) {
                dataRows += 1
                return row
            }
        }
        return nil
    }
}

/// The bulk path of ImportLeads: rows are normalised in Swift and streamed with `COPY` into a
/// transaction-local staging table; dedupe, merge and inserts are a fixed number of set-based
/// statements, whatever the file's size (see the merge rule on `ImportJob` in lead.proto).
struct LeadImporter: Sendable {
    let store: Store

    /// What the upload's header said, validated.
    struct Upload: Sendable {
        var fileName: String
        var format = "csv"
        var consent: ConsentDeclaration?
    }

    static let progressEvery = 50_000

    /// Columns of the staging table, in COPY order.
    static let stagingColumns = """
        row_number bigint NOT NULL, valid boolean NOT NULL,
        first_name text, last_name text, owner_name text,
        mailing_address text, mailing_city text, mailing_state text, mailing_zip text,
        property_address text, property_city text, property_state text, property_zip text,
        county text, apn text, acreage numeric, custom_fields jsonb,
        phone1 text, type1 text, phone2 text, type2 text, phone3 text, type3 text,
        consent_source text, consent_time timestamptz, problems jsonb
        """

    static func copyValues(rowNumber: Int, _ row: LeadRowNormalizer.Row) -> [String?] {
        var values: [String?] = [
            String(rowNumber), row.isValid ? "t" : "f",
            row.firstName, row.lastName, row.ownerName,
            row.mailingAddress, row.mailingCity, row.mailingState, row.mailingZip,
            row.propertyAddress, row.propertyCity, row.propertyState, row.propertyZip,
            row.county, row.apn, row.acreage,
            row.customFields.isEmpty ? nil : LeadRowNormalizer.customFieldsJSON(row.customFields),
        ]
        for slot in 0..<3 {
            let phone = slot < row.phones.count ? row.phones[slot] : nil
            values.append(phone?.e164)
            values.append(phone?.type)
        }
        values.append(row.consentSource)
        values.append(row.consentTime)
        values.append(row.problems.isEmpty ? nil : LeadRowNormalizer.problemsJSON(row.problems))
        return values
    }

    /// Creates the job, committed at once so WatchImportJob sees it, as running: the import
    /// transaction takes the job's lock next (a reader gives it a grace period to do so).
    func createJob(_ principal: RequestPrincipal, upload: Upload, plan: LeadImportPlan?, context: ServerContext?) async throws -> String {
        let consentJSON = upload.consent.map(Self.consentJSON)
        return try await store.withTransaction(tenant: principal.orgID, user: principal.userID, deadline: context?.deadline) { tx in
            let id = try await tx.query(
                """
                INSERT INTO import_jobs (org_id, created_by, file_name, format, column_mapping, consent, consent_source, status, started_at)
                VALUES (\(principal.orgID), \(principal.userID), \(upload.fileName), \(upload.format),
                        \(plan.map(ImportJobRecords.json) ?? "[]")::jsonb, \(consentJSON)::jsonb, \(upload.consent?.source), 'running', now())
                RETURNING id::text AS id
                """
            ).one().decode("id", as: String.self)
            try await Audit.record(
                tx, principal, action: "lead_import.create", targetType: "import_job", targetID: id,
                details: .object([("file_name", .string(upload.fileName)), ("consent_declared", .bool(upload.consent != nil))]))
            return id
        }
    }

    static func consentJSON(_ consent: ConsentDeclaration) -> String {
        var members: [(String, JSONValue)] = [("source", .string(consent.source)), ("seller_name", .string(consent.sellerName))]
        if !consent.disclosureVersion.isEmpty { members.append(("disclosure_version", .string(consent.disclosureVersion))) }
        if !consent.ipAddress.isEmpty { members.append(("ip_address", .string(consent.ipAddress))) }
        if !consent.formURL.isEmpty { members.append(("form_url", .string(consent.formURL))) }
        if let time = consent.consentTime { members.append(("consent_time", .string(Self.iso(time)))) }
        return JSONValue.object(members).serialized()
    }

    static func iso(_ time: Google_Protobuf_Timestamp) -> String {
        Date(timeIntervalSince1970: Double(time.seconds) + Double(time.nanos) / 1e9).formatted(.iso8601)
    }

    /// Runs the import of `rows` (positioned after the header row) into job `jobID`. On failure the
    /// import transaction is rolled back and the job marked failed with the reason.
    func run(
        _ principal: RequestPrincipal, jobID: String, upload: Upload, plan: LeadImportPlan?, rows: UploadRows
    ) async throws -> ImportJob {
        do {
            let job = try await importRows(principal, jobID: jobID, upload: upload, plan: plan, rows: rows)
            if job.newRows + job.mergedRows >= Self.analyzeAfterRows { await refreshStatistics() }
            return job
        } catch {
            let reason: String
            switch error {
            case let error as DomainError: reason = error.message
            case let error as StoreError: reason = error.rpcError.message
            default: reason = "the import stopped: \(error)"
            }
            // Recorded even when the caller is gone: an unstructured task does not inherit the
            // handler's cancellation, and its transaction has no deadline.
            let store = store
            await Task {
                _ = try? await store.withTransaction(tenant: principal.orgID, user: principal.userID) { tx in
                    try await tx.execute(
                        """
                        UPDATE import_jobs SET status = 'failed', failure_reason = \(reason), finished_at = now(),
                            started_at = coalesce(started_at, now())
                        WHERE id = \(UUIDText(jobID)!) AND status IN ('pending', 'running')
                        """)
                    try await tx.notify(channel: "ctower_import_progress", payload: jobID)
                }
            }.value
            throw error
        }
    }

    /// Imports that write at least this many leads refresh the statistics of the tables they
    /// wrote before answering, so the next plans (a campaign's targets, the gate's probes) see
    /// the new rows instead of the estimates of a smaller table.
    static let analyzeAfterRows = 1_000

    /// ANALYZE of the tables imports write, run by the owner (the app role may not): a fixed
    /// list in `ctower_analyze_imported_tables()`. Best effort; autovacuum catches up otherwise.
    func refreshStatistics() async {
        _ = try? await store.withTransaction(tenant: nil) { tx in
            try await tx.execute("SELECT ctower_analyze_imported_tables()")
        }
    }

    /// Publishes how many rows have been read. Best effort: it waits at most a moment for a pooled
    /// connection, because the import itself holds one and many concurrent imports must not
    /// starve each other of the second.
    private func progress(_ principal: RequestPrincipal, jobID: String, rows: Int) async {
        _ = try? await store.withTransaction(
            tenant: principal.orgID, user: principal.userID, deadline: .now + .milliseconds(200)
        ) { tx in
            try await tx.execute("UPDATE import_jobs SET total_rows = \(rows) WHERE id = \(UUIDText(jobID)!) AND status = 'running'")
            try await tx.notify(channel: "ctower_import_progress", payload: jobID)
        }
    }

    private func importRows(
        _ principal: RequestPrincipal, jobID: String, upload: Upload, plan: LeadImportPlan?, rows: UploadRows
    ) async throws -> ImportJob {
        let job = UUIDText(jobID)!
        let org = principal.orgID
        var attempted = false
        return try await store.withTransaction(tenant: principal.orgID, user: principal.userID) { tx in
            // The upload can be read once: a retried transaction cannot replay it.
            guard !attempted else {
                throw DomainError(.aborted, "the import conflicted with a concurrent change and was rolled back; upload the file again")
            }
            attempted = true
            try await tx.execute("SELECT pg_advisory_xact_lock(\(ImportJobRecords.lockKey(jobID)))")
            // One import at a time per org: each dedupes against the leads the previous ones saved.
            try await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('ctower_import_org:' || \(org.description), 0))")
            // A reader may have failed the job while this transaction waited for a connection.
            let status = try await tx.query("SELECT status FROM import_jobs WHERE id = \(job)").firstRow?.decode("status", as: String.self)
            guard status == "running" else {
                throw DomainError(.aborted, "the import job was stopped before it started; upload the file again")
            }

            // The merge's sorts and hashes span the whole file: memory instead of temp files, and
            // no JIT compilation (its cost is paid per statement and never pays back here).
            try await tx.execute("SET LOCAL work_mem = '64MB'", prepared: false)
            try await tx.execute("SET LOCAL jit = off", prepared: false)
            try await tx.execute(
                "CREATE TEMP TABLE ctower_import_rows (\(unsafeRaw: Self.stagingColumns)) ON COMMIT DROP", prepared: false)
            if let plan {
                let normalizer = LeadRowNormalizer(plan: plan)
                let staged = StagingBytes(rows: rows, normalizer: normalizer) { count in
                    await progress(principal, jobID: jobID, rows: count)
                }
                try await tx.copyIn("COPY ctower_import_rows FROM STDIN", from: staged)
            }
            await progress(principal, jobID: jobID, rows: rows.dataRows)
            // Only what the merge's joins and filters read: statistics of the text and jsonb
            // columns cost more than the rest of the merge's planning is worth.
            try await tx.execute("ANALYZE ctower_import_rows (row_number, valid, phone1, phone2, phone3)", prepared: false)
            let counts = try await merge(tx, org: org, job: job, consent: upload.consent)
            guard
                let row = try await tx.query(
                    """
                    UPDATE import_jobs j SET status = 'completed', finished_at = now(), total_rows = \(counts.total),
                        new_rows = \(counts.new), merged_rows = \(counts.merged), imported_rows = \(counts.new + counts.merged),
                        duplicate_rows = \(counts.duplicate), error_rows = \(counts.invalid),
                        error_count = (SELECT count(*) FROM import_errors e WHERE e.import_job_id = j.id)
                    WHERE j.id = \(job)
                    RETURNING \(unsafeRaw: ImportJobRecords.columns)
                    """
                ).firstRow
            else { throw DomainError.notFound("import job", jobID) }
            try await tx.notify(channel: "ctower_import_progress", payload: jobID)
            let result = try ImportJobRecords.job(row)
            try await Audit.record(
                tx, principal, action: "lead_import.complete", targetType: "import_job", targetID: jobID,
                details: .object([
                    ("total_rows", .number(String(counts.total))), ("new_rows", .number(String(counts.new))),
                    ("merged_rows", .number(String(counts.merged))), ("duplicate_rows", .number(String(counts.duplicate))),
                    ("invalid_rows", .number(String(counts.invalid))),
                ]))
            return result
        }
    }

    struct Counts: Sendable {
        var total = 0, new = 0, merged = 0, duplicate = 0, invalid = 0
    }

    /// Dedupe, merge and insert, set-based. Temp tables drop at commit.
    private func merge(_ tx: Transaction, org: OrgID, job: UUIDText, consent: ConsentDeclaration?) async throws -> Counts {
        // Dedupe keys: each phone, and owner + property.
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_keys ON COMMIT DROP AS
            SELECT r.row_number AS r, k.key FROM ctower_import_rows r
            CROSS JOIN LATERAL (VALUES (r.phone1), (r.phone2), (r.phone3),
                ('o:' || ctower_lead_owner_key(r.owner_name, r.first_name, r.last_name, r.property_address, r.apn))) AS k(key)
            WHERE r.valid AND k.key IS NOT NULL
            """, prepared: false)
        // Every valid row starts as its own group; rows linked through shared keys (by any chain)
        // end in the group of the lowest row number.
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_groups ON COMMIT DROP AS
            SELECT row_number AS r, row_number AS g FROM ctower_import_rows WHERE valid
            """, prepared: false)
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_shared ON COMMIT DROP AS
            SELECT k.r, k.key FROM ctower_import_keys k
            JOIN (SELECT key FROM ctower_import_keys GROUP BY key HAVING count(*) > 1) s USING (key)
            """, prepared: false)
        try await tx.execute("ANALYZE ctower_import_shared", prepared: false)
        var rounds = 0
        while true {
            rounds += 1
            let changed = try await tx.execute(
                """
                WITH key_min AS (
                    SELECT s.key, min(g.g) AS g FROM ctower_import_shared s JOIN ctower_import_groups g USING (r) GROUP BY s.key
                ), row_min AS (
                    SELECT s.r, min(k.g) AS g FROM ctower_import_shared s JOIN key_min k USING (key) GROUP BY s.r
                )
                UPDATE ctower_import_groups t SET g = m.g FROM row_min m WHERE t.r = m.r AND m.g < t.g
                """, prepared: false)
            if changed == 0 || rounds > 100 { break }
        }
        // One target lead per group: the earliest-created existing lead it matches, else a new one.
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_targets ON COMMIT DROP AS
            WITH matches AS (
                SELECT g.g, l.id, l.created_at
                FROM ctower_import_keys k JOIN ctower_import_groups g USING (r)
                JOIN lead_phones p ON p.phone = k.key JOIN leads l ON l.id = p.lead_id
                WHERE k.key LIKE '+%'
                UNION ALL
                SELECT g.g, l.id, l.created_at
                FROM ctower_import_keys k JOIN ctower_import_groups g USING (r)
                JOIN leads l ON l.owner_key = substr(k.key, 3)
                WHERE k.key LIKE 'o:%'
            ), best AS (
                SELECT DISTINCT ON (g) g, id FROM matches ORDER BY g, created_at, id
            )
            SELECT gg.g, coalesce(b.id, ctower_uuid_v7()) AS lead_id, b.id IS NOT NULL AS existing, gg.n
            FROM (SELECT g, count(*) AS n FROM ctower_import_groups GROUP BY g) gg LEFT JOIN best b USING (g)
            """, prepared: false)
        try await tx.execute("ANALYZE ctower_import_targets", prepared: false)

        var counts = Counts()
        let rowCounts = try await tx.query(
            "SELECT count(*) AS total, count(*) FILTER (WHERE NOT valid) AS invalid FROM ctower_import_rows", prepared: false
        ).one()
        counts.total = try rowCounts.decode("total", as: Int.self)
        counts.invalid = try rowCounts.decode("invalid", as: Int.self)
        let targetCounts = try await tx.query(
            """
            SELECT count(*) FILTER (WHERE NOT existing) AS new, count(*) FILTER (WHERE existing) AS merged FROM ctower_import_targets
            """, prepared: false
        ).one()
        counts.new = try targetCounts.decode("new", as: Int.self)
        counts.merged = try targetCounts.decode("merged", as: Int.self)
        counts.duplicate = counts.total - counts.invalid - counts.new - counts.merged

        let declared = consent != nil
        let phoneConsent = declared ? "granted" : "unknown"
        let leadColumns =
            "first_name, last_name, owner_name, mailing_address, mailing_city, mailing_state, mailing_zip, property_address, property_city, property_state, property_zip, county, apn, acreage"

        // The common case, a row that is a lead of its own: straight from the staging row.
        try await tx.execute(
            """
            INSERT INTO leads (id, org_id, \(unsafeRaw: leadColumns), custom_fields, source, import_job_id)
            SELECT t.lead_id, \(org), \(unsafeRaw: leadColumns.split(separator: ",").map { "r." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
                   coalesce(r.custom_fields, '{}'), 'import', \(job)
            FROM ctower_import_targets t JOIN ctower_import_rows r ON r.row_number = t.g
            WHERE NOT t.existing AND t.n = 1
            -- In key order: consecutive index insertions land on neighbouring pages.
            ORDER BY t.lead_id
            """, prepared: false)
        try await tx.execute(
            """
            INSERT INTO lead_phones (org_id, lead_id, position, phone, phone_type, consent_status)
            SELECT \(org), t.lead_id, p.slot, p.phone, p.type, \(phoneConsent)
            FROM ctower_import_targets t JOIN ctower_import_rows r ON r.row_number = t.g
            CROSS JOIN LATERAL (VALUES (1, r.phone1, r.type1), (2, r.phone2, r.type2), (3, r.phone3, r.type3)) AS p(slot, phone, type)
            WHERE NOT t.existing AND t.n = 1 AND p.phone IS NOT NULL
            ORDER BY t.lead_id, p.slot
            """, prepared: false)

        // Groups of several rows, and rows matching existing leads: merged field by field.
        let firstWins = leadColumns.split(separator: ",").map { column in
            let c = column.trimmingCharacters(in: .whitespaces)
            return "(array_agg(r.\(c) ORDER BY r.row_number) FILTER (WHERE r.\(c) IS NOT NULL))[1] AS \(c)"
        }.joined(separator: ",\n")
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_merged ON COMMIT DROP AS
            SELECT t.lead_id, bool_or(t.existing) AS existing, \(unsafeRaw: firstWins),
                   ctower_jsonb_merge_first_wins(r.custom_fields ORDER BY r.row_number) AS custom_fields
            FROM ctower_import_targets t JOIN ctower_import_groups g USING (g) JOIN ctower_import_rows r ON r.row_number = g.r
            WHERE t.existing OR t.n > 1
            GROUP BY t.lead_id
            """, prepared: false)
        try await tx.execute(
            """
            INSERT INTO leads (id, org_id, \(unsafeRaw: leadColumns), custom_fields, source, import_job_id)
            SELECT m.lead_id, \(org), \(unsafeRaw: leadColumns), m.custom_fields, 'import', \(job)
            FROM ctower_import_merged m WHERE NOT m.existing
            """, prepared: false)
        let keepExisting = leadColumns.split(separator: ",").map { column in
            let c = column.trimmingCharacters(in: .whitespaces)
            return c == "acreage" ? "acreage = coalesce(l.acreage, m.acreage)" : "\(c) = coalesce(nullif(l.\(c), ''), m.\(c))"
        }.joined(separator: ", ")
        try await tx.execute(
            """
            UPDATE leads l SET \(unsafeRaw: keepExisting), custom_fields = m.custom_fields || l.custom_fields
            FROM ctower_import_merged m WHERE m.existing AND l.id = m.lead_id
            """, prepared: false)

        // Their phones: distinct per lead in row, then column order; appended to free positions.
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_phones ON COMMIT DROP AS
            SELECT DISTINCT ON (t.lead_id, p.phone) t.lead_id, p.phone, p.type, r.row_number, p.slot, r.consent_source, r.consent_time
            FROM ctower_import_targets t JOIN ctower_import_groups g USING (g) JOIN ctower_import_rows r ON r.row_number = g.r
            CROSS JOIN LATERAL (VALUES (1, r.phone1, r.type1), (2, r.phone2, r.type2), (3, r.phone3, r.type3)) AS p(slot, phone, type)
            WHERE (t.existing OR t.n > 1) AND p.phone IS NOT NULL
            ORDER BY t.lead_id, p.phone, r.row_number, p.slot
            """, prepared: false)
        try await tx.execute(
            """
            CREATE TEMP TABLE ctower_import_slots ON COMMIT DROP AS
            WITH candidates AS (
                SELECT ip.*, row_number() OVER (PARTITION BY ip.lead_id ORDER BY ip.row_number, ip.slot) AS k
                FROM ctower_import_phones ip
                WHERE NOT EXISTS (SELECT 1 FROM lead_phones lp WHERE lp.lead_id = ip.lead_id AND lp.phone = ip.phone)
            ), free AS (
                SELECT c.lead_id, s.position, row_number() OVER (PARTITION BY c.lead_id ORDER BY s.position) AS k
                FROM (SELECT DISTINCT lead_id FROM candidates) c CROSS JOIN generate_series(1, 3) AS s(position)
                WHERE NOT EXISTS (SELECT 1 FROM lead_phones lp WHERE lp.lead_id = c.lead_id AND lp.position = s.position)
            )
            SELECT c.lead_id, c.phone, c.type, c.row_number, c.slot, f.position
            FROM candidates c LEFT JOIN free f USING (lead_id, k)
            """, prepared: false)
        try await tx.execute(
            """
            INSERT INTO lead_phones (org_id, lead_id, position, phone, phone_type, consent_status)
            SELECT \(org), s.lead_id, s.position, s.phone, s.type, \(phoneConsent)
            FROM ctower_import_slots s WHERE s.position IS NOT NULL
            """, prepared: false)

        // Row problems found in Swift, then phones that found no free position.
        try await tx.execute(
            """
            INSERT INTO import_errors (org_id, import_job_id, row_number, seq, column_name, reason)
            SELECT \(org), \(job), r.row_number, e.ord, e.value->>0, e.value->>1
            FROM ctower_import_rows r CROSS JOIN LATERAL jsonb_array_elements(r.problems) WITH ORDINALITY AS e(value, ord)
            WHERE r.problems IS NOT NULL
            UNION ALL
            SELECT \(org), \(job), s.row_number, 100 + s.slot, '',
                   'phone ' || s.phone || ' not kept: the lead already has 3 phones'
            FROM ctower_import_slots s WHERE s.position IS NULL
            """, prepared: false)

        if let consent {
            try await recordConsent(tx, org: org, consent: consent)
        }
        return counts
    }

    /// One consent record per imported phone (append-only), and consent status GRANTED, except for
    /// phones whose consent was revoked.
    private func recordConsent(_ tx: Transaction, org: OrgID, consent: ConsentDeclaration) async throws {
        let time = consent.consentTime.map(Self.iso)
        let nonEmpty = { (s: String) -> String? in s.isEmpty ? nil : s }
        try await tx.execute(
            """
            UPDATE lead_phones lp SET consent_status = 'granted'
            FROM ctower_import_phones ip
            WHERE lp.lead_id = ip.lead_id AND lp.phone = ip.phone AND lp.consent_status = 'unknown'
            """, prepared: false)
        try await tx.execute(
            """
            INSERT INTO consent_records (org_id, lead_id, phone, action, source, seller_name, disclosure_version, ip_address,
                                         form_url, channel, recorded_at)
            SELECT \(org), lp.lead_id, lp.phone, 'granted', coalesce(x.consent_source, \(consent.source)), \(consent.sellerName),
                   \(nonEmpty(consent.disclosureVersion)), \(nonEmpty(consent.ipAddress))::inet, \(nonEmpty(consent.formURL)), 'import',
                   coalesce(x.consent_time, \(time)::timestamptz, now())
            FROM (
                SELECT t.lead_id, p.phone, r.consent_source, r.consent_time
                FROM ctower_import_targets t JOIN ctower_import_rows r ON r.row_number = t.g
                CROSS JOIN LATERAL (VALUES (r.phone1), (r.phone2), (r.phone3)) AS p(phone)
                WHERE NOT t.existing AND t.n = 1 AND p.phone IS NOT NULL
                UNION ALL
                SELECT lead_id, phone, consent_source, consent_time FROM ctower_import_phones
            ) x
            JOIN lead_phones lp ON lp.lead_id = x.lead_id AND lp.phone = x.phone
            WHERE lp.consent_status = 'granted'
            """, prepared: false)
    }
}

/// The staging table's COPY text, produced row by row from the upload as COPY asks for it.
struct StagingBytes: AsyncSequence {
    typealias Element = [UInt8]
    let rows: UploadRows
    let normalizer: LeadRowNormalizer
    let onProgress: (Int) async -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        let rows: UploadRows
        let normalizer: LeadRowNormalizer
        let onProgress: (Int) async -> Void
        var done = false

        mutating func next() async throws -> [UInt8]? {
            guard !done else { return nil }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(300 * 1024)
            while buffer.count < 256 * 1024 {
                guard let cells = try await rows.nextDataRow() else {
                    done = true
                    break
                }
                let number = rows.dataRows
                CopyText.appendRow(LeadImporter.copyValues(rowNumber: number, normalizer.normalize(cells)), to: &buffer)
                if number % LeadImporter.progressEvery == 0 { await onProgress(number) }
            }
            return buffer.isEmpty && done ? nil : buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rows: rows, normalizer: normalizer, onProgress: onProgress) }
}
