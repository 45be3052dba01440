import Foundation
import Testing
import TowerCarrierHost
import TowerStore

@testable import Tower

/// Two live dispatchers on one org, and more messages in flight than the carrier takes at once:
/// messages wait for a send permit while they are already `sending`, long past the claim lease.
/// The other dispatcher's stale-claim sweep must not take such a message over (it would ask the
/// carrier, hear "not found", queue it again and send it a second time). The mock ignores
/// repeated idempotency keys (`idempotent=false`), so a second send would show in its ledger.
@Suite("Dispatcher claim lease", .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchLeaseTests {
    @Test(.timeLimit(.minutes(2))) func aLiveHandOffIsNotRecoveredWhenItsLeaseRunsOut() async throws {
        let count = 6000
        // 256 sends in flight at 300 ms each: the plugin takes about 850 a second, while the two
        // dispatchers put 4,000 in line at once (4 workers × 500 each).
        let fixture = try await DispatchFixture.make(numberCount: 4, settings: ["latency_ms": "300", "idempotent": "false"])
        try await fixture.queue(count, phones: 500)
        let lease = Duration.seconds(1)
        // Its own plugin process: these sends must not queue behind other suites' (or theirs behind these).
        var registryConfiguration = CarrierRegistry.Configuration(pluginDirectories: [DispatchFixture.pluginDirectory], searchPATH: false)
        registryConfiguration.adjust = { $0.shutdownGrace = .seconds(1) }
        let registry = CarrierRegistry(configuration: registryConfiguration)
        let dispatchers = ["lease-test-a", "lease-test-b"].map { instance in
            var configuration = Dispatcher.Configuration(instanceID: instance + "-" + UUID().uuidString.prefix(8).lowercased())
            configuration.orgs = [fixture.org]
            configuration.batchSize = 500
            configuration.workers = 4
            configuration.claimLease = lease
            return Dispatcher(store: fixture.env.store, keys: fixture.env.keys, registry: registry, configuration: configuration)
        }
        for dispatcher in dispatchers { try await dispatcher.start() }

        // The situation under test must arise: rows `sending` for longer than the lease.
        var staleSeen = 0
        let org = fixture.org
        let finished = try await DispatchFixture.waitUntil(timeout: .seconds(60)) {
            let stale = try await fixture.env.store.withTransaction(tenant: org, readOnly: true) { tx in
                try await tx.query(
                    """
                    SELECT count(*) AS n FROM messages
                    WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => \(lease.timeInterval))
                    """
                ).one().decode("n", as: Int.self)
            }
            staleSeen = max(staleSeen, stale)
            return try await fixture.unfinished() == 0
        }
        for dispatcher in dispatchers { await dispatcher.stop() }
        await registry.shutdown()

        let (ledger, rows) = (fixture.ledger(), try await fixture.messages())
        let (duplicated, lost, disagreeing) = DispatchFixture.compare(ledger: ledger, rows: rows)
        let statuses = try await fixture.statusCounts()
        print("dispatch lease test: \(count) messages, at most \(staleSeen) sending past the lease at once; \(statuses)")
        #expect(finished, "messages left unfinished: \(statuses)")
        #expect(staleSeen > 0, "no message waited past its lease; the test did not test anything")
        #expect(duplicated.count == 0, "\(duplicated.count) sent more than once, e.g. \(duplicated.keys.prefix(3))")
        #expect(lost.count == 0, "never reached the carrier: \(lost.prefix(5).map { ($0.key, $0.status) })")
        #expect(
            disagreeing.count == 0,
            "database and ledger disagree on \(disagreeing.count): \(disagreeing.prefix(3).map { ($0.key, $0.status) })")
        #expect(ledger.count == count)
        #expect(rows.count == count)
    }
}
