import Foundation
import Logging
import Synchronization
import TowerCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// The zero-config database: a private PostgreSQL cluster run from the system's binaries under
/// `$CTOWER_HOME/postgres` (default `./.ctower/postgres`), listening only on a unix socket in
/// that folder, so it never clashes with a TCP port.
///
/// `start` creates the cluster on first run (initdb) or reuses it, starts it with `pg_ctl`,
/// creates the owner and app roles and the database, and (given a `Migrator`) migrates as the
/// owner. Use `appURL` for the server's pool and `ownerURL` for migrations. `stop()` stops the
/// cluster if this process started it.
///
/// PostgreSQL refuses to run as root. When started as root, every PostgreSQL command runs as the
/// unprivileged `postgres` system user (via `runuser`, or `setpriv`), the cluster folder is
/// chowned to it, and parent folders that it cannot traverse get the search bit (o+x) added,
/// with a warning in the log.
public final class EmbeddedPostgres: Sendable {
    public struct Configuration: Sendable {
        /// The ctower home folder; the cluster lives in `home/postgres`.
        public var home: String
        public var database = "ctower"
        /// Owns the tables and runs migrations (LOGIN BYPASSRLS, not superuser).
        public var ownerRole = "ctower_owner"
        /// What the server connects as (LOGIN NOBYPASSRLS, owns nothing).
        public var appRole = "ctower_app"
        /// Where `initdb`/`pg_ctl` live; found automatically when nil.
        public var binDirectory: String?
        /// The system account used when running as root.
        public var systemUser = "postgres"
        /// false turns off fsync and friends: fast, for tests only.
        public var durable = true

        public init(home: String) { self.home = home }

        /// `$CTOWER_HOME`, or `./.ctower`.
        public static func fromEnvironment() -> Configuration {
            let home = ProcessInfo.processInfo.environment["CTOWER_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ".ctower"
            return Configuration(home: home)
        }
    }

    public let configuration: Configuration
    /// A libpq connection string for the app role.
    public let appURL: String
    /// A libpq connection string for the owner role (migrations).
    public let ownerURL: String
    /// A libpq connection string for the cluster's superuser (bootstrap and tests only).
    public let superuserURL: String
    /// The cluster's data directory.
    public let dataDirectory: String
    /// The folder holding the unix socket.
    public let socketDirectory: String

    private let binDirectory: String
    private let logFile: String
    private let runAs: SystemAccount?
    private let startedHere: Mutex<Bool>
    private let logger: Logger

    static let port = 5432
    static let missingBinariesMessage =
        "PostgreSQL server binaries not found: install the Debian package postgresql (apt-get install postgresql)"

    private init(
        configuration: Configuration, binDirectory: String, base: String, socketDirectory: String,
        runAs: SystemAccount?, logger: Logger
    ) {
        self.configuration = configuration
        self.binDirectory = binDirectory
        self.dataDirectory = base + "/data"
        self.logFile = base + "/postgres.log"
        self.socketDirectory = socketDirectory
        self.runAs = runAs
        self.logger = logger
        self.startedHere = Mutex(false)
        func url(_ user: String, _ database: String) -> String {
            "host=\(Self.quote(socketDirectory)) port=\(Self.port) dbname=\(Self.quote(database)) user=\(Self.quote(user))"
        }
        appURL = url(configuration.appRole, configuration.database)
        ownerURL = url(configuration.ownerRole, configuration.database)
        superuserURL = url("postgres", "postgres")
    }

    /// Creates or reuses the cluster, starts it, bootstraps roles and database, and migrates.
    public static func start(
        _ configuration: Configuration, migrator: Migrator?, logger: Logger = Logger(label: "ctower.embedded-postgres")
    ) async throws -> EmbeddedPostgres {
        let worker = BlockingWorker(name: "ctower-embedded-postgres")
        defer { worker.stop() }
        let cluster = try await worker.run { try prepareAndStart(configuration, logger: logger) }
        do {
            try await cluster.bootstrap()
            if let migrator { try await migrator.migrate(url: cluster.ownerURL, logger: logger) }
        } catch {
            try? await cluster.stop()
            throw error
        }
        return cluster
    }

    /// Stops the cluster if this process started it (`pg_ctl stop -m fast`).
    public func stop() async throws {
        guard startedHere.withLock({ $0 }) else { return }
        try await runBlocking { try self.pgctl(["stop", "-D", self.dataDirectory, "-m", "fast", "-w", "-s"]) }
        startedHere.withLock { $0 = false }
    }

