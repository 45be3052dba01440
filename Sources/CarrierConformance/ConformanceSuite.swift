import CarrierKit
import Foundation
import Logging
import TowerCarrierHost
import TowerProto

/// Runs a fixed list of scenarios against any carrier plugin executable — the protocol's
/// conformance kit (`ctower carrier test PATH`). A scenario passes, fails, or is skipped when
/// the plugin lacks the capability or the configuration lacks what it needs.
public struct ConformanceSuite: Sendable {
    public let executable: String
    public let configuration: ConformanceConfiguration
    private let logger: Logger
    private let connectionID = "conformance"

    public init(
        executable: String, configuration: ConformanceConfiguration = ConformanceConfiguration(),
        logger: Logger = Logger(label: "ctower.conformance")
    ) {
        self.executable = executable
        self.configuration = configuration
        self.logger = logger
    }

    /// The scenario names, in the order they run.
    public static let scenarios = [
        "handshake", "version mismatch", "ping", "only frames on stdout", "oversized frame", "exit on stdin close",
        "every request answered once (in-flight limit)", "cancel", "deadline", "rate limit and throttle", "crash mid-send is unknown",
        "duplicate idempotency key", "valid webhook signatures", "invalid webhook signatures", "shutdown drains",
    ]

    /// Runs every scenario (or those named in `only`), calling `progress` after each.
    public func run(only: Set<String>? = nil, progress: @Sendable (ConformanceResult) -> Void = { _ in }) async -> [ConformanceResult] {
        var results: [ConformanceResult] = []
        var capabilities: Set<Carrier_Capability>? = nil
        for name in Self.scenarios where only?.contains(name) ?? true {
            let started = ContinuousClock.now
            var result: ConformanceResult
            do {
                if capabilities == nil { capabilities = try await probeCapabilities() }
                let known = capabilities ?? []
                try await withTimeout(configuration.scenarioTimeout) {
                    try await self.scenario(name, capabilities: known)
                }
                result = ConformanceResult(scenario: name, outcome: .pass)
            } catch let skip as ScenarioSkip {
                result = ConformanceResult(scenario: name, outcome: .skip, detail: skip.description)
            } catch {
                result = ConformanceResult(scenario: name, outcome: .fail, detail: "\(error)")
            }
            result.duration = ContinuousClock.now - started
            progress(result)
            results.append(result)
        }
        return results
    }

    private func probeCapabilities() async throws -> Set<Carrier_Capability> {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        return Set(try await session.handshake().capabilities)
    }

    private func scenario(_ name: String, capabilities: Set<Carrier_Capability>) async throws {
        switch name {
        case "handshake": try await handshake()
        case "version mismatch": try await versionMismatch()
        case "ping": try await ping()
        case "only frames on stdout": try await onlyFrames(capabilities)
        case "oversized frame": try await oversizedFrame()
        case "exit on stdin close": try await exitOnStdinClose()
        case "every request answered once (in-flight limit)": try await inFlightLimit()
        case "cancel": try await cancel(capabilities)
        case "deadline": try await deadline(capabilities)
        case "rate limit and throttle": try await rateLimit(capabilities)
        case "crash mid-send is unknown": try await crashMidSend(capabilities)
        case "duplicate idempotency key": try await duplicateKey(capabilities)
        case "valid webhook signatures": try await webhooks(capabilities, valid: true)
        case "invalid webhook signatures": try await webhooks(capabilities, valid: false)
        case "shutdown drains": try await shutdownDrains(capabilities)
        default: throw ScenarioFailure("unknown scenario")
        }
    }

    // MARK: Raw protocol scenarios

