import NIOCore
import Synchronization
import TowerProtoRuntime

/// One client call on an HTTP/2 connection; event-loop confined, hopping there from any thread.
final class HTTP2ClientStream: ClientCallTransport, @unchecked Sendable {
    let connection: ClientConnectionHandler
    let loop: any EventLoop
    let response: ClientResponseState
    let compression: CompressionAlgorithm?
    var id: Int32 = 0
    var deframer: MessageDeframer
    var receivedHeaders = false
    var httpStatus: String?
    var grpcStatus: String?
    var grpcMessage: String?
    var grpcStatusDetails: String?
    var responseEncoding: String?
    var contentType: String?
    var metadata = Metadata()
    var unconsumed = 0
    var sendingClosed = false
    var writeWaiter: CheckedContinuation<RPCError?, Never>?
    var deadlineTimer: Scheduled<Void>?

    init(connection: ClientConnectionHandler, loop: any EventLoop, response: ClientResponseState, compression: CompressionAlgorithm?) {
        self.connection = connection
        self.loop = loop
        self.response = response
        self.compression = compression
        self.deframer = MessageDeframer(maxMessageSize: response.maxReceiveMessageSize)
    }

    func send(_ message: [UInt8], compress: Bool, endStream: Bool) async throws(RPCError) {
        let framed: ByteBuffer
        if compress, let compression {
            framed = MessageFramer.frame(try compression.compress(message), compressed: true)
        } else {
            framed = MessageFramer.frame(message, compressed: false)
        }
        let failure: RPCError? = await withCheckedContinuation { continuation in
            loop.execute {
                guard !self.sendingClosed, !self.response.isFinished else {
                    // The server already ended the call; its status is reported by the reads.
                    continuation.resume(returning: nil)
                    return
                }
                let buffered = self.connection.session.enqueue(streamID: self.id, framed)
                if endStream {
                    self.sendingClosed = true
                    self.connection.session.finish(streamID: self.id, trailers: nil)
                }
                self.connection.scheduleFlush()
                if buffered > self.connection.session.outboundHighWaterMark && !endStream {
                    self.connection.session.notifyWhenDrained(streamID: self.id)
                    self.writeWaiter = continuation
                } else {
                    continuation.resume(returning: nil)
                }
            }
        }
        if let failure { throw failure }
    }

    func closeSending() {
        loop.execute {
            guard !self.sendingClosed else { return }
            self.sendingClosed = true
            self.connection.session.finish(streamID: self.id, trailers: nil)
            self.connection.scheduleFlush()
        }
    }

    func cancel() {
        loop.execute { self.connection.reset(self, errorCode: HTTP2ErrorCode.cancel) }
    }

    func resumeWriter(_ error: RPCError?) {
        if let waiter = writeWaiter {
            writeWaiter = nil
            waiter.resume(returning: error)
        }
    }

    /// Converts what the server sent into the call's outcome.
    func complete(trailersOnly: Bool) {
        deadlineTimer?.cancel()
        let trailers = metadata
        let error: RPCError?
        if let status = grpcStatus {
            let code = Int(status) ?? RPCError.Code.unknown.rawValue
            if code == 0 {
                error = nil
            } else {
                var failure = RPCError(
                    code: RPCError.Code(rawValue: code), message: grpcMessage.map(PercentEncoding.decode) ?? "",
                    metadata: trailers)
                if let details = grpcStatusDetails { failure.statusDetails = Base64.decode(details) }
                error = failure
            }
        } else if let status = httpStatus, status != "200" {
            error = RPCError(code: Self.code(forHTTPStatus: status), message: "The server answered HTTP \(status).", metadata: trailers)
        } else {
            error = RPCError(code: .internal, message: "The server closed the stream without a grpc-status.", metadata: trailers)
        }
        response.end(error: error, trailers: trailers)
    }

    static func code(forHTTPStatus status: String) -> RPCError.Code {
        switch status {
        case "400": return .internal
        case "401": return .unauthenticated
        case "403": return .permissionDenied
        case "404": return .unimplemented
        case "429", "502", "503", "504": return .unavailable
        default: return .unknown
        }
    }
}

