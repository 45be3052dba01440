import ArgumentParser
import Logging
import TowerStandardServices
import TowerStore

/// `ctower migrate`: applies the migrations compiled into this binary.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply database migrations (as the owner role).",
        discussion: """
            With --database-url (or CTOWER_MIGRATE_DATABASE_URL), migrates that database; the role must own \
            the schema and be SUPERUSER or BYPASSRLS. Without one, migrates the embedded cluster under \
            $CTOWER_HOME (starting it if needed). Already-applied migrations are skipped; an edited one is refused.
            """)

    @Option(help: "libpq URL of the owner role.")
    var databaseURL: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        LogFormat.text.bootstrap(level: logLevel)
        let logger = Logger(label: "ctower.migrate")
        let migrator = try Migrator.embedded()
        if let url = databaseURL ?? Environment.value("CTOWER_MIGRATE_DATABASE_URL") {
            let report = try await migrator.migrate(url: url, logger: logger)
            print(
                "applied \(report.applied.count) migration(s)\(report.applied.isEmpty ? "" : ": " + report.applied.joined(separator: ", "))"
            )
            return
        }
        // EmbeddedPostgres.start migrates as part of starting; report what it did, then stop it.
        let home = Environment.value("CTOWER_HOME") ?? ".ctower"
        let cluster = try await EmbeddedPostgres.start(EmbeddedPostgres.Configuration(home: home), migrator: migrator, logger: logger)
        try await cluster.stop()
        print("the embedded database under \(home) is migrated")
    }
}
