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

    @Option(help: "Copy the cluster's log here, with every statement of the import and its EXPLAIN ANALYZE plan.")
    var explainLog: String?

    @Flag(help: "Leave the cluster running afterwards (for EXPLAIN by hand); prints how to reach and stop it.")
    var keepCluster = false

    func run() async throws {
        LogFormat.text.bootstrap(level: .warning)
        let logger = Logger(label: "ctower.bench")
        try? FileManager.default.removeItem(atPath: home)
        let cluster = try await EmbeddedPostgres.start(
            EmbeddedPostgres.Configuration(home: home), migrator: try Migrator.embedded(), logger: logger)
        if !keepCluster { cluster.stopAtProcessExit(removing: home) }
        if explainLog != nil {
            // auto_explain is loaded into new sessions; the store's connections are all new.
            for setting in [
                "session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = 0",
                "auto_explain.log_analyze = on", "auto_explain.log_timing = off",
                "auto_explain.log_triggers = on", "log_min_duration_statement = 0",
            ] {
                // The module's settings exist only once it is loaded into the session.
                try runPSQL(cluster.superuserURL, "LOAD 'auto_explain'", "ALTER SYSTEM SET \(setting)")
            }
            try runPSQL(cluster.superuserURL, "SELECT pg_reload_conf()")
        }
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
        let postmaster = try Self.postmasterPID(home: home)
        let serverCPU0 = Self.ownCPUSeconds()
        let postgresCPU0 = Self.clusterCPUSeconds(postmaster: postmaster)
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
        let serverCPU = Self.ownCPUSeconds() - serverCPU0
        let postgresCPU = Self.clusterCPUSeconds(postmaster: postmaster) - postgresCPU0

        // Baseline: the same bytes into a table with one text column per header cell, no index.
        guard let head = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
        let firstBytes = try head.read(upToCount: 64 * 1024) ?? Data()
        try head.close()
        let headerLine = String(decoding: firstBytes, as: UTF8.self).prefix { !$0.isNewline }
        let columnCount = headerLine.split(separator: ",", omittingEmptySubsequences: false).count
        let columns = (1...columnCount).map { "c\($0) text" }.joined(separator: ", ")
        try runPSQL(cluster.ownerURL, "DROP TABLE IF EXISTS bench_raw_import; CREATE TABLE bench_raw_import (\(columns))")
        let rawPostgresCPU0 = Self.clusterCPUSeconds(postmaster: postmaster)
        let rawStarted = clock.now
        try runPSQL(cluster.ownerURL, "\\copy bench_raw_import FROM '\(file)' WITH (FORMAT csv, HEADER true)")
        let raw = rawStarted.duration(to: clock.now)
        // psql's backend exits after psql does; its CPU counts once the postmaster reaps it.
        try await Task.sleep(for: .seconds(1))
        let rawPostgresCPU = Self.clusterCPUSeconds(postmaster: postmaster) - rawPostgresCPU0

        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        print("file: \(file) (\(size / (1024 * 1024)) MiB)")
        print(
            "import job: status=\(job.status) total=\(job.totalRows) new=\(job.newRows) merged=\(job.mergedRows) duplicate=\(job.duplicateRows) invalid=\(job.invalidRows) errors=\(job.errorCount)"
        )
        print(String(format: "ImportLeads (ours):        %8.2f s  (%.0f rows/s)", seconds(ours), Double(job.totalRows) / seconds(ours)))
        print(String(format: "psql \\copy (raw, no index): %8.2f s", seconds(raw)))
        print(String(format: "ratio: %.2fx (target <= 2x)", seconds(ours) / seconds(raw)))
        let rows = Double(max(job.totalRows, 1))
        print(
            String(
                format: "CPU, ImportLeads: server %.2f s (%.1f µs/row), PostgreSQL %.2f s (%.1f µs/row)",
                serverCPU, serverCPU * 1e6 / rows, postgresCPU, postgresCPU * 1e6 / rows))
        print(
            String(
                format: "CPU, psql \\copy: PostgreSQL %.2f s (%.1f µs/row; psql itself not counted)", rawPostgresCPU,
                rawPostgresCPU * 1e6 / rows))
        if let explainLog {
            try? FileManager.default.removeItem(atPath: explainLog)
            try FileManager.default.copyItem(atPath: home + "/postgres/postgres.log", toPath: explainLog)
            print("statement log with plans: \(explainLog)")
        }
        store.shutdown()
        if keepCluster {
            print("cluster left running: psql '\(cluster.ownerURL)'; stop: pg_ctl stop -D \(cluster.dataDirectory)")
        } else {
            try await cluster.stop()
        }
    }

    /// User + system CPU seconds of this process, all threads.
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func postmasterPID(home: String) throws -> Int {
        let text = try String(contentsOfFile: home + "/postgres/data/postmaster.pid", encoding: .utf8)
        guard let pid = text.split(separator: "\n").first.flatMap({ Int($0) }) else { throw ValidationError("no postmaster.pid") }
        return pid
    }

    /// CPU seconds of the cluster: the postmaster with its reaped children, plus its live children
    /// (backends, checkpointer, WAL writer...). Other clusters on the machine are not counted.
    static func clusterCPUSeconds(postmaster: Int) -> Double {
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        func fields(_ pid: String) -> [Substring]? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // After "pid (comm) ": state is field 3; ppid 4; utime 14, stime 15, cutime 16, cstime 17.
            return stat[stat.index(after: close)...].split(separator: " ")
        }
        var total = 0.0
        if let f = fields(String(postmaster)) {
            total += [11, 12, 13, 14].reduce(0) { $0 + (Double(f[$1]) ?? 0) } / tick
        }
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where pid.allSatisfy(\.isNumber) {
            guard let f = fields(pid), Int(f[1]) == postmaster else { continue }
            total += ((Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)) / tick
        }
        return total
    }

    private func runPSQL(_ url: String, _ commands: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", url] + commands.flatMap { ["-c", $0] }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("psql failed: \(commands.joined(separator: "; "))") }
    }
}