    /// Stops the cluster when the process exits and, if given, deletes `home`: for tests and
    /// tools that have no place to await a shutdown.
    public func stopAtProcessExit(removing home: String? = nil) {
        ExitCleanup.register(self, home: home)
    }

    /// `stop()` for contexts that cannot await (atexit handlers, signal paths).
    public func stopBlocking() {
        guard startedHere.withLock({ $0 }) else { return }
        try? pgctl(["stop", "-D", dataDirectory, "-m", "fast", "-w", "-s"])
        startedHere.withLock { $0 = false }
    }

    /// Restarts the server (`pg_ctl restart -m fast`), dropping every connection. For tests and
    /// operators; pools reconnect by themselves.
    public func restart() async throws {
        try await runBlocking {
            try self.pgctl(["restart", "-D", self.dataDirectory, "-m", "fast", "-w", "-t", "60", "-s", "-l", self.logFile])
        }
        startedHere.withLock { $0 = true }
    }

    /// Stops the server without waiting (`pg_ctl stop -m immediate`), for outage tests.
    public func kill() async throws {
        try await runBlocking { try self.pgctl(["stop", "-D", self.dataDirectory, "-m", "immediate", "-w", "-s"]) }
    }

    /// Starts a stopped server again.
    public func startAgain() async throws {
        try await runBlocking {
            try self.pgctl(["start", "-D", self.dataDirectory, "-w", "-t", "60", "-s", "-l", self.logFile])
        }
        startedHere.withLock { $0 = true }
    }

    private func runBlocking(_ body: @escaping @Sendable () throws -> Void) async throws {
        let worker = BlockingWorker(name: "ctower-pg-ctl")
        defer { worker.stop() }
        try await worker.run(body)
    }

    // MARK: - Setup

    private static func prepareAndStart(_ configuration: Configuration, logger: Logger) throws -> EmbeddedPostgres {
        let binDirectory = try findBinaries(configuration.binDirectory)
        let fileManager = FileManager.default
        let home = absolutePath(configuration.home)
        let base = home + "/postgres"
        let runAs: SystemAccount?
        if geteuid() == 0 {
            guard let account = SystemAccount(name: configuration.systemUser) else {
                throw StoreError(
                    .configuration,
                    "running as root and there is no '\(configuration.systemUser)' system user to run PostgreSQL as: create it (useradd --system \(configuration.systemUser)) or run ctower as an unprivileged user"
                )
            }
            runAs = account
        } else {
            runAs = nil
        }

        do {
            try fileManager.createDirectory(atPath: base, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.configuration, "cannot create the database folder \(base)")
        }
        chmod(base, 0o700)
        if let runAs {
            try runAs.chown(base)
            makeTraversable(ancestorsOf: base, logger: logger)
        }

        // The socket path (folder + "/.s.PGSQL.5432") must fit sockaddr_un (107 bytes + NUL).
        var socketDirectory = base
        if (socketDirectory + "/.s.PGSQL.\(port)").utf8.count > 107 {
            socketDirectory = "/tmp/ctower-" + String(Crypto.hex(Crypto.sha256(base)).prefix(16))
            try? fileManager.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
            chmod(socketDirectory, 0o700)
            if let runAs { try runAs.chown(socketDirectory) }
            logger.info("database socket path too long; using a short folder", metadata: ["socket": "\(socketDirectory)"])
        }

        let cluster = EmbeddedPostgres(
            configuration: configuration, binDirectory: binDirectory, base: base, socketDirectory: socketDirectory,
            runAs: runAs, logger: logger)
        try cluster.initializeIfNeeded()
        try cluster.writeSettings()
        if try cluster.isRunning() {
            logger.info("reusing the running embedded PostgreSQL", metadata: ["data": "\(cluster.dataDirectory)"])
        } else {
            logger.info("starting embedded PostgreSQL", metadata: ["data": "\(cluster.dataDirectory)"])
            try cluster.pgctl(["start", "-D", cluster.dataDirectory, "-w", "-t", "60", "-s", "-l", cluster.logFile])
            cluster.startedHere.withLock { $0 = true }
        }
        return cluster
    }

    private func initializeIfNeeded() throws {
        guard !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return }
        logger.info("creating the embedded PostgreSQL cluster (first run)", metadata: ["data": "\(dataDirectory)"])
        let result = try Self.run(
            binDirectory + "/initdb",
            ["-D", dataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
                + (configuration.durable ? [] : ["--no-sync"]),
            as: runAs)
        guard result.status == 0 else {
            throw StoreError(.configuration, "initdb failed (exit \(result.status)): \(result.lastLines)")
        }
    }

