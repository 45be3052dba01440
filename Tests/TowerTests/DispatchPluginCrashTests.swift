import Foundation
import Testing
import TowerCarrierHost
import TowerStore

@testable import Tower

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 3's crash test with the database in it: the mock plugin is killed with SIGKILL again and
/// again while the dispatcher sends 10,000 queued messages through it. The mock records every
/// Send it accepts, even a repeated key (`idempotent=false`, like a carrier without idempotency),
/// so a resend after a crash would show up twice. At the end the mock's ledger has each message
/// exactly once, and the messages table agrees with it row by row.
@Suite("Dispatcher across plugin crashes", .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchPluginCrashTests {
    @Test(.timeLimit(.minutes(4))) func everyMessageOnceWhileThePluginIsKilledRepeatedly() async throws {
        let count = 10_000
        let fixture = try await DispatchFixture.make(numberCount: 4, settings: ["latency_ms": "2", "idempotent": "false"])
        try await fixture.queue(count, phones: 200)
        // Its own registry: killing this plugin must not disturb other suites' sends.
        var registryConfiguration = CarrierRegistry.Configuration(pluginDirectories: [DispatchFixture.pluginDirectory], searchPATH: false)
        registryConfiguration.adjust = {
            $0.shutdownGrace = .seconds(1)
            $0.initialRestartDelay = .milliseconds(20)
            $0.maxRestartDelay = .milliseconds(200)
            // Eight kills in a minute are the test, not a crash loop.
            $0.maxRestarts = 100
        }
        let registry = CarrierRegistry(configuration: registryConfiguration)
        var configuration = Dispatcher.Configuration()
        configuration.orgs = [fixture.org]
        configuration.batchSize = 250
        configuration.sendTimeout = .seconds(3)
        configuration.claimLease = .seconds(6)
        let dispatcher = Dispatcher(store: fixture.env.store, keys: fixture.env.keys, registry: registry, configuration: configuration)
        try await dispatcher.start()

        var kills = 0
        var ledgerAtKills: [Int] = []
        let finished = try await DispatchFixture.waitUntil(timeout: .seconds(200)) {
            let sent = fixture.ledger().count
            let due = kills < 8 && sent > (kills + 1) * count / 12
            if due, let pid = await (try? registry.host(for: "mock"))?.processID {
                kill(pid, SIGKILL)
                kills += 1
                ledgerAtKills.append(sent)
            }
            return try await fixture.unfinished() == 0
        }
        await dispatcher.stop()
        await registry.shutdown()

        let (ledger, rows) = (fixture.ledger(), try await fixture.messages())
        let (duplicated, lost, disagreeing) = DispatchFixture.compare(ledger: ledger, rows: rows)
        print("dispatch plugin-crash test: \(count) messages, \(kills) SIGKILLs at ledger sizes \(ledgerAtKills)")
        let statuses = try await fixture.statusCounts()
        #expect(finished, "messages left unfinished: \(statuses)")
        #expect(kills >= 4, "the plugin should have been killed while messages were flowing")
        #expect(duplicated.isEmpty, "sent more than once: \(duplicated.prefix(5))")
        #expect(lost.isEmpty, "never reached the carrier: \(lost.prefix(5).map { ($0.key, $0.status) })")
        #expect(disagreeing.isEmpty, "database and ledger disagree: \(disagreeing.prefix(5).map { ($0.key, $0.status) })")
        #expect(ledger.count == count && rows.count == count)
    }
}
