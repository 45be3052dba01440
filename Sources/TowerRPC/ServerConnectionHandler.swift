import Logging
import NIOCore
import Synchronization

/// Server-wide state shared by every connection.
final class ServerShared: Sendable {
    let router: MethodRouter
    let configuration: RPCServer.Configuration
    let acceptEncodingHeader: String?
    let supportedEncodingsText: String
    /// `:status 200`, content-type and grpc-accept-encoding: the response HEADERS of every call
    /// without initial metadata or response compression.
    let plainResponseHeaders: StaticHeaderBlock
    /// `grpc-status: 0` alone: the trailers of every successful call without trailing metadata.
    let okTrailers = StaticHeaderBlock([("grpc-status", "0")])
    private let nextConnectionID = Atomic<UInt64>(1)
    private let draining = Atomic<Bool>(false)

    init(router: MethodRouter, configuration: RPCServer.Configuration) {
        self.router = router
        self.configuration = configuration
        let accept = CompressionAlgorithm.acceptHeader(configuration.compression)
        self.acceptEncodingHeader = configuration.compression.isEmpty ? nil : accept
        self.supportedEncodingsText = accept
        var headers = [(":status", "200"), ("content-type", "application/grpc")]
        if let accept = acceptEncodingHeader { headers.append(("grpc-accept-encoding", accept)) }
        self.plainResponseHeaders = StaticHeaderBlock(headers)
    }

    func makeConnectionID() -> UInt64 { nextConnectionID.add(1, ordering: .relaxed).oldValue }

    /// Set once shutdown began (HTTP `/healthz` then answers 503).
    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func beginDraining() { draining.store(true, ordering: .relaxed) }
}