/// The client side of one HTTP/2 connection.
final class ClientConnectionHandler: ChannelInboundHandler, HTTP2SessionDelegate, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let authority: String
    let userAgent: String
    let scheme: String
    private(set) var session: HTTP2Session!
    private var context: ChannelHandlerContext?
    private(set) var loop: (any EventLoop)!
    private var streams: [Int32: HTTP2ClientStream] = [:]
    private var inRead = false
    private var flushPending = false
    private var flushScheduled = false
    /// Set once the server sent GOAWAY or the connection closed: no new calls here.
    private(set) var isDraining = false
    private var isClosed = false

    init(authority: String, userAgent: String, scheme: String = "http") {
        self.authority = authority
        self.userAgent = userAgent
        self.scheme = scheme
    }

    /// Readable from any thread: whether new calls may use this connection.
    var acceptsNewCalls: Bool { accepting.load(ordering: .relaxed) }
    private let accepting = Atomic<Bool>(true)

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.loop = context.eventLoop
        var settings = HTTP2Settings()
        settings.initialWindowSize = 1024 * 1024
        settings.enablePush = false
        session = HTTP2Session(role: .client, delegate: self, settings: settings, connectionWindowSize: 4 * 1024 * 1024)
        if context.channel.isActive { flush() }
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        markDraining()
        let remaining = streams
        streams.removeAll()
        for stream in remaining.values {
            stream.deadlineTimer?.cancel()
            stream.resumeWriter(RPCError(.unavailable, "The connection closed."))
            stream.response.end(error: RPCError(.unavailable, "The connection to the server closed."), trailers: [:])
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        inRead = true
        let ok = buffer.withUnsafeReadableBytes { session.receive($0) }
        inRead = false
        flushPending = true
        if !ok {
            flush()
            context.close(promise: nil)
        }
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
        context.close(promise: nil)
    }

    func scheduleFlush() {
        if inRead {
            flushPending = true
            return
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [self] in
            flushScheduled = false
            flush()
        }
    }

    private func flush() {
        guard let context, !isClosed, context.channel.isWritable, session.wantsWrite else { return }
        var buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
        let ok = session.send(into: &buffer)
        if buffer.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
        if !ok { context.close(promise: nil) }
    }

    private func markDraining() {
        isDraining = true
        accepting.store(false, ordering: .relaxed)
    }

    /// Opens a stream for a call (on the event loop).
    func open(_ stream: HTTP2ClientStream, method: MethodDescriptor, options: CallOptions) -> RPCError? {
        guard !isDraining, !isClosed else { return RPCError(.unavailable, "The connection is shutting down.") }
        var headers: [(String, String)] = [
            (":method", "POST"), (":scheme", scheme), (":path", method.path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", userAgent),
            ("grpc-accept-encoding", "identity,gzip"),
        ]
        if let compression = options.compression, compression != .identity { headers.append(("grpc-encoding", compression.name)) }
        if let timeout = options.timeout { headers.append(("grpc-timeout", GRPCTimeout.format(timeout))) }
        options.metadata.forEachWireHeader { headers.append(($0, $1)) }
        guard let id = session.submitRequest(headers: headers) else {
            return RPCError(.unavailable, "The connection cannot open more streams.")
        }
        stream.id = id
        streams[id] = stream
        if let timeout = options.timeout {
            stream.deadlineTimer = loop.scheduleTask(in: .init(timeout)) { [self] in
                if stream.response.end(error: RPCError(.deadlineExceeded, "The deadline was exceeded."), trailers: [:]) {
                    reset(stream, errorCode: HTTP2ErrorCode.cancel)
                }
            }
        }
        scheduleFlush()
        return nil
    }

    func reset(_ stream: HTTP2ClientStream, errorCode: UInt32) {
        guard streams[stream.id] != nil else { return }
        session.resetStream(streamID: stream.id, errorCode: errorCode)
        scheduleFlush()
    }

    func replenishWindow(streamID: Int32) {
        guard let stream = streams[streamID], stream.unconsumed > 0 else { return }
        session.consume(streamID: streamID, count: stream.unconsumed)
        stream.unconsumed = 0
        scheduleFlush()
    }

    // MARK: - HTTP2SessionDelegate

    func sessionFrameReceived() {}
    func sessionBeginHeaders(streamID: Int32) {}

    func sessionHeader(streamID: Int32, name: String, value: String) -> Bool {
        guard let stream = streams[streamID] else { return true }
        switch name {
        case ":status": stream.httpStatus = value
        case "content-type": stream.contentType = value
        case "grpc-status": stream.grpcStatus = value
        case "grpc-message": stream.grpcMessage = value
        case "grpc-status-details-bin": stream.grpcStatusDetails = value
        case "grpc-encoding": stream.responseEncoding = value
        default:
            if !Metadata.isReserved(name) { stream.metadata.addWireHeader(name: name, value: value) }
        }
        return true
    }

    func sessionHeadersComplete(streamID: Int32, endStream: Bool) {
        guard let stream = streams[streamID] else { return }
        if !stream.receivedHeaders {
            stream.receivedHeaders = true
            if endStream {
                stream.complete(trailersOnly: true)
                return
            }
            if stream.httpStatus != "200" {
                stream.complete(trailersOnly: true)
                reset(stream, errorCode: HTTP2ErrorCode.cancel)
                return
            }
            var compression: CompressionAlgorithm?
            if let encoding = stream.responseEncoding, encoding != "identity" {
                guard let algorithm = CompressionAlgorithm(wireName: encoding) else {
                    stream.response.end(error: RPCError(.internal, "The server used unsupported compression '\(encoding)'."), trailers: [:])
                    reset(stream, errorCode: HTTP2ErrorCode.cancel)
                    return
                }
                compression = algorithm
            }
            stream.response.receiveHeaders(stream.metadata, compression: compression)
            stream.metadata = Metadata()
        } else if endStream {
            stream.complete(trailersOnly: false)
        }
    }

    func sessionData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID], !stream.response.isFinished else {
            session.consume(streamID: streamID, count: bytes.count)
            return
        }
        stream.unconsumed += bytes.count
        stream.deframer.append(bytes)
        do throws(RPCError) {
            while let message = try stream.deframer.next() { stream.response.receiveMessage(message) }
        } catch {
            stream.response.end(error: error, trailers: [:])
            reset(stream, errorCode: HTTP2ErrorCode.cancel)
        }
        if stream.response.messages.pendingCount == 0 {
            session.consume(streamID: streamID, count: stream.unconsumed)
            stream.unconsumed = 0
        }
    }

    func sessionEndStream(streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        // END_STREAM on DATA: no trailers followed.
        stream.complete(trailersOnly: false)
    }

    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.deadlineTimer?.cancel()
        if stream.unconsumed > 0 { session.consumeConnection(count: stream.unconsumed) }
        stream.resumeWriter(RPCError(.cancelled, "The call is over."))
        if !stream.response.isFinished {
            let error: RPCError
            switch errorCode {
            case HTTP2ErrorCode.refusedStream:
                error = RPCError(.unavailable, "The server refused the stream (it may be shutting down).")
            case HTTP2ErrorCode.cancel:
                error = RPCError(.cancelled, "The server cancelled the call.")
            case HTTP2ErrorCode.noError:
                error = RPCError(.internal, "The server closed the stream without sending trailers.")
            default:
                error = RPCError(.internal, "The stream was reset by the server (HTTP/2 error \(errorCode)).")
            }
            stream.response.end(error: error, trailers: [:])
        }
    }

    func sessionOutboundDrained(streamID: Int32) {
        streams[streamID]?.resumeWriter(nil)
    }

    func sessionPingReceived() {}
    func sessionPingAcknowledged(payload: UInt64) {}

    func sessionGoAwayReceived(lastStreamID: Int32, errorCode: UInt32) {
        markDraining()
        if streams.isEmpty, let context {
            context.close(promise: nil)
        }
    }
}
