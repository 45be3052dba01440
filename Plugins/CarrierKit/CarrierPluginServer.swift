import Synchronization
import TowerProto

/// Runs a plugin: guards stdout, performs the handshake, serves requests concurrently, handles
/// Cancel, Ping, Ack and Shutdown, redelivers unacknowledged events, and exits when stdin closes.
///
/// ```swift
/// @main struct Main { static func main() async { await CarrierPluginServer.run(MyCarrier()) } }
/// ```
public enum CarrierPluginServer {
    /// Serves `plugin` on stdin/stdout until stdin closes, then exits the process.
    public static func run(_ plugin: some CarrierPlugin) async -> Never {
        let streams = StandardStreams.guardStandardOutput()
        let frames = streams.readFrames(maxFrameBytes: CarrierProtocol.defaultMaxFrameBytes)
        var iterator = frames.makeAsyncIterator()

        guard let first = await iterator.next() else {
            PluginLog.shared.info("stdin closed before the handshake")
            StandardStreams.exitProcess(0)
        }
        guard case .hello(let hello) = first.payload else {
            PluginLog.shared.critical("fatal: the first frame must be Hello, got \(describe(first))")
            StandardStreams.exitProcess(65)
        }
        let server = Session(plugin: plugin, streams: streams, hello: hello)
        guard server.handshake() else { StandardStreams.exitProcess(69) }
        await plugin.start(events: server.events)
        server.startRedelivery()

        while let envelope = await iterator.next() {
            server.handle(envelope)
        }
        PluginLog.shared.debug("stdin closed; exiting")
        StandardStreams.exitProcess(0)
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
        case nil: "an empty Envelope"
        }
    }
}

/// One plugin process's protocol state after the handshake.
private final class Session<Plugin: CarrierPlugin>: Sendable {
    private struct State {
        var inFlight: [UInt64: Task<Void, Never>] = [:]
        var draining = false
    }

    let plugin: Plugin
    let streams: StandardStreams
    let hello: Carrier_Hello
    let events: EventEmitter
    private let state = Mutex(State())
    private let maxInFlight: Int

    init(plugin: Plugin, streams: StandardStreams, hello: Carrier_Hello) {
        self.plugin = plugin
        self.streams = streams
        self.hello = hello
        self.maxInFlight = max(1, plugin.maxInFlight)
        self.events = EventEmitter(
            output: streams, maxUnacked: Int(hello.maxUnackedEvents), redeliveryInterval: plugin.eventRedeliveryInterval)
    }

    /// Answers Hello; false when no protocol version is shared.
    func handshake() -> Bool {
        if hello.maxFrameBytes > 0 { streams.setPeerMaxFrameBytes(Int(hello.maxFrameBytes)) }
        let hostRange = hello.minMajorVersion...max(hello.minMajorVersion, hello.maxMajorVersion)
        let ours = CarrierProtocol.supportedMajorVersions
        let chosen = CarrierProtocol.negotiate(host: hostRange, plugin: ours)
        var ack = Carrier_HelloAck()
        ack.majorVersion = chosen ?? 0
        ack.minorVersion = CarrierProtocol.minorVersion
        ack.minMajorVersion = ours.lowerBound
        ack.maxMajorVersion = ours.upperBound
        ack.pluginName = plugin.name
        ack.pluginVersion = plugin.version
        ack.capabilities = plugin.capabilities
        ack.maxInFlight = UInt32(maxInFlight)
        ack.suggestedMps = plugin.suggestedMPS
        ack.maxFrameBytes = UInt32(CarrierProtocol.defaultMaxFrameBytes)
        var envelope = Carrier_Envelope()
        envelope.payload = .helloAck(ack)
        streams.write(envelope)
        if chosen == nil {
            PluginLog.shared.error(
                "no common protocol version: host speaks \(hostRange.lowerBound)...\(hostRange.upperBound), "
                    + "plugin speaks \(ours.lowerBound)...\(ours.upperBound)")
            return false
        }
        PluginLog.shared.debug("handshake done", metadata: ["host": hello.hostAgent, "version": "\(chosen!)"])
        return true
    }

    func startRedelivery() {
        let events = self.events
        let interval = events.redeliveryInterval
        Task.detached {
            while true {
                try? await Task.sleep(for: interval / 4)
                events.redeliverOverdue()
            }
        }
    }

    func handle(_ envelope: Carrier_Envelope) {
        switch envelope.payload {
        case .request(let request):
            start(request, id: envelope.id)
        case .cancel(let cancel):
            let task = state.withLock { $0.inFlight[envelope.id] }
            if let task {
                PluginLog.shared.debug("cancel", metadata: ["request": "\(envelope.id)", "reason": cancel.reason])
                task.cancel()
            }
        case .ack:
            events.acknowledge(envelope.id)
        case .ping:
            var pong = Carrier_Envelope()
            pong.id = envelope.id
            pong.payload = .pong(Carrier_Pong())
            streams.write(pong)
        case .pong:
            break
        case .hello, .helloAck, .response, .event, nil:
            PluginLog.shared.warning("ignoring unexpected \(CarrierPluginServer.describe(envelope)) frame from the host")
        }
    }

