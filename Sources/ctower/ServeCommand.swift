import ArgumentParser
import Logging
import Tower
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

#if canImport(Glibc)
    import Glibc
#endif

/// `ctower serve`: the gRPC API on one port, with the embedded database unless a URL is given.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the Control Tower API over gRPC (HTTP/2).",
        discussion: """
            With no --database-url (or CTOWER_DATABASE_URL), runs a private PostgreSQL cluster under \
            $CTOWER_HOME (default ./.ctower), migrates it and connects as the app role.
            """)

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:7070"

    @Option(help: "libpq URL of the app role; default: CTOWER_DATABASE_URL, else the embedded cluster.")
    var databaseURL: String?

    @Option(help: "With --database-url: first apply migrations through this owner-role URL (or CTOWER_MIGRATE_DATABASE_URL).")
    var migrateDatabaseURL: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text or json.")
    var logFormat: LogFormat = .text

    @Option(help: "Seconds in-flight calls get to finish on SIGTERM/SIGINT before they are cancelled.")
    var shutdownGrace: Int = 10

    @Option(help: "PEM certificate chain (leaf first): serve TLS with ALPN h2/http1.1 (needs --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key (unencrypted) for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Name of the first org, created when none exists (or CTOWER_INIT_ORG).")
    var initOrg: String?

    @Flag(help: "Make the first org an agency that runs client orgs.")
    var initAgency = false

    @Flag(help: "Let anyone create an org with OrgService.CreateOrg (public sign-up).")
    var allowSignup = false

    @Option(help: "Email of the first org's owner (or CTOWER_INIT_EMAIL).")
    var initEmail: String?

    @Option(help: "What this process does: api (gRPC API only), dispatch (send queued messages), or all.")
    var role: TowerServer.Role = .all

    @Option(help: "Dispatcher: messages claimed per transaction.")
    var dispatchBatchSize: Int?

    @Option(help: "Dispatcher: batches in progress at once.")
    var dispatchWorkers: Int?

    @Option(help: "Dispatcher: seconds after which a dead dispatcher's claims are recovered (more than the send timeout).")
    var dispatchClaimLease: Double?

    @Option(help: "Dispatcher: seconds one carrier Send may take.")
    var dispatchSendTimeout: Double?

    @Option(help: "Dispatcher: send only this org's messages (repeatable), e.g. a process pinned to a large tenant.")
    var dispatchOrg: [String] = []

    func run() async throws {
        logFormat.bootstrap(level: logLevel)
        let logger = Logger(label: "ctower.serve")
        guard let (host, port) = ListenAddress.parse(listen) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:7070 (got \(listen))")
        }
        var options = TowerServer.Options()
        options.host = host
        options.port = port
        options.databaseURL = databaseURL ?? Environment.value("CTOWER_DATABASE_URL")
        options.home = Environment.value("CTOWER_HOME") ?? ".ctower"
        options.logger = logger
        options.allowSignup = allowSignup
        options.role = role
        if let size = dispatchBatchSize { options.dispatch.batchSize = max(1, size) }
        if let workers = dispatchWorkers { options.dispatch.workers = max(1, workers) }
        if let lease = dispatchClaimLease { options.dispatch.claimLease = .milliseconds(Int(lease * 1000)) }
        if let timeout = dispatchSendTimeout { options.dispatch.sendTimeout = .milliseconds(Int(timeout * 1000)) }
        if !dispatchOrg.isEmpty {
            options.dispatch.orgs = Set(
                try dispatchOrg.map { text in
                    guard let org = OrgID(text) else { throw ValidationError("--dispatch-org \(text) is not an org id (a UUID)") }
                    return org
                })
        }
        guard options.dispatch.claimLease > options.dispatch.sendTimeout + options.dispatch.reservationHorizon else {
            throw ValidationError("--dispatch-claim-lease must exceed --dispatch-send-timeout plus the 2 s reservation horizon")
        }
        switch (tlsCert, tlsKey) {
        case let (cert?, key?): options.rpc.tls = RPCServer.TLSConfiguration(certificateChainPath: cert, privateKeyPath: key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        if let name = initOrg ?? Environment.value("CTOWER_INIT_ORG") {
            // The password comes only from the environment: command lines are visible to every user.
            guard let email = initEmail ?? Environment.value("CTOWER_INIT_EMAIL"), let password = Environment.value("CTOWER_INIT_PASSWORD")
            else {
                throw ValidationError("creating the first org needs CTOWER_INIT_EMAIL (or --init-email) and CTOWER_INIT_PASSWORD")
            }
            options.initialOrg = .init(name: name, kind: initAgency ? .agency : .standard, ownerEmail: email, ownerPassword: password)
        }
        if options.databaseURL != nil, let ownerURL = migrateDatabaseURL ?? Environment.value("CTOWER_MIGRATE_DATABASE_URL") {
            let report = try await Migrator.embedded().migrate(url: ownerURL, logger: logger)
            logger.info("migrations applied", metadata: ["count": "\(report.applied.count)"])
        }
        let server = try await TowerServer.start(options)
        logger.info("serving", metadata: ["address": "\(server.address)", "home": "\(options.home)"])
        try await withShutdownSignals {
            logger.info("draining")
            await server.shutdown(grace: .seconds(shutdownGrace))
        }
        await server.waitUntilStopped()
        logger.info("stopped")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
extension TowerServer.Role: ExpressibleByArgument {}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }
}
