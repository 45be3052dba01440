import CarrierKit
import Foundation
import Testing
import TowerCarrierHost
import TowerProto

@Suite(
    "Carrier host with the mock plugin", .serialized,
    .enabled(if: TestSupport.mockIsBuilt, Comment(rawValue: TestSupport.missingMockMessage)))
struct CarrierHostTests {
    @Test func handshakeReportsPluginInfo() async throws {
        let host = TestSupport.mockHost()
        try await host.start()
        let info = try #require(await host.pluginInfo)
        #expect(info.name == "mock")
        #expect(info.protocolVersion == 1)
        #expect(info.capabilities.contains(.sendSms))
        #expect(info.capabilities.contains(.queryStatus))
        #expect(info.maxInFlight == 256)
        #expect(await host.health == .running)
        await host.shutdown()
        #expect(await host.health == .stopped)
    }

    @Test func versionMismatchNamesBothRanges() async throws {
        let host = TestSupport.mockHost { $0.supportedMajorVersions = 2...3 }
        let error = await #expect(throws: CarrierError.self) { try await host.start() }
        #expect(error?.code == .versionMismatch)
        #expect(error?.message.contains("1...1") == true)
        #expect(error?.message.contains("2...3") == true)
        #expect(error?.message.contains("mock") == true)
    }

    @Test func missingPluginIsReported() async throws {
        var configuration = CarrierHost.Configuration(carrierName: "does-not-exist")
        configuration.pluginDirectories = [TestSupport.temporaryDirectory()]
        configuration.searchPATH = false
        let host = CarrierHost(configuration: configuration)
        let error = await #expect(throws: CarrierError.self) { try await host.start() }
        #expect(error?.code == .pluginNotFound)
    }

