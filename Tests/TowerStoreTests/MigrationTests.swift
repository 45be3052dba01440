import Foundation
import Testing

@testable import TowerStore

@Suite("Migrations")
struct MigrationTests {
    /// A scratch database owned by the owner role, so these tests never touch the shared schema.
    static func scratchDatabase() async throws -> String? {
        let database = try await TestDatabase.get()
        guard let superuserURL = database.superuserURL, let cluster = database.cluster else { return nil }
        let name = "scratch_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = Store(configuration: StoreConfiguration(url: superuserURL, poolSize: 1))
        defer { admin.shutdown() }
        try await admin.withTransaction(tenant: nil) { _ in }
        // CREATE DATABASE cannot run inside a transaction block: use the migrator's raw path.
        let worker = BlockingWorker(name: "scratch")
        defer { worker.stop() }
        try await worker.run {
            let connection = try PGConnection.connect(conninfo: superuserURL, options: .init())
            try connection.simpleQuery("CREATE DATABASE \(name) OWNER \(cluster.configuration.ownerRole)")
        }
        return cluster.ownerURL.replacingOccurrences(of: "dbname='\(cluster.configuration.database)'", with: "dbname='\(name)'")
    }

    @Test("applies in order once, and refuses an edited applied migration, naming the file")
    func checksumRefusal() async throws {
        guard let url = try await Self.scratchDatabase() else { return }
        let first = try Migration(fileName: "0001_create_things.sql", sql: "CREATE TABLE things (id int PRIMARY KEY);")
        let second = try Migration(fileName: "0002_add_name.sql", sql: "ALTER TABLE things ADD COLUMN name text;")
        let report = try await Migrator(migrations: [second, first]).migrate(url: url)
        #expect(report.applied == ["0001_create_things.sql", "0002_add_name.sql"])
        let again = try await Migrator(migrations: [first, second]).migrate(url: url)
        #expect(again.applied.isEmpty)

        let edited = try Migration(fileName: "0002_add_name.sql", sql: "ALTER TABLE things ADD COLUMN title text;")
        let error = await #expect(throws: StoreError.self) {
            try await Migrator(migrations: [first, edited]).migrate(url: url)
        }
        #expect(error?.code == .migration)
        #expect(error?.message.contains("0002_add_name.sql") == true)
        #expect(error?.message.contains("edited") == true)
    }

    @Test("a failing migration rolls back and names its file")
    func failingMigration() async throws {
        guard let url = try await Self.scratchDatabase() else { return }
        let good = try Migration(fileName: "0001_ok.sql", sql: "CREATE TABLE ok (id int);")
        let bad = try Migration(fileName: "0002_broken.sql", sql: "CREATE TABLE half (id int); SELECT * FROM missing_table;")
        let error = await #expect(throws: StoreError.self) {
            try await Migrator(migrations: [good, bad]).migrate(url: url)
        }
        #expect(error?.message.contains("0002_broken.sql") == true)
        let store = Store(configuration: StoreConfiguration(url: url, poolSize: 1))
        defer { store.shutdown() }
        let tables = try await store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT to_regclass('ok') IS NOT NULL AS ok, to_regclass('half') IS NOT NULL AS half").one()
        }
        #expect(try tables.decode("ok", as: Bool.self))
        #expect(try tables.decode("half", as: Bool.self) == false)
    }

    @Test("concurrent migrators apply each migration exactly once (advisory lock)")
    func concurrentMigrators() async throws {
        guard let url = try await Self.scratchDatabase() else { return }
        let migrator = try Migrator(migrations: [
            try Migration(fileName: "0001_slow.sql", sql: "SELECT pg_sleep(0.3); CREATE TABLE slow (id int);")
        ])
        async let one = migrator.migrate(url: url)
        async let two = migrator.migrate(url: url)
        let reports = try await [one, two]
        #expect(reports.map(\.applied.count).sorted() == [0, 1])
    }

    @Test("the embedded migrations match the migrations folder (run migrations/embed.sh)")
    func embeddedIsFresh() throws {
        let folder = try Migrator(directory: TestDatabase.migrationsDirectory).migrations
        let embedded = try Migrator.embedded().migrations
        #expect(folder.map(\.fileName) == embedded.map(\.fileName))
        #expect(folder.map(\.checksum) == embedded.map(\.checksum))
    }

    @Test("migration file names are validated")
    func names() throws {
        #expect(Migration.version(ofFileName: "0007_add_tags.sql") == 7)
        #expect(Migration.version(ofFileName: "7_add_tags.sql") == nil)
        #expect(Migration.version(ofFileName: "0007-add-tags.sql") == nil)
        #expect(Migration.version(ofFileName: "0007_Add.sql") == nil)
        #expect(throws: StoreError.self) {
            try Migrator(migrations: [
                try Migration(fileName: "0001_a.sql", sql: ""), try Migration(fileName: "0001_b.sql", sql: ""),
            ])
        }
    }
}
