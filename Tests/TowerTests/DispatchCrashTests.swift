import Foundation
import Testing
import TowerStore

@testable import Tower

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 4's restart safety and issue 3's "the database agrees": a real `ctower serve --role
/// dispatch` process is killed with SIGKILL again and again while thousands of queued messages
/// drain through the mock carrier; afterwards the carrier's ledger and the messages table agree,
/// every message exactly once.
@Suite("Dispatcher restart safety", .serialized, .enabled(if: DispatchFixture.binariesBuilt, Comment(rawValue: DispatchFixture.missing)))
struct DispatchCrashTests {
    /// A dispatcher child process.
    final class Child {
        let process = Process()

        init(fixture: DispatchFixture, log: String) throws {
            process.executableURL = URL(fileURLWithPath: DispatchFixture.pluginDirectory + "/ctower")
            process.arguments = [
                "serve", "--role", "dispatch", "--database-url", fixture.env.store.configuration.url, "--listen", "127.0.0.1:0",
                "--dispatch-claim-lease", "3.5", "--dispatch-send-timeout", "1", "--dispatch-batch-size", "50", "--dispatch-workers", "2",
                "--log-level", "notice",
                // Other suites queue messages in the same database; these children must not touch them.
                "--dispatch-org", fixture.org.description,
            ]
            process.environment = [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "CTOWER_HOME": fixture.directory + "/home",
                "CTOWER_MASTER_KEY": Data(fixture.env.keys.masterKey).base64EncodedString(),
                "CTOWER_TOKEN_KEY": Data(fixture.env.keys.tokenKey).base64EncodedString(),
            ]
            if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = FileHandle(forWritingAtPath: log)!
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        func kill(_ signal: Int32) async throws {
            Glibc.kill(process.processIdentifier, signal)
            _ = try await DispatchFixture.waitUntil(timeout: .seconds(15)) { !self.process.isRunning }
        }
    }

    @Test func everyMessageIsSentExactlyOnceAcrossRepeatedSIGKILL() async throws {
        let count = Int(ProcessInfo.processInfo.environment["CTOWER_DISPATCH_CRASH_MESSAGES"] ?? "") ?? 4000
        // idempotent=false: the mock records every Send it accepts, like a carrier without
        // idempotency keys, so a resend the dispatcher should not have made shows in the ledger.
        let fixture = try await DispatchFixture.make(numberCount: 4, settings: ["idempotent": "false", "latency_ms": "100"])
        try await fixture.queue(count, phones: count)
        let log = fixture.directory + "/dispatch.log"

        var child = try Child(fixture: fixture, log: log)
        var kills = 0
        var progressAtKills: [Int] = []
        let finished = try await DispatchFixture.waitUntil(timeout: .seconds(180)) {
            if kills < 8 {
                // Let it work a while, then kill it the moment it has messages handed off or about
                // to be (status `sending`), so every kill leaves something in doubt.
                try await Task.sleep(for: .milliseconds(Int.random(in: 200...900)))
                _ = try await DispatchFixture.waitUntil(timeout: .seconds(10)) {
                    (try await fixture.statusCounts()["sending"] ?? 0) > 0
                }
                try await child.kill(SIGKILL)
                kills += 1
                progressAtKills.append(fixture.ledger().count)
                child = try Child(fixture: fixture, log: log)
            }
            return try await fixture.unfinished() == 0
        }
        try await child.kill(SIGTERM)

        let (ledger, rows) = (fixture.ledger(), try await fixture.messages())
        let (duplicated, lost, disagreeing) = DispatchFixture.compare(ledger: ledger, rows: rows)
        let statuses = try await fixture.statusCounts()
        // The children log each recovery: how many rows were in doubt (handed off, outcome unknown).
        let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let inDoubt = logText.matches(of: /in_doubt=([0-9]+)/).reduce(0) { $0 + (Int($1.output.1) ?? 0) }
        print(
            "dispatch crash test: \(count) messages, \(kills) SIGKILLs at ledger sizes \(progressAtKills), \(inDoubt) in doubt after a kill, statuses \(statuses)"
        )
        #expect(finished, "messages left unfinished: \(statuses); see \(log)")
        #expect(kills >= 3)
        #expect(progressAtKills.filter { $0 < count }.count >= 3, "kills should land while messages are draining")
        #expect(kills == 8)
        #expect(inDoubt > 0, "at least one kill should land while sends are in flight, so recovery must ask the carrier")
        #expect(duplicated.isEmpty, "sent more than once: \(duplicated.prefix(5))")
        #expect(lost.isEmpty, "never reached the carrier: \(lost.prefix(5).map(\.key)) \(lost.prefix(5).map(\.status))")
        #expect(disagreeing.isEmpty, "database and ledger disagree: \(disagreeing.prefix(5).map { ($0.key, $0.status) })")
        #expect(ledger.count == count && rows.count == count)
        #expect(Set(ledger.map(\.key)) == Set(rows.map(\.key)))
    }
}
