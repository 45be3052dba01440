import Foundation
import Tower
import TowerCrypto
import TowerProto
import TowerRPC
import TowerStandardServices
import TowerStore

/// A real PostgreSQL (embedded, in a temp folder; or `CTOWER_TEST_DATABASE_URL`) migrated with
/// the embedded migrations, plus the identity services behind the auth interceptor.
struct IdentityEnvironment: Sendable {
    let store: Store
    let keys: KeyRing
    let passwords = PasswordHasher(cost: .testing)
    let throttle: LoginThrottle

    static let shared = Task<IdentityEnvironment, Error> {
        let migrator = try Migrator.embedded()
        let appURL: String
        if let url = ProcessInfo.processInfo.environment["CTOWER_TEST_DATABASE_URL"], !url.isEmpty {
            _ = try await migrator.migrate(url: url)
            appURL = url
        } else {
            let home = FileManager.default.temporaryDirectory.path + "/ctower-tower-test-\(UUID().uuidString.prefix(8))"
            var configuration = EmbeddedPostgres.Configuration(home: home)
            configuration.durable = false
            let cluster = try await EmbeddedPostgres.start(configuration, migrator: migrator)
            cluster.stopAtProcessExit(removing: home)
            appURL = cluster.appURL
        }
        var configuration = StoreConfiguration(url: appURL)
        // Every suite shares this store and runs in parallel, with carrier event lanes and
        // dispatchers of their own: six connections ran out under the full run.
        configuration.poolSize = 16
        return IdentityEnvironment(
            store: Store(configuration: configuration), keys: .ephemeral(), throttle: LoginThrottle(maxFailures: 1000))
    }

    static func get() async throws -> IdentityEnvironment { try await shared.value }

    /// The shared throttle allows many failures: tests run in parallel from one "peer". The
    /// brute-force test brings its own.
    func services(throttle: LoginThrottle? = nil) -> [any RPCService] {
        [
            AuthServiceImpl(store: store, keys: keys, throttle: throttle ?? self.throttle, passwords: passwords),
            OrgServiceImpl(store: store), UserServiceImpl(store: store, passwords: passwords), HealthService(),
        ]
    }

    var interceptor: AuthInterceptor { AuthInterceptor(store: store, signer: keys.signer) }

    var channel: InProcessChannel { channel() }

    func channel(throttle: LoginThrottle? = nil) -> InProcessChannel {
        InProcessChannel(services: services(throttle: throttle), interceptors: [interceptor])
    }

    /// A fresh org with an owner whose email is unique to this call.
    func makeOrg(_ kind: OrgKind = .standard, name: String = "Acme Land") async throws -> (
        IdentityBootstrap.Created, email: String, password: String
    ) {
        let email = "owner-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let password = "correct horse battery"
        let created = try await IdentityBootstrap.createOrg(
            store, name: name, kind: kind, ownerEmail: email, ownerPassword: password, passwords: passwords)
        return (created, email, password)
    }

    func login(_ email: String, _ password: String, via channel: InProcessChannel? = nil) async throws -> Session {
        var request = LoginRequest()
        request.email = email
        request.password = password
        return try await AuthService.Client(channel: channel ?? self.channel).login(request)
    }
}

func bearer(_ token: String, org: String? = nil) -> CallOptions {
    var metadata: Metadata = ["authorization": .string("Bearer \(token)")]
    if let org { metadata.add("x-ctower-org", org) }
    return CallOptions(metadata: metadata)
}

/// The status a call failed with, or nil when it succeeded.
func status<T>(_ call: () async throws -> T) async -> RPCError.Code? {
    do {
        _ = try await call()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// The error a call failed with, or nil when it succeeded.
func rpcError<T>(_ call: () async throws -> T) async -> RPCError? {
    do {
        _ = try await call()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(.unknown, "\(error)")
    }
}
