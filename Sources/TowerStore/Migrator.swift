import Foundation
import Logging

/// Applies migrations in order, each in its own transaction, under a PostgreSQL advisory lock so
/// that several processes starting at once migrate exactly once. Every applied migration is
/// recorded in `schema_migrations` with its SHA-256; a file edited after it was applied is
/// refused, naming the file.
///
/// Run it as the owner role (the role that owns the tables), never as the app role.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    /// An arbitrary but fixed advisory-lock key ("ctower migrate").
    static let advisoryLockKey: Int64 = 0x6374_6f77_6572_6d67

    public init(migrations: [Migration]) throws {
        self.migrations = try Migration.sorted(migrations)
    }

    /// Reads `NNNN_name.sql` files from a folder (the repo's `migrations/` or an installed copy).
    public init(directory: String) throws {
        self.migrations = try Migration.load(from: directory)
    }

    /// The migrations compiled into the binary (`migrations/embed.sh` generates them).
    public static func embedded() throws -> Migrator {
        try Migrator(migrations: EmbeddedMigrations.files.map { try Migration(fileName: $0.name, sql: $0.sql) })
    }

    /// What `migrate` did.
    public struct Report: Sendable {
        /// Files applied by this run, in order.
        public var applied: [String]
        /// Versions recorded in the database that this binary does not know (a newer binary migrated).
        public var unknownVersions: [Int]
    }

    /// Applies what is pending. `url` must connect as the owner role.
    @discardableResult
    public func migrate(url: String, logger: Logger = Logger(label: "ctower.migrate")) async throws -> Report {
        let worker = BlockingWorker(name: "ctower-migrate")
        defer { worker.stop() }
        let migrations = self.migrations
        return try await worker.run {
            var options = PGConnection.Options()
            options.applicationName = "ctower-migrate"
            options.statementCacheCapacity = 0
            let connection = try PGConnection.connect(conninfo: url, options: options)
            try connection.simpleQuery("SELECT pg_advisory_lock(\(Self.advisoryLockKey))")
            defer { _ = try? connection.simpleQuery("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))") }
            return try Self.apply(migrations, on: connection, logger: logger)
        }
    }

    private static func apply(_ migrations: [Migration], on connection: PGConnection, logger: Logger) throws -> Report {
        try connection.simpleQuery(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                file_name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL DEFAULT 0
            )
            """)
        let recorded = try connection.query(
            "SELECT version, file_name, checksum FROM schema_migrations ORDER BY version", [], prepared: false)
        var applied: [Int: (fileName: String, checksum: String)] = [:]
        for row in recorded {
            let (version, fileName, checksum) = try row.decode((Int, String, String).self)
            applied[version] = (fileName, checksum)
        }

        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for migration in migrations {
            guard let record = applied[migration.version] else { continue }
            if record.checksum != migration.checksum {
                throw StoreError(
                    .migration,
                    "migration \(migration.fileName) was edited after it was applied (recorded checksum \(record.checksum.prefix(12))…, file now \(migration.checksum.prefix(12))…); restore the file and put the change in a new migration"
                )
            }
            if record.fileName != migration.fileName {
                throw StoreError(
                    .migration,
                    "migration version \(migration.version) was applied as \(record.fileName) but the file is now named \(migration.fileName); migrations must not be renamed"
                )
            }
        }
        let unknown = applied.keys.filter { known[$0] == nil }.sorted()
        if !unknown.isEmpty {
            logger.warning(
                "the database has migrations this binary does not know; a newer version migrated it",
                metadata: ["versions": "\(unknown)"])
        }

        var report = Report(applied: [], unknownVersions: unknown)
        for migration in migrations where applied[migration.version] == nil {
            if let newest = applied.keys.max(), migration.version < newest {
                throw StoreError(
                    .migration,
                    "migration \(migration.fileName) is older than the newest applied migration (\(newest)); give it a higher number")
            }
            let started = ContinuousClock.now
            do {
                try connection.simpleQuery("BEGIN")
                try connection.simpleQuery(migration.sql)
                let elapsed = started.duration(to: .now)
                let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
                _ = try connection.query(
                    "INSERT INTO schema_migrations (version, file_name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
                    [
                        migration.version.sqlBinding, migration.fileName.sqlBinding, migration.checksum.sqlBinding,
                        Int(milliseconds).sqlBinding,
                    ], prepared: false)
                try connection.simpleQuery("COMMIT")
            } catch let error as StoreError {
                _ = try? connection.simpleQuery("ROLLBACK")
                throw StoreError(
                    .migration, "migration \(migration.fileName) failed and was rolled back: \(error.message)",
                    sqlState: error.sqlState, constraint: error.constraint, table: error.table, column: error.column)
            }
            logger.info("applied migration", metadata: ["file": "\(migration.fileName)"])
            report.applied.append(migration.fileName)
        }
        return report
    }
}
