import CarrierKit
import Logging
import NIOCore
import NIOPosix
import TowerProto

/// Runs one carrier plugin (`ctower-carrier-NAME`) for many tenant connections: spawns it with a
/// scrubbed environment, speaks the protocol, restarts it after a crash with exponential backoff
/// and jitter, gives up on a crash loop, and drains it on shutdown.
///
/// A send that was in flight when the plugin died fails with `submissionState == .unknown`;
/// resolve it with `queryStatus` (same idempotency key) before any resend. Requests that never
/// reached the dead process are retried on the restarted one transparently.
public actor CarrierHost {
    /// How the host finds, runs and supervises the plugin.
    public struct Configuration: Sendable {
        /// The carrier name: the executable is `ctower-carrier-NAME`.
        public var carrierName: String
        /// Directories searched first, in order.
        public var pluginDirectories: [String] = []
        /// Whether the host's PATH is searched after `pluginDirectories`.
        public var searchPATH = true
        /// The plugin's entire environment. Defaults to PATH, locale, TZ and TMPDIR of the host.
        public var environment: [String: String] = PluginLocator.scrubbedEnvironment()
        /// Protocol major versions this host accepts.
        public var supportedMajorVersions: ClosedRange<UInt32> = CarrierProtocol.supportedMajorVersions
        /// Largest frame accepted from the plugin.
        public var maxFrameBytes = CarrierProtocol.defaultMaxFrameBytes
        /// Whether events are acknowledged as soon as they enter `events` (simple consumers), or
        /// only when the consumer settles them (a server that must store them first).
        public var acknowledgeEventsOnDelivery = true
        /// How many unacknowledged events the plugin may have outstanding.
        public var maxUnackedEvents = 1000
        /// Ping period, and how long without a Pong before the plugin is considered hung and killed.
        public var heartbeatInterval: Duration = .seconds(5)
        public var heartbeatTimeout: Duration = .seconds(20)
        /// Time allowed for the HelloAck.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Timeout for requests that do not name one; nil waits forever.
        public var defaultTimeout: Duration? = .seconds(30)
        /// Extra time after a request's timeout for the plugin's own (cancelled) answer to arrive.
        public var deadlineSlack: Duration = .milliseconds(500)
        /// First restart delay; doubles per consecutive crash up to `maxRestartDelay`, with full jitter.
        public var initialRestartDelay: Duration = .milliseconds(100)
        public var maxRestartDelay: Duration = .seconds(30)
        /// More than `maxRestarts` crashes within `restartWindow` marks the carrier unhealthy.
        public var maxRestarts = 5
        public var restartWindow: Duration = .seconds(60)
        /// A plugin that ran this long resets the backoff.
        public var stableAfter: Duration = .seconds(30)
        /// Default drain time for `shutdown()`.
        public var shutdownGrace: Duration = .seconds(10)
        /// How many recent carrier event ids are remembered for deduplication.
        public var eventDeduplicationCapacity = 100_000
        /// Sent in Hello, for the plugin's logs.
        public var hostAgent = "ctower"

        public init(carrierName: String) {
            self.carrierName = carrierName
        }
    }

    /// Delivery statuses, inbound messages and throttles from the plugin, deduplicated by
    /// carrier event id. Acknowledged to the plugin once they are in this stream, or, with
    /// `acknowledgeEventsOnDelivery` off, when the consumer calls `settle(stored:)`.
    public nonisolated let events: AsyncStream<CarrierEvent>

    private let configuration: Configuration
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let router: EventRouter
    private let pacer = SendPacer()
    private var executable: String?
    private var connection: PluginConnection?
    private var info: CarrierPluginInfo?
    private var healthState: CarrierHealth = .notStarted
    private var connections: [String: Carrier_ConfigureRequest] = [:]
    private var waiters: [UInt64: CheckedContinuation<PluginConnection, any Error>] = [:]
    private var nextWaiter: UInt64 = 1
    private var crashTimes: [ContinuousClock.Instant] = []
    private var consecutiveCrashes = 0

    public init(
        configuration: Configuration, logger: Logger = Logger(label: "ctower.carrier"), group: MultiThreadedEventLoopGroup = .singleton
    ) {
        self.configuration = configuration
        self.logger = logger
        self.group = group
        let (stream, continuation) = AsyncStream<CarrierEvent>.makeStream()
        self.events = stream
        let pacer = self.pacer
        self.router = EventRouter(
            capacity: configuration.eventDeduplicationCapacity, acknowledgeOnDelivery: configuration.acknowledgeEventsOnDelivery,
            continuation: continuation
        ) { throttle, connection in
            pacer.apply(throttle, connection: connection)
        }
    }

    /// The plugin's handshake answers, once started.
    public var pluginInfo: CarrierPluginInfo? { info }
    /// Where the plugin is in its life.
    public var health: CarrierHealth { healthState }
    /// The running plugin's pid (for diagnostics and crash tests).
    public var processID: Int32? { connection?.process.pid }

    // MARK: Lifecycle

    /// Finds and starts the plugin and completes the handshake. Throws `.pluginNotFound`,
    /// `.spawnFailed`, `.versionMismatch` or `.protocolViolation`.
    public func start() async throws(CarrierError) {
        guard case .notStarted = healthState else { return }
        guard
            let path = PluginLocator.find(
                carrier: configuration.carrierName, directories: configuration.pluginDirectories,
                searchPATH: configuration.searchPATH, path: PluginLocator.environmentValue("PATH"))
        else {
            let error = CarrierError(
                .pluginNotFound,
                "no executable ctower-carrier-\(configuration.carrierName) in \(configuration.pluginDirectories + (configuration.searchPATH ? ["PATH"] : []))",
                submissionState: .notSubmitted)
            healthState = .unhealthy(reason: error.message)
            throw error
        }
        executable = path
        do {
            try await launch()
            healthState = .running
        } catch {
            healthState = .unhealthy(reason: error.message)
            throw error
        }
    }

    /// Drains and stops the plugin: Shutdown(grace), close stdin, kill if it lingers. Requests
    /// made afterwards fail with `.unavailable`. Ends the `events` stream.
    public func shutdown(grace: Duration? = nil) async {
        healthState = .stopped
        failWaiters(CarrierError(.unavailable, "carrier \(configuration.carrierName) is shutting down", submissionState: .notSubmitted))
        if let connection {
            await connection.shutdown(grace: grace ?? configuration.shutdownGrace)
        }
        connection = nil
        router.finish()
    }

    private func launch() async throws(CarrierError) {
        guard let executable else { throw CarrierError(.pluginNotFound, "not started", submissionState: .notSubmitted) }
        let settings = PluginConnection.Settings(
            carrierName: configuration.carrierName, executable: executable, environment: configuration.environment,
            hostVersions: configuration.supportedMajorVersions, maxFrameBytes: configuration.maxFrameBytes,
            maxUnackedEvents: configuration.maxUnackedEvents, heartbeatInterval: configuration.heartbeatInterval,
            heartbeatTimeout: configuration.heartbeatTimeout, handshakeTimeout: configuration.handshakeTimeout,
            deadlineSlack: configuration.deadlineSlack, hostAgent: configuration.hostAgent)
        let router = self.router
        let (connection, ack) = try await PluginConnection.launch(
            settings: settings, logger: logger, group: group,
            onEvent: { event, ack in router.deliver(event, ack: ack) },
            onExit: { [weak self] connection, termination in
                Task { await self?.connectionExited(connection, termination) }
            })
        // A restarted plugin knows no tenants yet: configure every connection before serving.
        for (id, request) in connections.sorted(by: { $0.key < $1.key }) {
            var wrapped = Carrier_Request()
            wrapped.connectionID = id
            wrapped.operation = .configure(request)
            let response = try await connection.call(wrapped, timeout: configuration.defaultTimeout)
            if case .error(let error) = response.result {
                logger.error("re-configuring connection \(id) after restart failed: \(CarrierError(error))")
            }
        }
        info = CarrierPluginInfo(
            name: ack.pluginName, version: ack.pluginVersion, protocolVersion: ack.majorVersion,
            capabilities: Set(ack.capabilities), maxInFlight: Int(max(1, ack.maxInFlight)), suggestedMPS: ack.suggestedMps)
        self.connection = connection
        for (_, waiter) in waiters { waiter.resume(returning: connection) }
        waiters.removeAll()
    }

    private func connectionExited(_ exited: PluginConnection, _ termination: PluginProcess.Termination) {
        guard exited === connection else { return }
        connection = nil
        guard case .running = healthState else { return }
        let now = ContinuousClock.now
        if now - exited.startedAt >= configuration.stableAfter { consecutiveCrashes = 0 }
        logger.error("plugin \(configuration.carrierName) (pid \(exited.process.pid)) \(termination); restarting")
        recordCrashAndRestart()
    }

    private func recordCrashAndRestart() {
        let now = ContinuousClock.now
        crashTimes.append(now)
        crashTimes.removeAll { now - $0 > configuration.restartWindow }
        if crashTimes.count > configuration.maxRestarts {
            let reason = "\(crashTimes.count) crashes within \(configuration.restartWindow); giving up"
            logger.critical("carrier \(configuration.carrierName) is unhealthy: \(reason)")
            healthState = .unhealthy(reason: reason)
            failWaiters(
                CarrierError(.unavailable, "carrier \(configuration.carrierName) is unhealthy: \(reason)", submissionState: .notSubmitted))
            return
        }
        healthState = .restarting
        consecutiveCrashes += 1
        let delay = Self.restartDelay(
            attempt: consecutiveCrashes, initial: configuration.initialRestartDelay, maximum: configuration.maxRestartDelay)
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.restart()
        }
    }

    private func restart() async {
        guard case .restarting = healthState else { return }
        do {
            try await launch()
            healthState = .running
            logger.notice("plugin \(configuration.carrierName) restarted")
        } catch {
            guard case .restarting = healthState else { return }
            logger.error("restarting plugin \(configuration.carrierName) failed: \(error)")
            if error.code == .versionMismatch || error.code == .pluginNotFound {
                healthState = .unhealthy(reason: error.message)
                failWaiters(CarrierError(.unavailable, error.message, submissionState: .notSubmitted))
                return
            }
            recordCrashAndRestart()
        }
    }

    /// Exponential backoff with full jitter: uniform in [0, min(maximum, initial * 2^(attempt-1))].
    static func restartDelay(attempt: Int, initial: Duration, maximum: Duration) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maximum, initial * (1 << exponent))
        return ceiling * Double.random(in: 0...1)
    }

    private func failWaiters(_ error: CarrierError) {
        for (_, waiter) in waiters { waiter.resume(throwing: error) }
        waiters.removeAll()
    }

    /// The running connection, waiting (until `deadline`) while the plugin restarts.
    private func runningConnection(until deadline: ContinuousClock.Instant?) async throws(CarrierError) -> PluginConnection {
        switch healthState {
        case .running, .restarting:
            if let connection, !connection.isClosed { return connection }
        case .notStarted:
            throw CarrierError(.unavailable, "carrier \(configuration.carrierName) was not started", submissionState: .notSubmitted)
        case .unhealthy(let reason):
            throw CarrierError(.unavailable, "carrier \(configuration.carrierName) is unhealthy: \(reason)", submissionState: .notSubmitted)
        case .stopped:
            throw CarrierError(.unavailable, "carrier \(configuration.carrierName) is stopped", submissionState: .notSubmitted)
        }
        let id = nextWaiter
        nextWaiter += 1
        let timer: Task<Void, Never>? = deadline.map { deadline in
            Task { [weak self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                if !Task.isCancelled { await self?.expireWaiter(id) }
            }
        }
        defer { timer?.cancel() }
        do {
            return try await withCheckedThrowingContinuation { waiters[id] = $0 }
        } catch let error as CarrierError {
            throw error
        } catch {
            throw CarrierError(.unavailable, "\(error)", submissionState: .notSubmitted)
        }
    }

    private func expireWaiter(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume(
            throwing: CarrierError(
                .deadlineExceeded, "carrier \(configuration.carrierName) did not come back in time", submissionState: .notSubmitted))
    }

    // MARK: Operations

    /// Performs one operation for `connection` and returns the plugin's result, or throws the
    /// classified error (the plugin's OperationError, or a host-side failure).
    public func perform(
        _ operation: Carrier_Request.Operation, connection connectionID: String, timeout: Duration? = nil
    ) async throws(CarrierError) -> Carrier_Response.Result {
        let timeout = timeout ?? configuration.defaultTimeout
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var request = Carrier_Request()
        request.connectionID = connectionID
        request.operation = operation
        while true {
            let connection = try await runningConnection(until: deadline)
            let remaining = deadline.map { $0 - ContinuousClock.now }
            if let remaining, remaining <= .zero {
                throw CarrierError(.deadlineExceeded, "timed out before the request could be sent", submissionState: .notSubmitted)
            }
            do throws(CarrierError) {
                let response = try await connection.call(request, timeout: remaining)
                switch response.result {
                case .error(let error): throw CarrierError(error)
                case .some(let result): return result
                case nil: throw CarrierError(.protocolViolation, "the plugin sent an empty Response", submissionState: .unknown)
                }
            } catch  where (error.code == .pluginCrashed || error.code == .protocolViolation) && error.submissionState == .notSubmitted {
                // It never reached the plugin: safe to send to the restarted process.
                if Task.isCancelled { throw CarrierError(.cancelled, "cancelled", submissionState: .notSubmitted) }
                continue
            }
        }
    }

    /// Registers (or replaces) a tenant connection. The credentials stay in memory so a restarted
    /// plugin can be re-configured; they are sent only in Configure frames, never logged.
    /// Returns the plugin's warnings about the settings.
    @discardableResult
    public func configure(
        connection connectionID: String, credentials: [String: String], settings: [String: String] = [:]
    ) async throws(CarrierError) -> [String] {
        var request = Carrier_ConfigureRequest()
        request.credentials = credentials
        request.settings = settings
        let result = try await perform(.configure(request), connection: connectionID)
        connections[connectionID] = request
        guard case .configure(let response) = result else { throw unexpected(result) }
        for warning in response.warnings { logger.warning("connection \(connectionID): \(warning)") }
        return response.warnings
    }

    /// Forgets a tenant connection.
    public func removeConnection(_ connectionID: String) async throws(CarrierError) {
        connections.removeValue(forKey: connectionID)
        _ = try await perform(.removeConnection(Carrier_RemoveConnectionRequest()), connection: connectionID)
    }

    /// Sends one message. On `.unknown` submission state, call `queryStatus` with the same
    /// idempotency key before deciding to resend.
    public func send(_ message: Carrier_SendRequest, connection connectionID: String, timeout: Duration? = nil) async throws(CarrierError)
        -> SendResult
    {
        // A Throttle from the plugin spaces or pauses sends on this connection; waiting counts
        // against the send's timeout, and nothing has been submitted while we wait.
        let deadline = (timeout ?? configuration.defaultTimeout).map { ContinuousClock.now + $0 }
        while let wait = pacer.delay(for: connectionID) {
            if let deadline, ContinuousClock.now + wait > deadline {
                throw CarrierError(
                    .rateLimited, "the carrier asked us to slow down and the send's timeout ends first", submissionState: .notSubmitted)
            }
            do { try await Task.sleep(for: wait) } catch {
                throw CarrierError(.cancelled, "cancelled while waiting for the carrier's throttle", submissionState: .notSubmitted)
            }
        }
        let remaining = deadline.map { ContinuousClock.now.duration(to: $0) }
        let result = try await perform(.send(message), connection: connectionID, timeout: remaining)
        guard case .send(let response) = result else { throw unexpected(result) }
        return SendResult(
            providerMessageID: response.providerMessageID, carrierStatus: response.carrierStatus,
            segments: Int(response.segments), duplicate: response.duplicate, price: response.price)
    }

    /// Looks a message up by idempotency key; `found == false` means it was never submitted.
    /// Carriers without idempotency keys (Twilio) search by the hints: recipient, sender and the
    /// earliest time the message could have been sent.
    public func queryStatus(
        idempotencyKey: String, to: String = "", from: String = "", notBefore: Google_Protobuf_Timestamp? = nil,
        connection connectionID: String, timeout: Duration? = nil
    ) async throws(CarrierError) -> Carrier_QueryStatusResponse {
        var request = Carrier_QueryStatusRequest()
        request.idempotencyKey = idempotencyKey
        request.to = to
        request.from = from
        request.notBefore = notBefore
        let result = try await perform(.queryStatus(request), connection: connectionID, timeout: timeout)
        guard case .queryStatus(let response) = result else { throw unexpected(result) }
        return response
    }

    /// Checks the connection's credentials with the carrier.
    public func checkAccount(connection connectionID: String) async throws(CarrierError) -> Carrier_CheckAccountResponse {
        let result = try await perform(.checkAccount(Carrier_CheckAccountRequest()), connection: connectionID)
        guard case .checkAccount(let response) = result else { throw unexpected(result) }
        return response
    }

    /// Verifies and parses a carrier webhook. Events it carries also go through deduplication.
    public func parseWebhook(_ webhook: Carrier_ParseWebhookRequest, connection connectionID: String) async throws(CarrierError)
        -> Carrier_ParseWebhookResponse
    {
        let result = try await perform(.parseWebhook(webhook), connection: connectionID)
        guard case .parseWebhook(let response) = result else { throw unexpected(result) }
        return response
    }

    private func unexpected(_ result: Carrier_Response.Result) -> CarrierError {
        CarrierError(.protocolViolation, "the plugin answered with a result for a different operation", submissionState: .unknown)
    }
}