    private func handshake() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        let ack = try await session.handshake()
        guard ack.majorVersion == 1 else { throw ScenarioFailure("HelloAck.major_version is \(ack.majorVersion), expected 1") }
        guard ack.minMajorVersion <= 1, ack.maxMajorVersion >= 1 else {
            throw ScenarioFailure("HelloAck range \(ack.minMajorVersion)...\(ack.maxMajorVersion) does not contain the chosen version 1")
        }
        guard !ack.pluginName.isEmpty, !ack.pluginVersion.isEmpty else {
            throw ScenarioFailure("plugin_name and plugin_version must be set")
        }
        if let violation = session.violation { throw ScenarioFailure(violation) }
    }

    private func versionMismatch() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        let ack = try await session.handshake(versions: 90...91)
        guard ack.majorVersion == 0 else {
            throw ScenarioFailure("host speaks 90...91 but the plugin chose \(ack.majorVersion); it must answer 0")
        }
        guard ack.maxMajorVersion >= ack.minMajorVersion, ack.minMajorVersion > 0 else {
            throw ScenarioFailure("the HelloAck must state the plugin's own range so the host can report it")
        }
        guard await session.waitForExit(timeout: .seconds(5)) != nil else {
            throw ScenarioFailure("the plugin kept running after a version mismatch")
        }
    }

    private func ping() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        var ping = Carrier_Envelope()
        ping.id = 4242
        ping.payload = .ping(Carrier_Ping())
        session.write(ping)
        guard let pong = await session.next(timeout: .seconds(5), where: { if case .pong = $0.payload { true } else { false } }) else {
            throw ScenarioFailure("no Pong within 5 s")
        }
        guard pong.id == 4242 else { throw ScenarioFailure("the Pong carried id \(pong.id), not the Ping's 4242") }
    }

    private func onlyFrames(_ capabilities: Set<Carrier_Capability>) async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        // Exercise the plugin a little so stray prints in its handlers would show up.
        _ = try await session.call(id: 1, connectionID: connectionID, .configure(configureRequest()))
        var nextID: UInt64 = 2
        if capabilities.contains(.sendSms) {
            _ = try await session.call(
                id: nextID, connectionID: connectionID, .send(message(key: "conformance-frames-\(UUID().uuidString)")))
            nextID += 1
        }
        if capabilities.contains(.accountCheck) {
            _ = try await session.call(id: nextID, connectionID: connectionID, .checkAccount(Carrier_CheckAccountRequest()))
        }
        session.closeInput()
        guard await session.waitForExit(timeout: .seconds(10)) != nil else {
            throw ScenarioFailure("the plugin did not exit after stdin closed")
        }
        if let violation = session.violation { throw ScenarioFailure("stdout carried something other than frames: \(violation)") }
    }

    private func oversizedFrame() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        let ack = try await session.handshake()
        let limit = ack.maxFrameBytes == 0 ? UInt32(CarrierProtocol.defaultMaxFrameBytes) : ack.maxFrameBytes
        let claimed = limit + 1
        // Only the length prefix and a few bytes: a plugin must refuse on the prefix alone.
        session.write(bytes: [
            UInt8(claimed >> 24), UInt8(claimed >> 16 & 0xff), UInt8(claimed >> 8 & 0xff), UInt8(claimed & 0xff), 1, 2, 3,
        ])
        guard let status = await session.waitForExit(timeout: .seconds(5)) else {
            throw ScenarioFailure("the plugin kept running after announcing a \(claimed)-byte frame (its max_frame_bytes is \(limit))")
        }
        guard status != 0 else { throw ScenarioFailure("the plugin exited with status 0 after an oversized frame; it must exit non-zero") }
    }

    private func exitOnStdinClose() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        session.closeInput()
        guard let status = await session.waitForExit(timeout: .seconds(5)) else {
            throw ScenarioFailure("the plugin was still running 5 s after its stdin closed")
        }
        guard status == 0 else { throw ScenarioFailure("the plugin exited with status \(status) after stdin closed; expected 0") }
    }

    private func inFlightLimit() async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        let ack = try await session.handshake()
        let count = min(2 * Int(max(1, ack.maxInFlight)) + 2, 300)
        // More than max_in_flight at once: every request still gets exactly one Response.
        for id in 1...count {
            var request = Carrier_Request()
            request.connectionID = "\(connectionID)-\(id)"
            request.operation = .configure(configureRequest())
            var envelope = Carrier_Envelope()
            envelope.id = UInt64(id)
            envelope.payload = .request(request)
            session.write(envelope)
        }
        var answered = Set<UInt64>()
        for _ in 1...count {
            guard let envelope = await session.next(timeout: .seconds(15), where: RawPluginSession.isResponse) else {
                throw ScenarioFailure("only \(answered.count) of \(count) concurrent requests were answered")
            }
            guard answered.insert(envelope.id).inserted else { throw ScenarioFailure("request \(envelope.id) was answered twice") }
            if case .response(let response) = envelope.payload, case .error(let error) = response.result,
                error.errorClass != .transient && error.errorClass != .auth
            {
                throw ScenarioFailure("over the limit the answer must be TRANSIENT, got \(error.errorClass)")
            }
        }
        if await session.next(timeout: .milliseconds(300), where: RawPluginSession.isResponse) != nil {
            throw ScenarioFailure("a request was answered more than once")
        }
    }

    private func cancel(_ capabilities: Set<Carrier_Capability>) async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        _ = try await session.call(id: 1, connectionID: connectionID, .configure(configureRequest()))
        let operation: Carrier_Request.Operation =
            capabilities.contains(.sendSms)
            ? .send(message(key: "conformance-cancel-\(UUID().uuidString)")) : .checkAccount(Carrier_CheckAccountRequest())
        var request = Carrier_Request()
        request.connectionID = connectionID
        request.operation = operation
        var envelope = Carrier_Envelope()
        envelope.id = 2
        envelope.payload = .request(request)
        session.write(envelope)
        var cancel = Carrier_Envelope()
        cancel.id = 2
        var reason = Carrier_Cancel()
        reason.reason = "conformance"
        cancel.payload = .cancel(reason)
        session.write(cancel)
        let response = try await session.response(id: 2, timeout: .seconds(15))
        if case .error(let error) = response.result, error.errorClass == .cancelled, error.submissionState == .unspecified {
            throw ScenarioFailure("a CANCELLED answer must say whether anything was submitted")
        }
        if await session.next(timeout: .milliseconds(300), where: { $0.id == 2 && RawPluginSession.isResponse($0) }) != nil {
            throw ScenarioFailure("the cancelled request was answered twice")
        }
    }

    private func deadline(_ capabilities: Set<Carrier_Capability>) async throws {
        guard capabilities.contains(.sendSms), let slow = configuration.slowSend else {
            throw ScenarioSkip("needs SEND_SMS and a slow_send section in the configuration")
        }
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        _ = try await session.call(id: 1, connectionID: connectionID, .configure(configureRequest(extra: slow.settings)))
        var request = Carrier_Request()
        request.connectionID = connectionID
        request.timeout = Google_Protobuf_Duration(.milliseconds(300))
        request.operation = .send(message(key: "conformance-deadline-\(UUID().uuidString)", to: slow.to))
        var envelope = Carrier_Envelope()
        envelope.id = 2
        envelope.payload = .request(request)
        let started = ContinuousClock.now
        session.write(envelope)
        let response = try await session.response(id: 2, timeout: .seconds(10))
        let took = ContinuousClock.now - started
        guard took < .seconds(3) else {
            throw ScenarioFailure("answered \(took) after a 300 ms deadline; give up as soon as you can after it")
        }
        if case .error(let error) = response.result, error.submissionState == .unspecified {
            throw ScenarioFailure("a send that ran out of time must say whether it was submitted")
        }
    }

    // MARK: Host-driven scenarios

    private func rateLimit(_ capabilities: Set<Carrier_Capability>) async throws {
        guard capabilities.contains(.sendSms), let variant = configuration.rateLimit else {
            throw ScenarioSkip("needs SEND_SMS and a rate_limit section in the configuration")
        }
        try await withHost(extraSettings: variant.settings) { host in
            var limited: CarrierError?
            for index in 0..<50 where limited == nil {
                do {
                    _ = try await host.send(
                        message(key: "conformance-rl-\(index)-\(UUID().uuidString)", to: variant.to), connection: connectionID)
                } catch let error as CarrierError where error.code == .rateLimited {
                    limited = error
                }
            }
            guard let limited else { throw ScenarioFailure("50 quick sends were never answered RATE_LIMITED") }
            guard limited.submissionState == .notSubmitted else {
                throw ScenarioFailure("RATE_LIMITED must be NOT_SUBMITTED, was \(limited.submissionState)")
            }
            guard let retryAfter = limited.retryAfter, retryAfter > .zero else {
                throw ScenarioFailure("RATE_LIMITED must carry retry_after")
            }
            let throttle = await host.firstEvent(within: .seconds(3)) { if case .throttle = $0.kind { true } else { false } }
            guard throttle != nil else { throw ScenarioFailure("no Throttle event within 3 s of RATE_LIMITED") }
        }
    }

    private func crashMidSend(_ capabilities: Set<Carrier_Capability>) async throws {
        guard capabilities.contains(.sendSms), let slow = configuration.slowSend else {
            throw ScenarioSkip("needs SEND_SMS and a slow_send section in the configuration")
        }
        try await withHost(extraSettings: slow.settings) { host in
            let key = "conformance-crash-\(UUID().uuidString)"
            let send = Task { () -> Result<SendResult, CarrierError> in
                do {
                    return .success(try await host.send(message(key: key, to: slow.to), connection: connectionID, timeout: .seconds(20)))
                } catch let error as CarrierError {
                    return .failure(error)
                } catch {
                    return .failure(CarrierError(.transient, "\(error)"))
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            guard let pid = await host.processID else { throw ScenarioFailure("the plugin is not running") }
            kill(pid, SIGKILL)
            switch await send.value {
            case .success: throw ScenarioFailure("the send finished before the kill; make slow_send slower")
            case .failure(let error):
                guard error.submissionState == .unknown else {
                    throw ScenarioFailure("a send in flight at a crash must be UNKNOWN, was \(error.submissionState) (\(error))")
                }
            }
            // The host restarts the plugin; it must serve again.
            _ = try await host.perform(.configure(configureRequest()), connection: connectionID, timeout: .seconds(15))
        }
    }

    private func duplicateKey(_ capabilities: Set<Carrier_Capability>) async throws {
        guard capabilities.contains(.sendSms) else { throw ScenarioSkip("needs SEND_SMS") }
        guard capabilities.contains(.idempotentSend) || capabilities.contains(.queryStatus) else {
            throw ScenarioSkip("needs IDEMPOTENT_SEND or QUERY_STATUS to recognise a repeated key")
        }
        try await withHost { host in
            let key = "conformance-dup-\(UUID().uuidString)"
            let first = try await host.send(message(key: key), connection: connectionID)
            if capabilities.contains(.idempotentSend) {
                let second = try await host.send(message(key: key), connection: connectionID)
                guard second.providerMessageID == first.providerMessageID else {
                    throw ScenarioFailure("IDEMPOTENT_SEND: the repeated key got a new message \(second.providerMessageID)")
                }
                guard second.duplicate else { throw ScenarioFailure("IDEMPOTENT_SEND: the repeat must say duplicate=true") }
            } else {
                let status = try await host.queryStatus(idempotencyKey: key, connection: connectionID)
                guard status.found, status.providerMessageID == first.providerMessageID else {
                    throw ScenarioFailure(
                        "QueryStatus did not find the message just sent with this key (found=\(status.found), id \(status.providerMessageID))"
                    )
                }
            }
            if capabilities.contains(.queryStatus) {
                var never = Carrier_QueryStatusRequest()
                never.idempotencyKey = "conformance-never-\(UUID().uuidString)"
                never.to = configuration.sendTo
                never.from = configuration.sendFrom
                var now = Google_Protobuf_Timestamp()
                now.seconds = Int64(Date().timeIntervalSince1970)
                never.notBefore = now
                // "Cannot tell" (an error that leaves the message in doubt) is safe; "found" is not.
                do {
                    guard case .queryStatus(let status) = try await host.perform(.queryStatus(never), connection: connectionID) else {
                        throw ScenarioFailure("QueryStatus answered with another operation's result")
                    }
                    guard !status.found else { throw ScenarioFailure("QueryStatus found a message for a key that was never sent") }
                } catch let error as CarrierError where error.code == .transient && error.submissionState == .unknown {
                    logger.debug("QueryStatus could not decide for a never-sent key: \(error)")
                }
            }
        }
    }

    private func webhooks(_ capabilities: Set<Carrier_Capability>, valid: Bool) async throws {
        guard capabilities.contains(.webhookParsing) else { throw ScenarioSkip("needs WEBHOOK_PARSING") }
        guard !configuration.webhooks.isEmpty else { throw ScenarioSkip("needs sample webhooks in the configuration") }
        try await withHost { host in
            for (index, sample) in configuration.webhooks.enumerated() {
                var request = Carrier_ParseWebhookRequest()
                request.method = sample.method
                request.url = sample.url
                request.headers = sample.headers.map { name, value in
                    var header = Carrier_Header()
                    header.name = name
                    header.value = value
                    return header
                }
                request.body = sample.body
                if !valid {
                    // Tampered in transit: one extra parameter breaks any signature over the body.
                    request.body += Array((sample.body.isEmpty ? "" : "&").utf8) + Array("ctower_conformance_tamper=1".utf8)
                }
                let response = try await host.parseWebhook(request, connection: connectionID)
                if valid {
                    guard response.verified else { throw ScenarioFailure("sample webhook \(index) did not verify") }
                    guard !response.events.isEmpty else { throw ScenarioFailure("sample webhook \(index) verified but produced no event") }
                } else {
                    guard !response.verified else { throw ScenarioFailure("tampered webhook \(index) verified") }
                    guard response.events.isEmpty else { throw ScenarioFailure("tampered webhook \(index) produced events") }
                }
            }
        }
    }

    private func shutdownDrains(_ capabilities: Set<Carrier_Capability>) async throws {
        let session = try RawPluginSession(executable: executable)
        defer { session.kill() }
        _ = try await session.handshake()
        _ = try await session.call(id: 1, connectionID: connectionID, .configure(configureRequest()))
        let ids: [UInt64] = Array(2...6)
        for id in ids {
            var request = Carrier_Request()
            request.connectionID = connectionID
            request.operation =
                capabilities.contains(.sendSms)
                ? .send(message(key: "conformance-drain-\(id)-\(UUID().uuidString)")) : .configure(configureRequest())
            var envelope = Carrier_Envelope()
            envelope.id = id
            envelope.payload = .request(request)
            session.write(envelope)
        }
        var shutdown = Carrier_ShutdownRequest()
        shutdown.grace = Google_Protobuf_Duration(.seconds(5))
        var request = Carrier_Request()
        request.operation = .shutdown(shutdown)
        var envelope = Carrier_Envelope()
        envelope.id = 100
        envelope.payload = .request(request)
        session.write(envelope)
        _ = try await session.response(id: 100, timeout: .seconds(10))
        for id in ids {
            // Everything in flight must have been answered by the time Shutdown is.
            guard await session.next(timeout: .milliseconds(50), where: { $0.id == id && RawPluginSession.isResponse($0) }) != nil else {
                throw ScenarioFailure("request \(id) was not answered before the Shutdown response")
            }
        }
        session.closeInput()
        guard let status = await session.waitForExit(timeout: .seconds(5)) else {
            throw ScenarioFailure("the plugin did not exit after Shutdown and stdin close")
        }
        guard status == 0 else { throw ScenarioFailure("the plugin exited with status \(status) after a clean shutdown") }
    }

    // MARK: Helpers

    private func configureRequest(extra: [String: String] = [:]) -> Carrier_ConfigureRequest {
        var request = Carrier_ConfigureRequest()
        request.credentials = configuration.credentials
        request.settings = configuration.settings.merging(extra) { _, new in new }
        return request
    }

    private func message(key: String, to: String? = nil) -> Carrier_SendRequest {
        var request = Carrier_SendRequest()
        request.idempotencyKey = key
        request.from = configuration.sendFrom
        request.to = to ?? configuration.sendTo
        request.body = configuration.sendBody
        return request
    }

    /// A started host for the plugin, configured with the connection, shut down afterwards.
    private func withHost(extraSettings: [String: String] = [:], _ body: (CarrierHost) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "ctower-conformance-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let absolute = URL(fileURLWithPath: executable).standardizedFileURL.path
        try FileManager.default.createSymbolicLink(atPath: directory + "/ctower-carrier-undertest", withDestinationPath: absolute)
        var hostConfiguration = CarrierHost.Configuration(carrierName: "undertest")
        hostConfiguration.pluginDirectories = [directory]
        hostConfiguration.searchPATH = false
        hostConfiguration.initialRestartDelay = .milliseconds(10)
        hostConfiguration.maxRestartDelay = .milliseconds(200)
        hostConfiguration.handshakeTimeout = .seconds(30)
        hostConfiguration.shutdownGrace = .seconds(3)
        let host = CarrierHost(configuration: hostConfiguration, logger: logger)
        try await host.start()
        do {
            let request = configureRequest(extra: extraSettings)
            try await host.configure(connection: connectionID, credentials: request.credentials, settings: request.settings)
            try await body(host)
        } catch {
            await host.shutdown()
            throw error
        }
        await host.shutdown()
    }

    private func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let finished = try await group.next() ?? false
            group.cancelAll()
            if !finished { throw ScenarioFailure("did not finish within \(timeout)") }
        }
    }
}
