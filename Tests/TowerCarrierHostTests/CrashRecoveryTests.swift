import Foundation
import Synchronization
import Testing
import TowerCarrierHost
import TowerProto

/// The guarantee the host exists for: a plugin crash never loses or duplicates a message, as long
/// as the caller resolves UNKNOWN sends with QueryStatus before resending.
@Suite("Crash recovery", .serialized, .enabled(if: TestSupport.mockIsBuilt, Comment(rawValue: TestSupport.missingMockMessage)))
struct CrashRecoveryTests {
    struct Tally: Sendable {
        var unknown = 0
        var resolvedFound = 0
        var resolvedNotFound = 0
        var retriedNotSubmitted = 0
    }

    final class Shared: Sendable {
        let tally = Mutex(Tally())
        let done = Atomic<Bool>(false)
    }

    /// Sends one message until the carrier has it exactly once.
    static func deliverExactlyOnce(_ key: String, host: CarrierHost, shared: Shared) async throws {
        let message = TestSupport.message(key)
        while true {
            do {
                _ = try await host.send(message, connection: "crash", timeout: .seconds(20))
                return
            } catch {
                switch error.submissionState {
                case .submitted:
                    return
                case .notSubmitted:
                    shared.tally.withLock { $0.retriedNotSubmitted += 1 }
                    try await Task.sleep(for: .milliseconds(5))
                case .unknown:
                    shared.tally.withLock { $0.unknown += 1 }
                    // Resolve before any resend: only "not found" allows sending again.
                    while true {
                        do {
                            let status = try await host.queryStatus(idempotencyKey: key, connection: "crash", timeout: .seconds(20))
                            if status.found {
                                shared.tally.withLock { $0.resolvedFound += 1 }
                                return
                            }
                            shared.tally.withLock { $0.resolvedNotFound += 1 }
                            break
                        } catch {
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
        }
    }

    @Test func repeatedSIGKILLWhileSendingLosesAndDuplicatesNothing() async throws {
        let count = Int(ProcessInfo.processInfo.environment["CTOWER_CRASH_TEST_SENDS"] ?? "") ?? 10_000
        let dir = TestSupport.temporaryDirectory()
        let ledgerPath = dir + "/ledger"
        let host = TestSupport.mockHost {
            $0.maxRestarts = 1_000_000
            $0.initialRestartDelay = .milliseconds(5)
            $0.maxRestartDelay = .milliseconds(50)
        }
        try await host.start()
        // idempotent=false: the mock records every Send it accepts, like a carrier without
        // idempotency keys, so any resend the host should not have made shows up in the ledger.
        try await host.configure(
            connection: "crash", credentials: [:],
            settings: ["ledger_path": ledgerPath, "latency_ms": "3", "idempotent": "false", "status_events": "false", "seed": "11"])

        let shared = Shared()
        let killer = Task {
            var kills = 0
            while !shared.done.load(ordering: .relaxed) {
                try? await Task.sleep(for: .milliseconds(60))
                if let pid = await host.processID, !shared.done.load(ordering: .relaxed) {
                    kill(pid, SIGKILL)
                    kills += 1
                }
            }
            return kills
        }
        let workers = 32
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var index = worker
                    while index < count {
                        try await Self.deliverExactlyOnce("crash-\(index)", host: host, shared: shared)
                        index += workers
                    }
                }
            }
            try await group.waitForAll()
        }
        shared.done.store(true, ordering: .relaxed)
        let kills = await killer.value
        await host.shutdown()

        let lines = TestSupport.ledger(ledgerPath)
        var perKey: [String: Int] = [:]
        for line in lines { perKey[line.key, default: 0] += 1 }
        let lost = (0..<count).filter { perKey["crash-\($0)"] == nil }
        let duplicated = perKey.filter { $0.value > 1 }
        let stats = shared.tally.withLock { $0 }
        print(
            "crash test: \(count) sends, \(kills) SIGKILLs, \(stats.unknown) unknown (\(stats.resolvedFound) found, \(stats.resolvedNotFound) not found), \(stats.retriedNotSubmitted) not-submitted retries"
        )
        #expect(kills >= 3, "the plugin should have been killed several times during the run")
        #expect(lost.isEmpty, "lost: \(lost.prefix(10))")
        #expect(duplicated.isEmpty, "duplicated: \(duplicated.prefix(10))")
        #expect(lines.count == count)
    }
}
