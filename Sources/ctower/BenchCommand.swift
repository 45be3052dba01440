import ArgumentParser
import Foundation
import Logging
import Tower
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// `ctower bench`: measurements behind Benchmarks/ (hidden: not an operator verb).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (see Benchmarks/).", shouldDisplay: false, subcommands: [BenchImportCommand.self])
}

/// `ctower bench import FILE`: imports a CSV through LeadService.ImportLeads (the RPC handler,
/// its auth interceptor and the whole bulk path, over the in-process channel) into a fresh org of
/// a fresh embedded cluster, then times a raw `psql \copy` of the same file into an unindexed
/// table of the same cluster, and prints both.
struct BenchImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Time a lead import against a raw psql \\copy.")

    @Argument(help: "The CSV file to import.")
    var file: String

    @Option(help: "Upload chunk size in bytes.")
    var chunkSize: Int = 1 << 20

    @Option(help: "Where the throw-away cluster lives (deleted afterwards).")
    var home: String = FileManager.default.temporaryDirectory.path + "/ctower-bench-import"

    @Option(help: "psql to run for the baseline.")
    var psql: String = "psql"

    func run() async throws {
        LogFormat.text.bootstrap(level: .warning)
        let logger = Logger(label: "ctower.bench")
        try? FileManager.default.removeItem(atPath: home)
        let cluster = try await EmbeddedPostgres.start(
            EmbeddedPostgres.Configuration(home: home), migrator: try Migrator.embedded(), logger: logger)
        defer { cluster.stopAtProcessExit(removing: home) }
        let store = Store(configuration: StoreConfiguration(url: cluster.appURL))
        let passwords = PasswordHasher(cost: .testing)
        let email = "bench@example.com"
        let password = "bench password 1"
        _ = try await IdentityBootstrap.createOrg(
            store, name: "Bench", kind: .standard, ownerEmail: email, ownerPassword: password, passwords: passwords)
        let keys = KeyRing.ephemeral()
        let channel = InProcessChannel(
            services: [AuthServiceImpl(store: store, keys: keys, passwords: passwords), LeadServiceImpl(store: store)],
            interceptors: [AuthInterceptor(store: store, signer: keys.signer)])
        var login = LoginRequest()
        login.email = email
        login.password = password
        let session = try await AuthService.Client(channel: channel).login(login)
        let options = CallOptions(metadata: ["authorization": .string("Bearer \(session.accessToken)")])

        let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let path = file
        let chunkSize = chunkSize
        let clock = ContinuousClock()
        let started = clock.now
        let job = try await LeadService.Client(channel: channel).importLeads(options: options) { writer in
            var header = ImportLeadsRequest()
            var importHeader = ImportHeader()
            importHeader.fileName = (path as NSString).lastPathComponent
            importHeader.format = .csv
            header.payload = .header(importHeader)
            try await writer.write(header)
            guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
            defer { try? handle.close() }
            while let data = try handle.read(upToCount: chunkSize), !data.isEmpty {
                var chunk = ImportLeadsRequest()
                chunk.payload = .chunk(Array(data))
                try await writer.write(chunk)
            }
        }
        let ours = started.duration(to: clock.now)

        // Baseline: the same bytes into a table with one text column per header cell, no index.
        guard let head = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
        let firstBytes = try head.read(upToCount: 64 * 1024) ?? Data()
        try head.close()
        let headerLine = String(decoding: firstBytes, as: UTF8.self).prefix { !$0.isNewline }
        let columnCount = headerLine.split(separator: ",", omittingEmptySubsequences: false).count
        let columns = (1...columnCount).map { "c\($0) text" }.joined(separator: ", ")
        try runPSQL(cluster.ownerURL, "DROP TABLE IF EXISTS bench_raw_import; CREATE TABLE bench_raw_import (\(columns))")
        let rawStarted = clock.now
        try runPSQL(cluster.ownerURL, "\\copy bench_raw_import FROM '\(file)' WITH (FORMAT csv, HEADER true)")
        let raw = rawStarted.duration(to: clock.now)

        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        print("file: \(file) (\(size / (1024 * 1024)) MiB)")
        print(
            "import job: status=\(job.status) total=\(job.totalRows) new=\(job.newRows) merged=\(job.mergedRows) duplicate=\(job.duplicateRows) invalid=\(job.invalidRows) errors=\(job.errorCount)"
        )
        print(String(format: "ImportLeads (ours):        %8.2f s  (%.0f rows/s)", seconds(ours), Double(job.totalRows) / seconds(ours)))
        print(String(format: "psql \\copy (raw, no index): %8.2f s", seconds(raw)))
        print(String(format: "ratio: %.2fx (target <= 2x)", seconds(ours) / seconds(raw)))
        store.shutdown()
        try await cluster.stop()
    }

    private func runPSQL(_ url: String, _ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("psql failed: \(command)") }
    }
}
