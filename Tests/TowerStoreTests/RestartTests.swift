import Foundation
import Testing

@testable import TowerStore

@Suite("Pool recovery after PostgreSQL restarts")
struct RestartTests {
    @Test("while PostgreSQL is down calls fail fast with unavailable; afterwards they recover", .timeLimit(.minutes(1)))
    func reconnect() async throws {
        if ProcessInfo.processInfo.environment["CTOWER_TEST_DATABASE_URL"] != nil { return }  // cannot restart a shared server
        let (cluster, _) = try await makePrivateCluster(migrate: false)
        let store = Store(configuration: StoreConfiguration(url: cluster.appURL, poolSize: 3, maxWait: .seconds(2)))
        defer {
            store.shutdown()
            cluster.stopBlocking()
        }
        @Sendable func ping() async throws -> Int {
            try await store.withTransaction(tenant: nil) { tx in try await tx.query("SELECT 1").one().decode(0, as: Int.self) }
        }
        // Warm up every pooled connection.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 { group.addTask { try await ping() } }
            for try await value in group { #expect(value == 1) }
        }

        let listener = try await store.listen(to: ["restart_probe"])
        defer { listener.stop() }

        try await cluster.kill()
        for _ in 0..<5 {
            let started = ContinuousClock.now
            let error = await #expect(throws: StoreError.self) { _ = try await ping() }
            #expect(error?.code == .unavailable)
            #expect(started.duration(to: .now) < .seconds(1), "a call to a down database must fail fast")
        }

        try await cluster.startAgain()
        #expect(try await ping() == 1)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 { group.addTask { try await ping() } }
            for try await value in group { #expect(value == 1) }
        }

        // pg_ctl restart: at most a brief blip, then every call succeeds without restarting anything.
        try await cluster.restart()
        var failures = 0
        var recovered = false
        for _ in 0..<50 {
            do {
                _ = try await ping()
                recovered = true
                break
            } catch let error as StoreError {
                #expect(error.code == .unavailable)
                failures += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(recovered)
        #expect(failures <= 3)
        for _ in 0..<6 { #expect(try await ping() == 1) }

        // The listener reconnected by itself, said so, and hears new notifications.
        var iterator = listener.makeAsyncIterator()
        var sawReconnect = false
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            try await store.withTransaction(tenant: nil) { tx in try await tx.notify(channel: "restart_probe", payload: "ping") }
            guard let event = await iterator.next() else { break }
            if event.isReconnect { sawReconnect = true }
            if !event.isReconnect && event.payload == "ping" { break }
        }
        #expect(sawReconnect)
    }
}

@Suite("Embedded PostgreSQL lifecycle")
struct EmbeddedLifecycleTests {
    @Test("a second start reuses the running cluster; after a stop, the next start keeps the data", .timeLimit(.minutes(1)))
    func reuse() async throws {
        if ProcessInfo.processInfo.environment["CTOWER_TEST_DATABASE_URL"] != nil { return }
        let (first, home) = try await makePrivateCluster(migrate: true)
        defer { first.stopBlocking() }
        let org = OrgID.random()
        let store = Store(configuration: StoreConfiguration(url: first.appURL, poolSize: 1))
        try await store.withTransaction(tenant: org) { tx in
            try await tx.execute("INSERT INTO orgs (id, name) VALUES (\(org), 'kept')")
        }
        store.shutdown()

        var configuration = EmbeddedPostgres.Configuration(home: home)
        configuration.durable = false
        let migrator = try Migrator(directory: TestDatabase.migrationsDirectory)
        let second = try await EmbeddedPostgres.start(configuration, migrator: migrator)
        #expect(second.appURL == first.appURL)
        try await second.stop()  // did not start it: a no-op
        try await first.stop()  // started it: really stops

        let third = try await EmbeddedPostgres.start(configuration, migrator: migrator)
        defer { third.stopBlocking() }
        let again = Store(configuration: StoreConfiguration(url: third.appURL, poolSize: 1))
        defer { again.shutdown() }
        let name = try await again.withTransaction(tenant: org) { tx in
            try await tx.query("SELECT name FROM orgs").one().decode(0, as: String.self)
        }
        #expect(name == "kept")
        #expect(FileManager.default.fileExists(atPath: third.socketDirectory + "/.s.PGSQL.5432"))
        let settings = try String(contentsOfFile: third.dataDirectory + "/ctower.conf", encoding: .utf8)
        #expect(settings.contains("listen_addresses = ''"))
    }
}
