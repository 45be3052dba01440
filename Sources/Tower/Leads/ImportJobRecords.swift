import TowerProto
import TowerProtoRuntime
import TowerStore

/// SQL, row mapping and crash recovery for `import_jobs` and `import_errors`.
enum ImportJobRecords {
    static let columns = """
        j.id::text AS id, j.file_name, j.format, j.status, j.total_rows, j.new_rows, j.merged_rows, j.duplicate_rows,
        j.error_rows, j.error_count, j.column_mapping::text AS column_mapping, j.consent IS NOT NULL AS consent_declared,
        j.failure_reason, \(Timestamps.micros("j.created_at")) AS created_us, \(Timestamps.micros("j.started_at")) AS started_us,
        \(Timestamps.micros("j.finished_at")) AS finished_us
        """

    /// The advisory lock an import holds for as long as its transaction runs. A `running` job
    /// whose lock is free has no worker: its server died (the lock went with its connection).
    static func lockKey(_ id: String) -> SQL { "hashtextextended('ctower_import:' || \(id), 0)" }

    static let orphanReason = "the server stopped before the import finished; nothing was saved, upload the file again"

    /// Marks the job failed when no transaction is working on it any more. A job is created
    /// running and its import transaction takes the lock right after, so a job younger than
    /// `grace` is left alone.
    static func failIfOrphaned(_ tx: Transaction, id: UUIDText) async throws {
        try await tx.execute(
            """
            UPDATE import_jobs j SET status = 'failed', failure_reason = \(orphanReason), finished_at = now()
            WHERE j.id = \(id) AND j.status IN ('pending', 'running') AND j.created_at < now() - interval '30 seconds'
              AND pg_try_advisory_xact_lock(\(lockKey(id.text)))
            """)
    }

    /// Fails the orphaned jobs of every org (the same rule and reason as `failIfOrphaned`, run by
    /// the owner in `ctower_fail_orphaned_import_jobs()`): `ctower serve` calls it at start, so a
    /// job its crashed predecessor left running does not wait for someone to read it.
    /// Returns how many jobs it failed.
    static func failOrphanedJobs(_ store: Store) async throws -> Int {
        try await store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT ctower_fail_orphaned_import_jobs() AS failed").one().decode("failed", as: Int.self)
        }
    }

    /// Reads a job, first failing it if it was orphaned by a crash.
    static func read(_ tx: Transaction, id: UUIDText) async throws -> ImportJob? {
        try await failIfOrphaned(tx, id: id)
        guard let row = try await tx.query("SELECT \(unsafeRaw: columns) FROM import_jobs j WHERE j.id = \(id)").firstRow else {
            return nil
        }
        return try job(row)
    }

    static func job(_ row: Row) throws -> ImportJob {
        var job = ImportJob()
        job.id = try row.decode("id", as: String.self)
        job.fileName = try row.decode("file_name", as: String.self)
        job.format = try row.decode("format", as: String.self) == "xlsx" ? .xlsx : .csv
        job.status = status(try row.decode("status", as: String.self))
        job.totalRows = Int64(try row.decode("total_rows", as: Int32.self))
        job.newRows = Int64(try row.decode("new_rows", as: Int32.self))
        job.mergedRows = Int64(try row.decode("merged_rows", as: Int32.self))
        job.duplicateRows = Int64(try row.decode("duplicate_rows", as: Int32.self))
        job.invalidRows = Int64(try row.decode("error_rows", as: Int32.self))
        job.errorCount = Int64(try row.decode("error_count", as: Int32.self))
        job.columnMapping = mapping(json: try row.decode("column_mapping", as: String.self))
        job.consentDeclared = try row.decode("consent_declared", as: Bool.self)
        job.failureReason = try row.decode("failure_reason", as: String?.self) ?? ""
        job.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        job.startTime = Timestamps.proto(micros: try row.decode("started_us", as: Int64?.self))
        job.finishTime = Timestamps.proto(micros: try row.decode("finished_us", as: Int64?.self))
        return job
    }

    static func status(_ text: String) -> ImportJobStatus {
        switch text {
        case "pending": .pending
        case "running": .running
        case "completed": .completed
        case "failed": .failed
        default: .unspecified
        }
    }

    static func isTerminal(_ status: ImportJobStatus) -> Bool { status == .completed || status == .failed }

    // MARK: Column mapping, stored as [{"column": ..., "field": "phone_1", "phone_type": "mobile"}]

    static func json(_ plan: LeadImportPlan) -> String {
        JSONValue.array(
            plan.columns.map { column in
                var members: [(String, JSONValue)] = [("column", .string(column.header))]
                switch column.target {
                case .ignore: members.append(("field", .string("ignore")))
                case .custom: members.append(("field", .string("custom")))
                case .field(let field, let kind):
                    members.append(("field", .string(field.rawValue)))
                    if let kind { members.append(("phone_type", .string(kind.rawValue))) }
                }
                return .object(members)
            }
        ).serialized()
    }

    static func mapping(json: String) -> [ColumnMappingEntry] {
        guard case .array(let items)? = try? JSONValue.parse(json) else { return [] }
        return items.compactMap { item in
            guard case .string(let column)? = item["column"], case .string(let field)? = item["field"] else { return nil }
            var entry = ColumnMappingEntry()
            entry.column = column
            switch field {
            case "ignore": entry.field = .ignore
            case "custom": entry.field = .custom
            default: entry.field = ColumnMapping.Field(rawValue: field).map(LeadFieldMapping.proto) ?? .unspecified
            }
            if case .string(let kind)? = item["phone_type"] {
                entry.phoneType = ColumnMapping.PhoneKind(rawValue: kind).map(LeadFieldMapping.proto) ?? .unspecified
            }
            return entry
        }
    }

    static func entries(_ plan: LeadImportPlan) -> [ColumnMappingEntry] { mapping(json: json(plan)) }
}

/// Between the API's LeadField/PhoneType and the pure logic's ColumnMapping types.
enum LeadFieldMapping {
    static let pairs: [(LeadField, ColumnMapping.Field)] = [
        (.firstName, .firstName), (.lastName, .lastName), (.fullName, .fullName), (.phone1, .phone1), (.phone2, .phone2),
        (.phone3, .phone3), (.phone1Type, .phone1Type), (.phone2Type, .phone2Type), (.phone3Type, .phone3Type), (.email, .email),
        (.mailingAddress, .mailingAddress), (.mailingCity, .mailingCity), (.mailingState, .mailingState), (.mailingZip, .mailingZip),
        (.propertyAddress, .propertyAddress), (.propertyCity, .propertyCity), (.propertyState, .propertyState),
        (.propertyZip, .propertyZip), (.county, .county), (.apn, .apn), (.acreage, .acreage), (.consentSource, .consentSource),
        (.consentTimestamp, .consentTimestamp),
    ]

    static func proto(_ field: ColumnMapping.Field) -> LeadField { pairs.first { $0.1 == field }?.0 ?? .unspecified }
    static func field(_ proto: LeadField) -> ColumnMapping.Field? { pairs.first { $0.0 == proto }?.1 }

    static func proto(_ kind: ColumnMapping.PhoneKind) -> PhoneType {
        switch kind {
        case .mobile: .mobile
        case .landline: .landline
        case .voip: .voip
        }
    }

    static func kind(_ proto: PhoneType) -> ColumnMapping.PhoneKind? {
        switch proto {
        case .mobile: .mobile
        case .landline: .landline
        case .voip: .voip
        default: nil
        }
    }
}