/// One HTTP/2 connection: feeds socket bytes to an nghttp2 server session, turns streams into
/// calls, and writes nghttp2's output back, coalesced into one buffer per flush.
final class ServerConnectionHandler: ChannelInboundHandler, HTTP2SessionDelegate, ServerProtocolConnection, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum ShutdownState { case active, notified, finalGoAwaySent }
    private static let shutdownPingPayload: UInt64 = 0x6374_6f77_6572_4757

    let shared: ServerShared
    private let limits: RPCServer.Limits
    private let logger: Logger
    private let connectionID: UInt64
    private(set) var session: HTTP2Session!
    private var context: ChannelHandlerContext?
    private var loop: (any EventLoop)!
    private var taskExecutor: EventLoopTaskExecutor?
    private var streams: [Int32: ServerStream] = [:]
    /// The stream of the latest callback: nghttp2 delivers a request's HEADERS fields, its
    /// completion and usually its DATA back to back, so this saves most dictionary lookups.
    private var recentStream: ServerStream?
    private var peer = "unknown"
    private var inRead = false
    private var flushPending = false
    private var flushScheduled = false
    private var closing = false
    private var receivedFirstFrame = false
    private var handshakeTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    private var lastPingReceived: NIODeadline?
    private var pingStrikes = 0
    private var shutdownState = ShutdownState.active
    private var partialInboundBytes = 0

    init(shared: ServerShared) {
        self.shared = shared
        self.limits = shared.configuration.limits
        self.logger = shared.configuration.logger
        self.connectionID = shared.makeConnectionID()
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.loop = context.eventLoop
        if shared.configuration.handlerExecution == .connectionEventLoop {
            taskExecutor = EventLoopTaskExecutor(loop: context.eventLoop)
        }
        if let remote = context.channel.remoteAddress {
            peer = "\(remote.ipAddress ?? "unknown"):\(remote.port ?? 0)"
        }
        var settings = HTTP2Settings()
        settings.maxConcurrentStreams = limits.maxConcurrentStreams
        settings.initialWindowSize = limits.streamWindowSize
        settings.maxHeaderListSize = UInt32(limits.maxHeaderListSize)
        session = HTTP2Session(
            role: .server, delegate: self, settings: settings, connectionWindowSize: limits.connectionWindowSize,
            outboundHighWaterMark: limits.maxBufferedBytesPerStream, resetBurst: limits.streamResetBurst,
            resetRate: limits.streamResetRatePerSecond)
        if context.channel.isActive { startTimers(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimers(context: context)
        flush()
        context.fireChannelActive()
    }

    private func startTimers(context: ChannelHandlerContext) {
        guard handshakeTimer == nil else { return }
        handshakeTimer = context.eventLoop.scheduleTask(in: .init(limits.handshakeTimeout)) { [self] in
            if !receivedFirstFrame {
                logger.debug("Closing connection without HTTP/2 preface", metadata: ["peer": "\(peer)"])
                close()
            }
        }
        scheduleIdleCheck(after: limits.idleTimeout)
    }

    private func scheduleIdleCheck(after delay: Duration?) {
        guard let delay, let loop else { return }
        idleTimer = loop.scheduleTask(in: .init(delay)) { [self] in
            guard let idle = limits.idleTimeout, !closing else { return }
            let idleSince = lastActivity + .init(idle)
            if streams.isEmpty && NIODeadline.now() >= idleSince {
                initiateGracefulShutdown()
            } else {
                scheduleIdleCheck(after: streams.isEmpty ? .nanoseconds(max(1, (idleSince - .now()).nanoseconds)) : idle)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        handshakeTimer?.cancel()
        idleTimer?.cancel()
        let remaining = streams
        streams.removeAll()
        recentStream = nil
        for stream in remaining.values { stream.streamClosed() }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        inRead = true
        let ok = buffer.withUnsafeReadableBytes { session.receive($0) }
        inRead = false
        if !ok {
            flush()
            close()
            return
        }
        flushPending = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        close()
    }

    // MARK: - Writing

    /// Coalesces everything submitted during this event-loop tick into one write.
    func scheduleFlush() {
        if inRead {
            flushPending = true
            return
        }
        guard !flushScheduled, let loop else { return }
        flushScheduled = true
        loop.execute { [self] in
            flushScheduled = false
            flush()
        }
    }

    private func flush() {
        guard let context, !closing else { return }
        if context.channel.isWritable, session.wantsWrite {
            var buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
            let ok = session.send(into: &buffer)
            if buffer.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            }
            if !ok {
                close()
                return
            }
        }
        closeIfDone()
    }

    private func closeIfDone() {
        guard !closing else { return }
        let drained = shutdownState == .finalGoAwaySent && streams.isEmpty && !session.wantsWrite
        if drained || (!session.wantsRead && !session.wantsWrite) {
            close()
        }
    }

    private func close() {
        guard !closing, let context else { return }
        closing = true
        context.close(promise: nil)
    }

    // MARK: - Graceful shutdown

    /// GOAWAY(2^31-1) + PING; on the PING ack (or after a second) the final GOAWAY; close when the
    /// last call finishes.
    func initiateGracefulShutdown() {
        guard shutdownState == .active, !closing, let loop else { return }
        shutdownState = .notified
        session.submitShutdownNotice()
        session.submitPing(payload: Self.shutdownPingPayload)
        loop.scheduleTask(in: .seconds(1)) { [self] in sendFinalGoAway() }
        scheduleFlush()
    }

    private func sendFinalGoAway() {
        guard shutdownState == .notified, !closing else { return }
        shutdownState = .finalGoAwaySent
        session.submitGoAway(errorCode: HTTP2ErrorCode.noError)
        scheduleFlush()
    }

    /// Ends the connection now (grace period over).
    func forceClose() {
        if !closing, shutdownState != .finalGoAwaySent {
            session.submitGoAway(errorCode: HTTP2ErrorCode.noError)
            flush()
        }
        close()
    }

    // MARK: - HTTP2SessionDelegate

    func sessionFrameReceived() {
        if !receivedFirstFrame {
            receivedFirstFrame = true
            handshakeTimer?.cancel()
            handshakeTimer = nil
        }
    }

    private func stream(_ streamID: Int32) -> ServerStream? {
        if let recent = recentStream, recent.id == streamID { return recent }
        let found = streams[streamID]
        if found != nil { recentStream = found }
        return found
    }

    func sessionBeginHeaders(streamID: Int32) {
        pingStrikes = 0
        guard streams[streamID] == nil else { return }
        let stream = ServerStream(id: streamID, loop: loop, connection: self)
        streams[streamID] = stream
        recentStream = stream
    }

    func sessionHeader(streamID: Int32, name: String, value: String) -> Bool {
        guard let stream = stream(streamID), stream.phase == .headers else { return true }
        stream.headerBytes += name.utf8.count + value.utf8.count + 32
        if stream.headerBytes > limits.maxHeaderListSize { return false }
        switch name {
        case ":method": stream.method = value
        case ":path": stream.path = value
        case "content-type": stream.contentType = value
        case "grpc-timeout": stream.timeout = value
        case "grpc-encoding": stream.requestEncoding = value
        case "grpc-accept-encoding": stream.acceptEncoding = value
        default:
            if !Metadata.isReserved(name) { stream.metadata.addWireHeader(name: name, value: value) }
        }
        return true
    }

    func sessionHeadersComplete(streamID: Int32, endStream: Bool) {
        guard let stream = stream(streamID) else { return }
        if stream.phase == .headers {
            startCall(stream)
        }
        if endStream { requestEnded(stream) }
    }

    private func startCall(_ stream: ServerStream) {
        guard stream.method == "POST" else {
            return stream.respondWithHTTPStatus(405)
        }
        guard let contentType = stream.contentType, contentType.hasPrefix("application/grpc") else {
            return stream.respondWithHTTPStatus(415)
        }
        let path = stream.path ?? ""
        guard let handler = shared.router.handler(forPath: path) else {
            return stream.respondWithError(shared.router.unimplemented(path: path))
        }
        var requestCompression: CompressionAlgorithm?
        if let encoding = stream.requestEncoding, encoding != "identity" {
            guard let algorithm = CompressionAlgorithm(wireName: encoding), shared.configuration.compression.contains(algorithm)
            else {
                return stream.respondWithError(
                    RPCError(
                        .unimplemented,
                        "Message compression '\(encoding)' is not supported; supported: \(shared.supportedEncodingsText)."),
                    extraHeaders: [("grpc-accept-encoding", shared.supportedEncodingsText)])
            }
            requestCompression = algorithm
        }
        var deadline: ContinuousClock.Instant?
        if let timeoutText = stream.timeout {
            guard let timeout = GRPCTimeout.parse(timeoutText) else {
                return stream.respondWithError(RPCError(.internal, "Malformed grpc-timeout header."))
            }
            deadline = ContinuousClock.now + timeout
            stream.deadlineTimer = loop.scheduleTask(in: .init(timeout)) { [weak stream] in stream?.deadlineExpired() }
        }
        let accepted = stream.acceptEncoding.map(CompressionAlgorithm.parseAccept) ?? []
        stream.context = ServerContext(
            method: handler.method, requestMetadata: stream.metadata, deadline: deadline, peer: peer,
            acceptedCompression: accepted.filter { shared.configuration.compression.contains($0) },
            connectionID: connectionID, streamID: stream.id, logger: logger)
        stream.handler = handler
        stream.deframer = MessageDeframer(maxMessageSize: limits.maxReceiveMessageSize)
        stream.compressionForRequest = requestCompression
        if handler.method.kind.isClientStreaming {
            let streamID = stream.id
            let loop = self.loop!
            stream.queue = MessageQueue(onDrained: { [weak self] in
                guard let self else { return }
                loop.execute { self.replenishWindow(streamID: streamID) }
            })
            startHandler(stream, requests: stream.queue!)
        } else {
            stream.phase = .awaitingRequest
        }
    }

    private func startHandler(_ stream: ServerStream, requests: any ServerRequestSource) {
        guard let handler = stream.handler, let context = stream.context else { return }
        stream.phase = .running
        let call = ServerCall(
            requests: requests, sink: stream, context: context, requestCompression: stream.compressionForRequest,
            maxReceiveMessageSize: limits.maxReceiveMessageSize, maxSendMessageSize: limits.maxSendMessageSize,
            requestIsSingle: requests is SingleRequestSource)
        let interceptors = shared.configuration.interceptors
        if let taskExecutor {
            // Runs the handler right here, inside nghttp2's callback, until it first suspends: a
            // unary handler that never suspends completes in this event-loop tick with no task
            // hop (submitting frames from callbacks is allowed; flushes are deferred while inRead).
            stream.task = Task.immediate(executorPreference: taskExecutor) {
                await ServerCallRunner.run(handler, call: call, interceptors: interceptors)
            }
        } else {
            stream.task = Task {
                await ServerCallRunner.run(handler, call: call, interceptors: interceptors)
            }
        }
    }

    func sessionData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        pingStrikes = 0
        guard let stream = stream(streamID), stream.phase == .awaitingRequest || stream.phase == .running,
            stream.deframer != nil
        else {
            session.consume(streamID: streamID, count: bytes.count)
            return
        }
        stream.unconsumed += bytes.count
        let before = stream.deframer!.bufferedByteCount
        stream.deframer!.append(bytes)
        do throws(RPCError) {
            while let message = try stream.deframer!.next() {
                if let queue = stream.queue {
                    queue.push(message)
                } else if stream.singleRequest == nil {
                    stream.singleRequest = message
                } else {
                    throw RPCError(.internal, "The client sent more than one request message to a unary-request method.")
                }
            }
        } catch {
            partialInboundBytes -= before
            failStream(stream, error)
            return
        }
        partialInboundBytes += stream.deframer!.bufferedByteCount - before
        if partialInboundBytes > limits.maxBufferedBytesPerConnection {
            partialInboundBytes -= stream.deframer!.bufferedByteCount
            stream.deframer = nil
            failStream(stream, RPCError(.resourceExhausted, "Too many bytes buffered on this connection."))
            return
        }
        // Without pending complete messages the handler has caught up: return the bytes now.
        if stream.queue == nil || stream.queue!.pendingCount == 0 {
            session.consume(streamID: streamID, count: stream.unconsumed)
            stream.unconsumed = 0
        }
    }

    func replenishWindow(streamID: Int32) {
        guard let stream = streams[streamID], stream.unconsumed > 0 else { return }
        session.consume(streamID: streamID, count: stream.unconsumed)
        stream.unconsumed = 0
        scheduleFlush()
    }

    private func failStream(_ stream: ServerStream, _ error: RPCError) {
        stream.context?.markCancelled()
        stream.task?.cancel()
        stream.queue?.fail(error)
        if stream.phase == .running {
            stream.finishOnLoop(finalMessage: nil, error: error)
        } else {
            stream.respondWithError(error)
        }
        session.consume(streamID: stream.id, count: stream.unconsumed)
        stream.unconsumed = 0
    }

    func sessionEndStream(streamID: Int32) {
        guard let stream = stream(streamID) else { return }
        requestEnded(stream)
    }

    private func requestEnded(_ stream: ServerStream) {
        guard !stream.requestClosed else { return }
        stream.requestClosed = true
        if let deframer = stream.deframer, deframer.bufferedByteCount > 0 {
            partialInboundBytes -= deframer.bufferedByteCount
            stream.deframer = nil
            return failStream(stream, RPCError(.internal, "The request ended inside a message (truncated gRPC frame)."))
        }
        switch stream.phase {
        case .awaitingRequest:
            guard let message = stream.singleRequest else {
                return stream.respondWithError(RPCError(.internal, "The client half-closed without sending a request message."))
            }
            stream.singleRequest = nil
            startHandler(stream, requests: SingleRequestSource(message: message))
        case .running:
            stream.queue?.finish()
        case .headers, .responded:
            break
        }
    }

    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) {
        if recentStream?.id == streamID { recentStream = nil }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        if let deframer = stream.deframer { partialInboundBytes -= deframer.bufferedByteCount }
        if stream.unconsumed > 0 { session.consumeConnection(count: stream.unconsumed) }
        stream.streamClosed()
        if streams.isEmpty {
            lastActivity = .now()
            if shutdownState == .finalGoAwaySent { scheduleFlush() }
        }
    }

    func sessionOutboundDrained(streamID: Int32) {
        streams[streamID]?.resumeWriter(nil)
    }

    func sessionPingReceived() {
        let now = NIODeadline.now()
        let keepalive = shared.configuration.keepalive
        let minimum: Duration =
            streams.isEmpty && !keepalive.permitWithoutCalls ? .seconds(7200) : keepalive.minPingInterval
        if let last = lastPingReceived, now - last < .init(minimum) {
            pingStrikes += 1
            if pingStrikes > keepalive.maxPingStrikes {
                logger.debug("Client pings too often", metadata: ["peer": "\(peer)"])
                session.submitGoAway(errorCode: HTTP2ErrorCode.enhanceYourCalm, debugData: "too_many_pings")
                shutdownState = .finalGoAwaySent
                flush()
                close()
                return
            }
        }
        lastPingReceived = now
    }

    func sessionPingAcknowledged(payload: UInt64) {
        if payload == Self.shutdownPingPayload { sendFinalGoAway() }
    }

    func sessionGoAwayReceived(lastStreamID: Int32, errorCode: UInt32) {}
}