    /// Our settings live in `ctower.conf`, included from postgresql.conf, and are rewritten at
    /// every start so a moved folder still works.
    private func writeSettings() throws {
        var lines = [
            "# Written by ctower at every start; edit postgresql.conf instead.",
            "listen_addresses = ''",
            "unix_socket_directories = '\(socketDirectory.replacingOccurrences(of: "'", with: "''"))'",
            "unix_socket_permissions = 0700",
            "port = \(Self.port)",
            "max_connections = 200",
        ]
        if !configuration.durable {
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        let settingsPath = dataDirectory + "/ctower.conf"
        try (lines.joined(separator: "\n") + "\n").write(toFile: settingsPath, atomically: false, encoding: .utf8)
        let mainPath = dataDirectory + "/postgresql.conf"
        let main = (try? String(contentsOfFile: mainPath, encoding: .utf8)) ?? ""
        let include = "include_if_exists = 'ctower.conf'"
        if !main.contains(include) {
            try (main + "\n" + include + "\n").write(toFile: mainPath, atomically: false, encoding: .utf8)
        }
        if let runAs {
            try runAs.chown(settingsPath)
            try runAs.chown(mainPath)
        }
    }

    private func isRunning() throws -> Bool {
        try Self.run(binDirectory + "/pg_ctl", ["status", "-D", dataDirectory], as: runAs).status == 0
    }

    private func pgctl(_ arguments: [String]) throws {
        let result = try Self.run(binDirectory + "/pg_ctl", arguments, as: runAs)
        guard result.status == 0 else {
            throw StoreError(
                .unavailable,
                "pg_ctl \(arguments.first ?? "") failed (exit \(result.status)): \(result.lastLines); see \(logFile)")
        }
    }

    /// Creates the roles and the database, idempotently, as the cluster superuser.
    private func bootstrap() async throws {
        let worker = BlockingWorker(name: "ctower-embedded-bootstrap")
        defer { worker.stop() }
        let (owner, app, database) = (configuration.ownerRole, configuration.appRole, configuration.database)
        let superuserURL = self.superuserURL
        try await worker.run {
            var options = PGConnection.Options()
            options.statementCacheCapacity = 0
            let connection = try PGConnection.connect(conninfo: superuserURL, options: options)
            let ownerIdent = SQL.quoteIdentifier(owner)
            let appIdent = SQL.quoteIdentifier(app)
            try connection.simpleQuery(
                """
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = \(SQL.quoteLiteral(owner))) THEN
                        CREATE ROLE \(ownerIdent) LOGIN BYPASSRLS;
                    END IF;
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = \(SQL.quoteLiteral(app))) THEN
                        CREATE ROLE \(appIdent) LOGIN;
                    END IF;
                END
                $$;
                ALTER ROLE \(ownerIdent) LOGIN NOSUPERUSER BYPASSRLS;
                ALTER ROLE \(appIdent) LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                """)
            let exists = try connection.query(
                "SELECT 1 FROM pg_database WHERE datname = $1", [database.sqlBinding], prepared: false)
            if exists.isEmpty {
                try connection.simpleQuery(
                    "CREATE DATABASE \(SQL.quoteIdentifier(database)) OWNER \(ownerIdent) ENCODING 'UTF8' TEMPLATE template0")
            }
        }
    }

    // MARK: - Helpers

    static func findBinaries(_ explicit: String?, searchSystem: Bool = true) throws -> String {
        func hasServer(_ directory: String) -> Bool {
            FileManager.default.isExecutableFile(atPath: directory + "/initdb")
                && FileManager.default.isExecutableFile(atPath: directory + "/pg_ctl")
        }
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CTOWER_PG_BINDIR"], searchSystem {
            candidates.append(fromEnvironment)
        }
        if searchSystem, let pgConfig = which("pg_config"), let output = try? run(pgConfig, ["--bindir"], as: nil), output.status == 0 {
            candidates.append(output.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if searchSystem {
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
                .compactMap(Int.init).sorted(by: >)
            candidates += versions.map { "/usr/lib/postgresql/\($0)/bin" }
        }
        if searchSystem, let initdb = which("initdb") { candidates.append((initdb as NSString).deletingLastPathComponent) }
        guard let found = candidates.first(where: hasServer) else {
            throw StoreError(.configuration, missingBinariesMessage)
        }
        return found
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func absolutePath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (absolute as NSString).standardizingPath
    }

    /// Adds o+x to ancestors the system user could not traverse (e.g. /root is 0700).
    private static func makeTraversable(ancestorsOf path: String, logger: Logger) {
        var ancestors: [String] = []
        var current = (path as NSString).deletingLastPathComponent
        while current != "/" && !current.isEmpty {
            ancestors.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for directory in ancestors.reversed() {
            var info = stat()
            guard stat(directory, &info) == 0 else { continue }
            if info.st_mode & S_IXOTH == 0 {
                logger.warning(
                    "adding o+x (traverse only) to a parent folder so the postgres user can reach the database folder",
                    metadata: ["folder": "\(directory)"])
                chmod(directory, (info.st_mode & 0o7777) | S_IXOTH)
            }
        }
    }

    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    struct CommandResult {
        var status: Int32
        var output: String
        var lastLines: String {
            output.split(separator: "\n").suffix(3).joined(separator: " | ")
        }
    }

    /// Runs a command (as `account` when given) and collects its combined output.
    ///
    /// posix_spawn + waitpid rather than Foundation's Process: `pg_ctl start` leaves a daemon
    /// behind, and the output goes to a temporary file so the daemon cannot hold a pipe open.
    static func run(_ executable: String, _ arguments: [String], as account: SystemAccount?) throws -> CommandResult {
        var command: [String]
        if let account {
            if let runuser = which("runuser") {
                command = [runuser, "-u", account.name, "--", executable] + arguments
            } else if let setpriv = which("setpriv") {
                command =
                    [setpriv, "--reuid=\(account.uid)", "--regid=\(account.gid)", "--init-groups", "--", executable]
                    + arguments
            } else {
                throw StoreError(.configuration, "running as root needs runuser or setpriv (util-linux) to drop privileges")
            }
        } else {
            command = [executable] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment.removeValue(forKey: "PGDATA")
        let environmentStrings = environment.map { "\($0.key)=\($0.value)" }

        let outputPath = FileManager.default.temporaryDirectory.path + "/ctower-cmd-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // pg_ctl start leaves the postgres daemon running with whatever descriptors it inherited:
        // an open client socket or pipe of this process must not be among them, or closing it
        // here would never reach the peer.
        if let closeFrom = spawnAddCloseFrom { _ = closeFrom(&actions, 3) }

        let argv = command.map { strdup($0) } + [nil]
        let envp = environmentStrings.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawnStatus = posix_spawn(&pid, command[0], &actions, nil, argv, envp)
        guard spawnStatus == 0 else {
            throw StoreError(.configuration, "cannot run \(command[0]) (error \(spawnStatus))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw StoreError(.configuration, "lost track of \(command[0]) (errno \(errno))") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return CommandResult(status: exitCode, output: String(decoding: data, as: UTF8.self))
    }
}

/// An unprivileged system account PostgreSQL runs as when we are root.
struct SystemAccount: Sendable {
    let name: String
    let uid: uid_t
    let gid: gid_t

    init?(name: String) {
        guard let entry = getpwnam(name) else { return nil }
        self.name = name
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
    }

    func chown(_ path: String) throws {
        guard Glibc.chown(path, uid, gid) == 0 else {
            throw StoreError(.configuration, "cannot hand \(path) to the \(name) user (chown failed, errno \(errno))")
        }
    }
}

/// Clusters to stop at process exit (Swift Testing has no global teardown).
private enum ExitCleanup {
    private static let clusters = Mutex<[(EmbeddedPostgres, String?)]>([])
    private static let installed: Void = { atexit { ExitCleanup.stopAll() } }()

    static func register(_ cluster: EmbeddedPostgres, home: String?) {
        _ = installed
        clusters.withLock { $0.append((cluster, home)) }
    }

    static func stopAll() {
        let all = clusters.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for (cluster, home) in all {
            cluster.stopBlocking()
            if let home { try? FileManager.default.removeItem(atPath: home) }
        }
    }
}

/// glibc 2.34's posix_spawn_file_actions_addclosefrom_np, looked up at run time because Swift does
/// not see its declaration (it is behind _GNU_SOURCE). TowerCarrierHost spawns plugins the same way.
private typealias SpawnAddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private let spawnAddCloseFrom: SpawnAddCloseFrom? = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: SpawnAddCloseFrom.self)
}()
