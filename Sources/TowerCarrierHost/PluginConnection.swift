import CarrierKit
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TowerProto

/// One running plugin process and the protocol session with it: request ids, the in-flight
/// limit, deadlines, Cancel, events and acks, heartbeats, and what happens to requests in flight
/// when the process dies. The supervisor (`CarrierHost`) replaces it after a crash.
final class PluginConnection: Sendable {
    struct Settings: Sendable {
        var carrierName: String
        var executable: String
        var environment: [String: String]
        var hostVersions: ClosedRange<UInt32>
        var maxFrameBytes: Int
        var maxUnackedEvents: Int
        var heartbeatInterval: Duration
        var heartbeatTimeout: Duration
        var handshakeTimeout: Duration
        var deadlineSlack: Duration
        var hostAgent: String
    }

    private struct Pending {
        /// Nil once the caller stopped waiting (deadline); the entry stays until the plugin
        /// answers so the in-flight slot is freed only then.
        var continuation: CheckedContinuation<Carrier_Response, any Error>?
    }

    private struct State {
        var channel: (any Channel)?
        var nextRequestID: UInt64 = 1
        var pending: [UInt64: Pending] = [:]
        var handshake: CheckedContinuation<Carrier_HelloAck, any Error>?
        var fault: CarrierProtocolError?
        var closed: CarrierError?
        var permits = 1
        var permitWaiters: [(token: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextToken: UInt64 = 1
        var lastPong = ContinuousClock.now
        var nextPingID: UInt64 = 1
        var exitWatcher: Task<PluginProcess.Termination, Never>?
    }

    let settings: Settings
    let process: PluginProcess
    let logger: Logger
    let startedAt = ContinuousClock.now
    private let state = Mutex(State())
    /// Receives each event with the closure that sends its Ack.
    private let onEvent: @Sendable (Carrier_Event, @escaping @Sendable () -> Void) -> Void
    private let onExit: @Sendable (PluginConnection, PluginProcess.Termination) -> Void
    private let stdoutState = Mutex<(closed: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    private init(
        settings: Settings, process: PluginProcess, logger: Logger,
        onEvent: @escaping @Sendable (Carrier_Event, @escaping @Sendable () -> Void) -> Void,
        onExit: @escaping @Sendable (PluginConnection, PluginProcess.Termination) -> Void
    ) {
        self.settings = settings
        self.process = process
        self.logger = logger
        self.onEvent = onEvent
        self.onExit = onExit
    }

    // MARK: Launch and handshake

    /// Spawns the plugin, wires its pipes into NIO and performs the handshake.
    static func launch(
        settings: Settings, logger baseLogger: Logger, group: MultiThreadedEventLoopGroup,
        onEvent: @escaping @Sendable (Carrier_Event, @escaping @Sendable () -> Void) -> Void,
        onExit: @escaping @Sendable (PluginConnection, PluginProcess.Termination) -> Void
    ) async throws(CarrierError) -> (PluginConnection, Carrier_HelloAck) {
        let process = try PluginProcess.spawn(executable: settings.executable, environment: settings.environment)
        var taggedLogger = baseLogger
        taggedLogger[metadataKey: "plugin"] = "\(settings.carrierName)"
        taggedLogger[metadataKey: "pid"] = "\(process.pid)"
        let logger = taggedLogger
        let connection = PluginConnection(settings: settings, process: process, logger: logger, onEvent: onEvent, onExit: onExit)
        let watcher = Task { await process.waitForExit() }
        connection.state.withLock { $0.exitWatcher = watcher }
        Task {
            let termination = await watcher.value
            // A plugin may write its last frames (a HelloAck refusing our versions, a final
            // response) and exit at once: read them before declaring the process gone. A grandchild
            // holding stdout open must not stall this, hence the bound.
            await connection.stdoutDrained(within: .seconds(2))
            connection.processExited(termination)
        }
        do {
            let frames = try await NIOPipeBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            FrameInboundHandler(
                                maxFrameBytes: settings.maxFrameBytes,
                                onEnvelope: { connection.received($0) },
                                onFault: { connection.protocolFault($0) },
                                onEndOfInput: { connection.stdoutClosed() }))
                    }
                }
                .takingOwnershipOfDescriptors(input: process.stdoutFD, output: process.stdinFD).get()
            connection.state.withLock { $0.channel = frames }
            _ = try await NIOPipeBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(StderrLineHandler(logger: logger))
                    }
                }
                .takingOwnershipOfDescriptor(input: process.stderrFD).get()
        } catch {
            process.kill()
            throw CarrierError(.spawnFailed, "cannot attach to the plugin's pipes: \(error)", submissionState: .notSubmitted)
        }
        let ack = try await connection.handshake()
        connection.startHeartbeat()
        return (connection, ack)
    }

    private func handshake() async throws(CarrierError) -> Carrier_HelloAck {
        var hello = Carrier_Hello()
        hello.minMajorVersion = settings.hostVersions.lowerBound
        hello.maxMajorVersion = settings.hostVersions.upperBound
        hello.maxFrameBytes = UInt32(settings.maxFrameBytes)
        hello.maxUnackedEvents = UInt32(settings.maxUnackedEvents)
        hello.hostAgent = settings.hostAgent
        hello.heartbeatInterval = Google_Protobuf_Duration(duration: settings.heartbeatInterval)
        var envelope = Carrier_Envelope()
        envelope.payload = .hello(hello)

        let timeout = settings.handshakeTimeout
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled, let self else { return }
            let waiter = self.state.withLock { state in
                defer { state.handshake = nil }; return state.handshake
            }
            if waiter != nil {
                self.logger.error("no HelloAck within \(timeout); killing the plugin")
                waiter?.resume(
                    throwing: CarrierError(
                        .protocolViolation, "plugin \(self.settings.carrierName) sent no HelloAck within \(timeout)",
                        submissionState: .notSubmitted))
                self.process.kill()
            }
        }
        defer { timer.cancel() }
        let ack: Carrier_HelloAck
        do {
            ack = try await withCheckedThrowingContinuation { continuation in
                let closed = state.withLock { state -> CarrierError? in
                    if let closed = state.closed { return closed }
                    state.handshake = continuation
                    return nil
                }
                if let closed {
                    continuation.resume(throwing: closed)
                } else {
                    write(envelope)
                }
            }
        } catch let error as CarrierError {
            throw error
        } catch {
            throw CarrierError(.protocolViolation, "\(error)", submissionState: .notSubmitted)
        }

        let host = settings.hostVersions
        let plugin = ack.minMajorVersion...max(ack.minMajorVersion, ack.maxMajorVersion)
        guard ack.majorVersion != 0, host.contains(ack.majorVersion), plugin.contains(ack.majorVersion) else {
            process.kill()
            throw CarrierError(
                .versionMismatch,
                "plugin \(ack.pluginName.isEmpty ? settings.carrierName : ack.pluginName) \(ack.pluginVersion) speaks carrier "
                    + "protocol major versions \(plugin.lowerBound)...\(plugin.upperBound), but this host speaks "
                    + "\(host.lowerBound)...\(host.upperBound); upgrade whichever is older",
                submissionState: .notSubmitted)
        }
        let permits = Int(max(1, ack.maxInFlight))
        state.withLock { $0.permits = permits }
        logger.info(
            "plugin ready",
            metadata: [
                "name": "\(ack.pluginName)", "version": "\(ack.pluginVersion)", "protocol": "\(ack.majorVersion).\(ack.minorVersion)",
                "max_in_flight": "\(permits)",
            ])
        return ack
    }

    // MARK: Requests

    /// Sends `request` and waits for its Response. Throws `.pluginCrashed` with
    /// `.notSubmitted` when the request never reached this process (the caller may retry it on
    /// the next one), and with `.unknown` when the process died while it was in flight.
    func call(_ request: Carrier_Request, timeout: Duration?) async throws(CarrierError) -> Carrier_Response {
        try await acquirePermit()
        var request = request
        if let timeout { request.timeout = Google_Protobuf_Duration(duration: timeout) }
        let id = state.withLock { state in
            defer { state.nextRequestID += 1 }
            return state.nextRequestID
        }
        var envelope = Carrier_Envelope()
        envelope.id = id
        envelope.payload = .request(request)
        let frameBytes = CarrierFrame.encode(envelope)
        if frameBytes.count - CarrierProtocol.lengthPrefixBytes > settings.maxFrameBytes {
            releasePermit()
            throw CarrierError(
                .permanent, "the request exceeds the frame size limit of \(settings.maxFrameBytes) bytes", submissionState: .notSubmitted)
        }

        let timer: Task<Void, Never>? = timeout.map { timeout in
            let limit = timeout + settings.deadlineSlack
            return Task { [weak self] in
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled, let self else { return }
                self.sendCancel(id, reason: "deadline exceeded")
                let waiter = self.state.withLock { state -> CheckedContinuation<Carrier_Response, any Error>? in
                    defer { state.pending[id]?.continuation = nil }
                    return state.pending[id]?.continuation
                }
                waiter?.resume(
                    throwing: CarrierError(
                        .deadlineExceeded, "no answer from plugin \(self.settings.carrierName) within \(timeout)", submissionState: .unknown
                    ))
            }
        }
        defer { timer?.cancel() }

        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let closed = state.withLock { state -> CarrierError? in
                        if let closed = state.closed { return closed }
                        state.pending[id] = Pending(continuation: continuation)
                        return nil
                    }
                    if let closed {
                        releasePermit()
                        var notSent = closed
                        notSent.submissionState = .notSubmitted
                        continuation.resume(throwing: notSent)
                    } else {
                        writeFrame(frameBytes)
                    }
                }
            } onCancel: {
                // Advisory: the plugin still answers, and the caller gets that answer.
                self.sendCancel(id, reason: "caller cancelled")
            }
        } catch let error as CarrierError {
            throw error
        } catch {
            throw CarrierError(.transient, "\(error)", submissionState: .unknown)
        }
    }

    private func sendCancel(_ id: UInt64, reason: String) {
        guard state.withLock({ $0.pending[id] != nil }) else { return }
        var cancel = Carrier_Cancel()
        cancel.reason = reason
        var envelope = Carrier_Envelope()
        envelope.id = id
        envelope.payload = .cancel(cancel)
        write(envelope)
    }

    private func acquirePermit() async throws(CarrierError) {
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let outcome = state.withLock { state -> Result<Bool, CarrierError> in
                        if var closed = state.closed {
                            closed.submissionState = .notSubmitted
                            return .failure(closed)
                        }
                        if state.permits > 0 {
                            state.permits -= 1
                            return .success(true)
                        }
                        state.permitWaiters.append((token, continuation))
                        return .success(false)
                    }
                    switch outcome {
                    case .failure(let error): continuation.resume(throwing: error)
                    case .success(true): continuation.resume()
                    case .success(false): break
                    }
                }
            } onCancel: {
                let waiter = self.state.withLock { state -> CheckedContinuation<Void, any Error>? in
                    guard let index = state.permitWaiters.firstIndex(where: { $0.token == token }) else { return nil }
                    return state.permitWaiters.remove(at: index).continuation
                }
                waiter?.resume(
                    throwing: CarrierError(.cancelled, "cancelled while waiting for an in-flight slot", submissionState: .notSubmitted))
            }
        } catch let error as CarrierError {
            throw error
        } catch {
            throw CarrierError(.cancelled, "\(error)", submissionState: .notSubmitted)
        }
    }

    private func releasePermit() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if !state.permitWaiters.isEmpty { return state.permitWaiters.removeFirst().continuation }
            state.permits += 1
            return nil
        }
        waiter?.resume()
    }

    // MARK: Inbound frames

    private func received(_ envelope: Carrier_Envelope) {
        switch envelope.payload {
        case .helloAck(let ack):
            let waiter = state.withLock { state in
                defer { state.handshake = nil }; return state.handshake
            }
            if let waiter {
                waiter.resume(returning: ack)
            } else {
                logger.warning("ignoring a second HelloAck")
            }
        case .response(let response):
            let pending = state.withLock { $0.pending.removeValue(forKey: envelope.id) }
            guard let pending else {
                logger.warning("response for unknown request id \(envelope.id)")
                return
            }
            releasePermit()
            pending.continuation?.resume(returning: response)
        case .event(let event):
            let id = envelope.id
            onEvent(event) { [weak self] in
                var ack = Carrier_Envelope()
                ack.id = id
                ack.payload = .ack(Carrier_Ack())
                self?.write(ack)
            }
        case .ping:
            var pong = Carrier_Envelope()
            pong.id = envelope.id
            pong.payload = .pong(Carrier_Pong())
            write(pong)
        case .pong:
            state.withLock { $0.lastPong = .now }
        case .hello, .request, .ack, .cancel, nil:
            protocolFault(
                CarrierProtocolError(
                    code: .unexpectedFrame, message: "a plugin must not send \(Self.describe(envelope)) frames"))
        }
    }

    /// The plugin broke the framing: log what it sent and kill it (the exit path fails what
    /// was in flight and the supervisor restarts it).
    private func protocolFault(_ error: CarrierProtocolError) {
        let first = state.withLock { state -> Bool in
            guard state.fault == nil else { return false }
            state.fault = error
            return true
        }
        guard first else { return }
        logger.error("protocol violation; killing the plugin: \(error.message)")
        process.kill()
    }

    /// Called once the plugin's stdout reached end of file (or the channel closed).
    func stdoutClosed() {
        let waiters = stdoutState.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for w in waiters { w.resume() }
    }

    /// Returns when stdout has reached end of file, or after `limit`.
    func stdoutDrained(within limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let done = self.stdoutState.withLock { state -> Bool in
                        if state.closed { return true }
                        state.waiters.append(c)
                        return false
                    }
                    if done { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
            // The sleeping child ends on cancellation; a waiting child ends when stdout closes
            // (which closing the channel in processExited guarantees).
            self.stdoutClosed()
        }
    }

    private func processExited(_ termination: PluginProcess.Termination) {
        let (pending, waiters, handshake, fault) = state.withLock { state in
            let fault = state.fault
            let reason: String
            if let fault {
                reason = "plugin \(settings.carrierName) broke the protocol (\(fault.code)): \(fault.message)"
            } else {
                reason = "plugin \(settings.carrierName) \(termination)"
            }
            state.closed = CarrierError(
                fault == nil ? .pluginCrashed : .protocolViolation, reason, submissionState: .unknown)
            defer {
                state.pending.removeAll()
                state.permitWaiters.removeAll()
                state.handshake = nil
            }
            return (Array(state.pending.values), state.permitWaiters.map(\.continuation), state.handshake, fault)
        }
        let closed = state.withLock { $0.closed! }
        _ = fault
        state.withLock { $0.channel }?.close(promise: nil)
        // In flight at the crash: the plugin may or may not have handed them to the carrier.
        for entry in pending { entry.continuation?.resume(throwing: closed) }
        var notSent = closed
        notSent.submissionState = .notSubmitted
        for waiter in waiters { waiter.resume(throwing: notSent) }
        handshake?.resume(throwing: notSent)
        onExit(self, termination)
    }

    // MARK: Heartbeat, writing, shutdown

    private func startHeartbeat() {
        let interval = settings.heartbeatInterval
        let timeout = settings.heartbeatTimeout
        Task { [weak self] in
            while true {
                try? await Task.sleep(for: interval)
                guard let self, self.state.withLock({ $0.closed == nil }) else { return }
                let (silence, id) = self.state.withLock { state in
                    defer { state.nextPingID += 1 }
                    return (ContinuousClock.now - state.lastPong, state.nextPingID)
                }
                if silence > timeout + interval {
                    self.logger.error("no Pong for \(silence); killing the plugin")
                    self.process.kill()
                    return
                }
                var ping = Carrier_Envelope()
                ping.id = id
                ping.payload = .ping(Carrier_Ping())
                self.write(ping)
            }
        }
    }

    private func write(_ envelope: Carrier_Envelope) {
        writeFrame(CarrierFrame.encode(envelope))
    }

    private func writeFrame(_ bytes: [UInt8]) {
        guard let channel = state.withLock({ $0.channel }) else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    var isClosed: Bool { state.withLock { $0.closed != nil } }

    /// Asks the plugin to drain (Shutdown with `grace`), closes its stdin, and kills it if it has
    /// not exited shortly after.
    func shutdown(grace: Duration) async {
        if !isClosed {
            var request = Carrier_Request()
            request.operation = .shutdown(Carrier_ShutdownRequest.with(grace: grace))
            do {
                _ = try await call(request, timeout: grace)
            } catch {
                logger.warning("shutdown did not complete cleanly: \(error)")
            }
        }
        state.withLock { $0.channel }?.close(mode: .output, promise: nil)
        guard let watcher = state.withLock({ $0.exitWatcher }) else { return }
        let killer = Task {
            try? await Task.sleep(for: .seconds(2))
            if !Task.isCancelled { process.kill() }
        }
        let termination = await watcher.value
        killer.cancel()
        logger.info("plugin stopped: \(termination)")
    }

    /// Waits until the process has been reaped.
    func waitForExit() async -> PluginProcess.Termination? {
        guard let watcher = state.withLock({ $0.exitWatcher }) else { return nil }
        return await watcher.value
    }

    static func describe(_ envelope: Carrier_Envelope) -> String {
        switch envelope.payload {
        case .hello: "Hello"
        case .helloAck: "HelloAck"
        case .request: "Request"
        case .response: "Response"
        case .event: "Event"
        case .ack: "Ack"
        case .cancel: "Cancel"
        case .ping: "Ping"
        case .pong: "Pong"
        case nil: "empty Envelope"
        }
    }
}

extension Carrier_ShutdownRequest {
    static func with(grace: Duration) -> Carrier_ShutdownRequest {
        var request = Carrier_ShutdownRequest()
        request.grace = Google_Protobuf_Duration(duration: grace)
        return request
    }
}