    private func start(_ request: Carrier_Request, id: UInt64) {
        if case .shutdown(let shutdown) = request.operation {
            state.withLock { $0.draining = true }
            Task { await self.drain(grace: shutdown.grace?.swiftDuration ?? .seconds(10), requestID: id) }
            return
        }
        let refusal: String? = state.withLock { state in
            if state.draining { return "the plugin is shutting down" }
            if state.inFlight.count >= maxInFlight { return "more than max_in_flight (\(maxInFlight)) requests in flight" }
            return nil
        }
        if let refusal {
            respond(id: id, .error(CarrierPluginError(.transient, refusal).operationError))
            return
        }
        let deadline = request.timeout.map { ContinuousClock.now + $0.swiftDuration }
        let context = RequestContext(requestID: id, connectionID: request.connectionID, deadline: deadline, events: events)
        // The task must be registered before it can finish and unregister itself.
        state.withLock { state in
            let task = Task {
                let watchdog: Task<Void, Never>? = deadline.map { deadline in
                    Task {
                        try? await Task.sleep(until: deadline, clock: .continuous)
                        if !Task.isCancelled { self.cancelRequest(id) }
                    }
                }
                let result = await Self.perform(request.operation, plugin: self.plugin, context: context)
                watchdog?.cancel()
                self.state.withLock { _ = $0.inFlight.removeValue(forKey: id) }
                self.respond(id: id, result)
            }
            state.inFlight[id] = task
        }
    }

    private func cancelRequest(_ id: UInt64) {
        state.withLock { $0.inFlight[id] }?.cancel()
    }

    private func drain(grace: Duration, requestID: UInt64) async {
        PluginLog.shared.info("shutting down", metadata: ["grace": "\(grace)"])
        let deadline = ContinuousClock.now + grace
        await plugin.shutdown(grace: grace)
        while state.withLock({ !$0.inFlight.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let leftovers = state.withLock { Array($0.inFlight.values) }
        for task in leftovers { task.cancel() }
        for task in leftovers { await task.value }
        respond(id: requestID, .shutdown(Carrier_ShutdownResponse()))
    }

    private func respond(id: UInt64, _ result: Carrier_Response.Result) {
        var response = Carrier_Response()
        response.result = result
        var envelope = Carrier_Envelope()
        envelope.id = id
        envelope.payload = .response(response)
        if CarrierFrame.encode(envelope).count - CarrierProtocol.lengthPrefixBytes > streams.maxOutgoingFrameBytes {
            let error = CarrierPluginError(.permanent, "the response exceeds the host's max_frame_bytes", submissionState: .unknown)
            response.result = .error(error.operationError)
            envelope.payload = .response(response)
        }
        streams.write(envelope)
    }

    static func perform(_ operation: Carrier_Request.Operation?, plugin: Plugin, context: RequestContext) async -> Carrier_Response.Result {
        do {
            switch operation {
            case .configure(let r): return .configure(try await plugin.configure(r, context: context))
            case .removeConnection: return .removeConnection(try await plugin.removeConnection(context: context))
            case .send(let r): return .send(try await plugin.send(r, context: context))
            case .queryStatus(let r): return .queryStatus(try await plugin.queryStatus(r, context: context))
            case .parseWebhook(let r): return .parseWebhook(try await plugin.parseWebhook(r, context: context))
            case .searchNumbers(let r): return .searchNumbers(try await plugin.searchNumbers(r, context: context))
            case .purchaseNumber(let r): return .purchaseNumber(try await plugin.purchaseNumber(r, context: context))
            case .releaseNumber(let r): return .releaseNumber(try await plugin.releaseNumber(r, context: context))
            case .checkAccount(let r): return .checkAccount(try await plugin.checkAccount(r, context: context))
            case .shutdown: return .shutdown(Carrier_ShutdownResponse())
            case nil:
                throw CarrierPluginError.unsupported(
                    "this operation (unknown to protocol \(CarrierProtocol.supportedMajorVersions.upperBound).\(CarrierProtocol.minorVersion))"
                )
            }
        } catch let error as CarrierPluginError {
            return .error(error.operationError)
        } catch is CancellationError {
            return .error(CarrierPluginError(.cancelled, "cancelled", submissionState: .unknown).operationError)
        } catch {
            PluginLog.shared.error("handler failed", metadata: ["request": "\(context.requestID)", "error": "\(error)"])
            return .error(CarrierPluginError(.transient, "\(error)", submissionState: .unknown).operationError)
        }
    }
}
