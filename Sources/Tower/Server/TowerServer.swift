import Foundation
import Logging
import NIOCore
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// The whole server assembled: database (embedded or given), keys, domain services behind the
/// auth interceptor, health and reflection, on one gRPC port. `ctower serve` only parses
/// arguments into `Options` and calls `start`.
public final class TowerServer: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 7070
        /// libpq URL of the app role (NOBYPASSRLS). nil runs the embedded cluster under `home`.
        public var databaseURL: String?
        /// `$CTOWER_HOME`: embedded database, keys.
        public var home = ".ctower"
        /// Creates this org and owner when the database has no org yet.
        public var initialOrg: InitialOrg?
        /// Lets anyone create an org with OrgService.CreateOrg (public sign-up).
        public var allowSignup = false
        public var logger = Logger(label: "ctower.serve")
        public var rpc = RPCServer.Configuration()
        /// Where carrier plugins (`ctower-carrier-NAME`) are looked for before PATH; by default
        /// the directory of the running executable.
        public var pluginDirectories = [CarrierRegistry.Configuration.executableDirectory]
        /// What this process does: serve the API, dispatch queued messages, or both.
        public var role: Role = .all
        /// Tuning of the dispatcher (roles `dispatch` and `all`).
        public var dispatch = Dispatcher.Configuration()
        /// The clock quiet hours are judged by, for campaigns and the dispatcher. Real unless
        /// `ctower demo` shifts it.
        public var complianceClock = ComplianceClock.real

        public init() {}
    }

    /// `ctower serve --role`: API and dispatch processes can be scaled apart. A dispatch-only
    /// process still answers health checks and `/metrics` on its port.
    public enum Role: String, Sendable, CaseIterable {
        case api, dispatch, all

        var servesAPI: Bool { self != .dispatch }
        var dispatches: Bool { self != .api }
    }

    public struct InitialOrg: Sendable {
        public var name: String
        public var kind: OrgKind
        public var ownerEmail: String
        public var ownerPassword: String

        public init(name: String, kind: OrgKind, ownerEmail: String, ownerPassword: String) {
            self.name = name
            self.kind = kind
            self.ownerEmail = ownerEmail
            self.ownerPassword = ownerPassword
        }
    }

    public let address: SocketAddress
    public let store: Store
    let server: RPCServer
    let health: HealthService
    let cluster: EmbeddedPostgres?
    let carriers: CarrierRegistry
    let dispatcher: Dispatcher?
    let upkeep: CarrierUpkeep?
    let inbound: InboundFeed
    let logger: Logger

    private init(
        address: SocketAddress, store: Store, server: RPCServer, health: HealthService, cluster: EmbeddedPostgres?,
        carriers: CarrierRegistry, dispatcher: Dispatcher?, upkeep: CarrierUpkeep?, inbound: InboundFeed,
        logger: Logger
    ) {
        self.address = address
        self.store = store
        self.server = server
        self.health = health
        self.cluster = cluster
        self.carriers = carriers
        self.dispatcher = dispatcher
        self.upkeep = upkeep
        self.inbound = inbound
        self.logger = logger
    }

    public static func start(_ options: Options) async throws -> TowerServer {
        let logger = options.logger
        var cluster: EmbeddedPostgres?
        let appURL: String
        if let url = options.databaseURL {
            appURL = url
        } else {
            let embedded = try await EmbeddedPostgres.start(
                EmbeddedPostgres.Configuration(home: options.home), migrator: try Migrator.embedded(), logger: logger)
            logger.info("embedded PostgreSQL ready", metadata: ["data": "\(embedded.dataDirectory)"])
            cluster = embedded
            appURL = embedded.appURL
        }
        do {
            let store = Store(configuration: StoreConfiguration(url: appURL), logger: logger)
            let keys = try KeyRing.load(home: options.home)
            var signup: SignupPolicy = options.allowSignup ? .open : .closed
            if try await !IdentityBootstrap.anyOrgExists(store) {
                if let initial = options.initialOrg {
                    let created = try await IdentityBootstrap.createOrg(
                        store, name: initial.name, kind: initial.kind, ownerEmail: initial.ownerEmail, ownerPassword: initial.ownerPassword)
                    logger.notice(
                        "created the first org and its owner", metadata: ["org": "\(created.orgID)", "owner": "\(initial.ownerEmail)"])
                } else if !options.allowSignup {
                    // Valid for this process only, and only until the first org exists.
                    let token = SignupPolicy.newSetupToken()
                    signup = .setupToken(token)
                    logger.notice(
                        "no org yet: create the first one with OrgService.CreateOrg and this one-time setup_token, or restart with CTOWER_INIT_ORG, CTOWER_INIT_EMAIL and CTOWER_INIT_PASSWORD",
                        metadata: ["setup_token": "\(token)"])
                }
            }
            if options.role.servesAPI {
                // Best effort: a job missed here is still failed when it is next read.
                do {
                    let failed = try await ImportJobRecords.failOrphanedJobs(store)
                    if failed > 0 {
                        logger.notice("import jobs left running by a stopped server marked failed", metadata: ["jobs": "\(failed)"])
                    }
                } catch {
                    logger.warning("the sweep of orphaned import jobs failed", metadata: ["error": "\(error)"])
                }
            }
            let health = HealthService()
            let carriers = CarrierRegistry(configuration: CarrierRegistry.Configuration(pluginDirectories: options.pluginDirectories))
            await carriers.setEventSink { [logger] event in
                await CarrierWebhookIngress.recordUnsolicited(event, store: store, logger: logger)
            }
            let inbound = InboundFeed(store: store, logger: logger)
            var domain: [any RPCService] = [
                AuthServiceImpl(store: store, keys: keys), OrgServiceImpl(store: store, signup: signup), UserServiceImpl(store: store),
                IntegrationServiceImpl(store: store, keys: keys, registry: carriers),
                TemplateServiceImpl(store: store), MessageServiceImpl(store: store, feed: inbound), NumberServiceImpl(store: store),
                CampaignServiceImpl(store: store, complianceClock: options.complianceClock), LeadServiceImpl(store: store),
            ]
            var served =
                [
                    Grpc_Health_V1_Health.serviceName, AuthService.serviceName, OrgService.serviceName, UserService.serviceName,
                    IntegrationService.serviceName, TemplateService.serviceName, MessageService.serviceName, NumberService.serviceName,
                    CampaignService.serviceName, LeadService.serviceName,
                ]
                + ReflectionService.serviceNames
            if !options.role.servesAPI {
                domain = []
                served = [Grpc_Health_V1_Health.serviceName] + ReflectionService.serviceNames
            }
            let reflection = ReflectionService(files: TowerProtoFiles.all, serviceNames: served)
            var rpc = options.rpc
            rpc.host = options.host
            rpc.port = options.port
            rpc.logger = logger
            // Outermost first: every call is logged and counted, including refused ones.
            let metrics = RPCMetrics()
            rpc.interceptors =
                [AccessLogInterceptor(), metrics.interceptor, AuthInterceptor(store: store, signer: keys.signer)] + rpc.interceptors
            rpc.httpRoutes.append(metrics.route)
            rpc.httpRoutes.append(CarrierWebhookIngress(store: store, keys: keys, registry: carriers, logger: logger).route)
            let server = RPCServer(configuration: rpc, services: domain + [health, reflection.v1, reflection.v1alpha])
            let address = try await server.start()
            var dispatcher: Dispatcher?
            var upkeep: CarrierUpkeep?
            if options.role.dispatches {
                var dispatch = options.dispatch
                dispatch.complianceClock = options.complianceClock
                let started = Dispatcher(store: store, keys: keys, registry: carriers, configuration: dispatch, logger: logger)
                try await started.start()
                dispatcher = started
                var upkeepConfiguration = CarrierUpkeep.Configuration()
                upkeepConfiguration.orgs = dispatch.orgs
                upkeep = CarrierUpkeep(
                    store: store, configuration: upkeepConfiguration, carriers: (carriers, keys), logger: logger)
                upkeep?.start()
            }
            return TowerServer(
                address: address, store: store, server: server, health: health, cluster: cluster, carriers: carriers,
                dispatcher: dispatcher, upkeep: upkeep, inbound: inbound, logger: logger)
        } catch {
            try? await cluster?.stop()
            throw error
        }
    }

    /// Stops taking calls, lets in-flight calls finish within `grace`, closes the database.
    public func shutdown(grace: Duration) async {
        health.enterShutdown()
        // Live inbox streams end first, so the drain does not wait for them.
        await inbound.shutdown()
        await dispatcher?.stop()
        await upkeep?.stop()
        await server.shutdown(gracePeriod: grace)
        await carriers.shutdown()
        store.shutdown()
        do { try await cluster?.stop() } catch { logger.error("stopping embedded PostgreSQL failed", metadata: ["error": "\(error)"]) }
    }

    public func waitUntilStopped() async { await server.waitUntilStopped() }
}
