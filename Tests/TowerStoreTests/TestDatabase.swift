import Foundation
import Logging

@testable import TowerStore

/// The PostgreSQL the tests run against: `CTOWER_TEST_DATABASE_URL` when set (a superuser or
/// BYPASSRLS role on a disposable database; the app role is reached with SET ROLE), otherwise an
/// embedded cluster in a temporary folder, started once per test process and stopped at exit.
struct TestDatabase: Sendable {
    let ownerURL: String
    /// Connects as the app role: directly (embedded) or via `role` (external URL).
    let appConfiguration: StoreConfiguration
    /// Superuser connection for creating scratch databases; nil for an external URL.
    let superuserURL: String?
    let cluster: EmbeddedPostgres?

    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let migrationsDirectory = repoRoot + "/migrations"

    private static let shared = Task<TestDatabase, Error> { try await start() }

    static func get() async throws -> TestDatabase { try await shared.value }

    func appStore(poolSize: Int = 4, maxWait: Duration = .seconds(5)) -> Store {
        var configuration = appConfiguration
        configuration.poolSize = poolSize
        configuration.maxWait = maxWait
        return Store(configuration: configuration)
    }

    /// A store connected as the owner (BYPASSRLS): for seeding test data across orgs.
    func ownerStore() -> Store {
        Store(configuration: StoreConfiguration(url: ownerURL, poolSize: 2))
    }

    private static func start() async throws -> TestDatabase {
        let migrator = try Migrator(directory: migrationsDirectory)
        if let url = ProcessInfo.processInfo.environment["CTOWER_TEST_DATABASE_URL"], !url.isEmpty {
            try await migrator.migrate(url: url)
            return TestDatabase(
                ownerURL: url, appConfiguration: StoreConfiguration(url: url, role: "ctower_app"), superuserURL: nil,
                cluster: nil)
        }
        let home = FileManager.default.temporaryDirectory.path + "/ctower-store-test-\(UUID().uuidString.prefix(8))"
        var configuration = EmbeddedPostgres.Configuration(home: home)
        configuration.durable = false
        let cluster = try await EmbeddedPostgres.start(configuration, migrator: migrator)
        cluster.stopAtProcessExit(removing: home)
        return TestDatabase(
            ownerURL: cluster.ownerURL, appConfiguration: StoreConfiguration(url: cluster.appURL),
            superuserURL: cluster.superuserURL, cluster: cluster)
    }
}

/// A fresh embedded cluster of its own, for tests that stop or restart the server.
func makePrivateCluster(migrate: Bool) async throws -> (EmbeddedPostgres, String) {
    let home = FileManager.default.temporaryDirectory.path + "/ctower-store-test-\(UUID().uuidString.prefix(8))"
    var configuration = EmbeddedPostgres.Configuration(home: home)
    configuration.durable = false
    let cluster = try await EmbeddedPostgres.start(
        configuration, migrator: migrate ? try Migrator(directory: TestDatabase.migrationsDirectory) : nil)
    cluster.stopAtProcessExit(removing: home)
    return (cluster, home)
}