    @Test func sendDeliversStatusEventAndAcksIt() async throws {
        let dir = TestSupport.temporaryDirectory()
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: ["api_key": "k"], settings: ["seed": "7", "ledger_path": dir + "/ledger"])
        let result = try await host.send(TestSupport.message("msg-1"), connection: "c1")
        #expect(result.providerMessageID.hasPrefix("MK"))
        #expect(!result.duplicate)
        let event = await TestSupport.firstEvent(in: host) { event in
            if case .deliveryStatus(let status) = event.kind { return status.providerMessageID == result.providerMessageID }
            return false
        }
        guard case .deliveryStatus(let status)? = event?.kind else {
            Issue.record("no delivery status event")
            return
        }
        #expect(status.state == .delivered)
        #expect(status.idempotencyKey == "msg-1")
        #expect(event?.connectionID == "c1")
        // Acked: the plugin's redelivery (every second) would otherwise resend it; the host
        // drops duplicates, so the stream must stay quiet either way.
        let again = await TestSupport.firstEvent(in: host, within: .milliseconds(2500)) { _ in true }
        #expect(again == nil)
        let status2 = try await host.queryStatus(idempotencyKey: "msg-1", connection: "c1")
        #expect(status2.found && status2.providerMessageID == result.providerMessageID && status2.state == .delivered)
        #expect(TestSupport.ledger(dir + "/ledger").map(\.key) == ["msg-1"])
        await host.shutdown()
    }

    @Test func anEventTheConsumerCouldNotStoreComesAgainAndAStoredOneDoesNot() async throws {
        let host = TestSupport.mockHost { $0.acknowledgeEventsOnDelivery = false }
        try await host.start()
        try await host.configure(connection: "c1", credentials: ["api_key": "k"], settings: ["seed": "7"])
        let result = try await host.send(TestSupport.message("msg-ack"), connection: "c1")
        let providerID = result.providerMessageID
        let isOurs: @Sendable (CarrierEvent) -> Bool = { event in
            if case .deliveryStatus(let status) = event.kind { return status.providerMessageID == providerID }
            return false
        }
        let first = try #require(await TestSupport.firstEvent(in: host, where: isOurs))
        #expect(first.acknowledgement != nil)
        // Not stored (say the database was down): no Ack, and the plugin's redelivery must not
        // be dropped as a duplicate.
        first.settle(stored: false)
        let second = try #require(await TestSupport.firstEvent(in: host, within: .seconds(5), where: isOurs))
        #expect(second == first)
        second.settle(stored: true)
        // Acknowledged: the plugin stops resending (its interval is one second).
        let third = await TestSupport.firstEvent(in: host, within: .milliseconds(2500)) { _ in true }
        #expect(third == nil)
        await host.shutdown()
    }

    @Test func resendWithSameKeyIsIdempotent() async throws {
        let dir = TestSupport.temporaryDirectory()
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["ledger_path": dir + "/ledger", "status_events": "false"])
        let first = try await host.send(TestSupport.message("same-key"), connection: "c1")
        let second = try await host.send(TestSupport.message("same-key"), connection: "c1")
        #expect(first.providerMessageID == second.providerMessageID)
        #expect(!first.duplicate && second.duplicate)
        #expect(TestSupport.ledger(dir + "/ledger").count == 1)
        await host.shutdown()
    }

    @Test func rateLimitAnswersRateLimitedWithRetryAfter() async throws {
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["rate_limit_mps": "1", "status_events": "false"])
        var limited: CarrierError?
        for index in 0..<5 {
            do {
                _ = try await host.send(TestSupport.message("rl-\(index)"), connection: "c1")
            } catch {
                limited = error
                break
            }
        }
        let error = try #require(limited)
        #expect(error.code == .rateLimited)
        #expect(error.submissionState == .notSubmitted)
        #expect((error.retryAfter ?? .zero) > .zero)
        let throttle = await TestSupport.firstEvent(in: host) { if case .throttle = $0.kind { return true } else { return false } }
        #expect(throttle != nil)
        await host.shutdown()
    }

    @Test func cancelStillGetsAnAnswerAndNothingIsSent() async throws {
        let dir = TestSupport.temporaryDirectory()
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["latency_ms": "5000", "ledger_path": dir + "/ledger"])
        let sending = Task { try await host.send(TestSupport.message("cancel-me"), connection: "c1") }
        try await Task.sleep(for: .milliseconds(200))
        sending.cancel()
        let started = ContinuousClock.now
        let result = await sending.result
        #expect(ContinuousClock.now - started < .seconds(3))
        guard case .failure(let error as CarrierError) = result else {
            Issue.record("expected a CarrierError, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
        #expect(error.submissionState == .notSubmitted)
        #expect(try await host.queryStatus(idempotencyKey: "cancel-me", connection: "c1").found == false)
        #expect(TestSupport.ledger(dir + "/ledger").isEmpty)
        await host.shutdown()
    }

    @Test func deadlineCancelsTheRequest() async throws {
        // A generous slack: under a loaded machine the plugin's CANCELLED answer can take longer
        // than the default 500 ms to come back, and the host's own deadline must not win the race.
        let host = TestSupport.mockHost { $0.deadlineSlack = .seconds(5) }
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["latency_ms": "5000"])
        let error = await #expect(throws: CarrierError.self) {
            try await host.send(TestSupport.message("slow"), connection: "c1", timeout: .milliseconds(300))
        }
        // The plugin saw the same timeout and answered CANCELLED (not submitted) within the slack.
        #expect(error?.code == .cancelled)
        #expect(error?.submissionState == .notSubmitted)
        await host.shutdown()
    }

    @Test func strayStdoutPrintsDoNotBreakTheProtocol() async throws {
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["noisy": "true", "status_events": "false"])
        for index in 0..<20 {
            _ = try await host.send(TestSupport.message("noisy-\(index)"), connection: "c1")
        }
        #expect(await host.health == .running)
        await host.shutdown()
    }

    @Test func authErrorsAreClassified() async throws {
        let host = TestSupport.mockHost()
        try await host.start()
        let error = await #expect(throws: CarrierError.self) {
            try await host.send(TestSupport.message("x"), connection: "never-configured")
        }
        #expect(error?.code == .auth)
        #expect(error?.submissionState == .notSubmitted)
        let account = try await { () async throws -> Carrier_CheckAccountResponse in
            try await host.configure(connection: "c2", credentials: ["api_key": "ok"])
            return try await host.checkAccount(connection: "c2")
        }()
        #expect(account.status == "active")
        await host.shutdown()
    }

    @Test func repliesArriveAsInboundEvents() async throws {
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["reply_rate": "1", "seed": "3"])
        _ = try await host.send(TestSupport.message("reply-1"), connection: "c1")
        let event = await TestSupport.firstEvent(in: host) { if case .inboundMessage = $0.kind { return true } else { return false } }
        guard case .inboundMessage(let inbound)? = event?.kind else {
            Issue.record("no inbound message")
            return
        }
        #expect(inbound.from == "+15125550100")
        #expect(inbound.to == "+15550001000")
        #expect(!inbound.body.isEmpty)
        await host.shutdown()
    }

    @Test func killMidSendReportsUnknownThenQueryStatusResolvesAndHostRestarts() async throws {
        let dir = TestSupport.temporaryDirectory()
        let host = TestSupport.mockHost()
        try await host.start()
        try await host.configure(connection: "c1", credentials: [:], settings: ["latency_ms": "3000", "ledger_path": dir + "/ledger"])
        let firstPID = try #require(await host.processID)
        let sending = Task { try await host.send(TestSupport.message("in-flight"), connection: "c1") }
        try await Task.sleep(for: .milliseconds(300))
        kill(firstPID, SIGKILL)
        let result = await sending.result
        guard case .failure(let error as CarrierError) = result else {
            Issue.record("expected a CarrierError, got \(result)")
            return
        }
        #expect(error.code == .pluginCrashed)
        #expect(error.submissionState == .unknown)
        // The restarted plugin was re-configured by the host, so QueryStatus works at once.
        let status = try await host.queryStatus(idempotencyKey: "in-flight", connection: "c1")
        #expect(status.found == false)
        let secondPID = try #require(await host.processID)
        #expect(secondPID != firstPID)
        #expect(await host.health == .running)
        await host.shutdown()
    }

    @Test func crashLoopMarksTheCarrierUnhealthy() async throws {
        let host = TestSupport.mockHost {
            $0.maxRestarts = 2
            $0.restartWindow = .seconds(60)
        }
        try await host.start()
        for _ in 0..<3 {
            let pid = try #require(await host.processID)
            kill(pid, SIGKILL)
            // Wait for the restart (or the verdict).
            for _ in 0..<200 {
                try await Task.sleep(for: .milliseconds(10))
                let current = await host.processID
                if current != nil && current != pid { break }
                if case .unhealthy = await host.health { break }
            }
        }
        let pid = await host.processID
        if let pid { kill(pid, SIGKILL) }
        try await Task.sleep(for: .milliseconds(300))
        guard case .unhealthy(let reason) = await host.health else {
            Issue.record("expected unhealthy, got \(await host.health)")
            return
        }
        #expect(reason.contains("crashes"))
        let error = await #expect(throws: CarrierError.self) {
            try await host.send(TestSupport.message("x"), connection: "c1")
        }
        #expect(error?.code == .unavailable)
        #expect(error?.submissionState == .notSubmitted)
    }
}
