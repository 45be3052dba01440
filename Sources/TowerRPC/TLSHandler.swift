import NIOCore

/// Terminates TLS in the channel pipeline: ciphertext from the socket goes into a `TLSSession`,
/// plaintext comes out as `ByteBuffer`s for the next handler; plaintext writes are encrypted on
/// the way out. Writes issued before the handshake completes wait for it.
final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case handshaking, established, closed }

    private let session: TLSSession
    private let isClient: Bool
    private var state = State.handshaking
    private var handshakePromise: EventLoopPromise<String?>?
    /// Plaintext written before the handshake completed.
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// Promises of plaintext writes whose records have not reached the socket yet.
    private var outboundPromises: [EventLoopPromise<Void>] = []

    /// `handshakePromise` succeeds with the ALPN protocol once the handshake is done and fails if
    /// it fails or the connection closes first; this handler is the only one to complete it.
    init(session: TLSSession, isClient: Bool, handshakePromise: EventLoopPromise<String?>? = nil) {
        self.session = session
        self.isClient = isClient
        self.handshakePromise = handshakePromise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if isClient && context.channel.isActive { advanceHandshake(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failHandshake(TLSError("The connection closed during the handshake."))
        for (_, promise) in pendingWrites { promise?.fail(ChannelError.ioOnClosedChannel) }
        pendingWrites = []
        for promise in outboundPromises { promise.fail(ChannelError.ioOnClosedChannel) }
        outboundPromises = []
    }

    func channelActive(context: ChannelHandlerContext) {
        if isClient { advanceHandshake(context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        failHandshake(TLSError("The connection closed during the handshake."))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        guard state != .closed else { return }
        ciphertext.withUnsafeReadableBytes { session.receive($0) }
        if state == .handshaking {
            advanceHandshake(context: context)
        }
        if state == .established {
            readPlaintext(context: context)
        }
        flushCiphertext(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch session.handshake() {
        case .wantsMoreInput:
            flushCiphertext(context: context)
        case .failed(let error):
            fail(context: context, error)
        case .complete:
            state = .established
            let negotiated = session.negotiatedProtocol
            if isClient && negotiated != "h2" {
                return fail(context: context, TLSError("The server did not agree to HTTP/2 via ALPN (got \(negotiated ?? "none"))."))
            }
            handshakePromise?.succeed(negotiated)
            handshakePromise = nil
            let writes = pendingWrites
            pendingWrites = []
            for (buffer, promise) in writes { encrypt(buffer, promise: promise, context: context) }
            flushCiphertext(context: context)
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        var plaintext = context.channel.allocator.buffer(capacity: 16 * 1024)
        let outcome = session.readPlaintext(into: &plaintext)
        if plaintext.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(plaintext)) }
        switch outcome {
        case .drained:
            break
        case .closed:
            // close_notify: answer it and close.
            session.shutdown()
            flushCiphertext(context: context)
            state = .closed
            context.close(promise: nil)
        case .failed(let error):
            fail(context: context, error)
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        // Send the alert OpenSSL queued, if any.
        flushCiphertext(context: context)
        failHandshake(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failHandshake(_ error: TLSError) {
        if let promise = handshakePromise, state != .established {
            handshakePromise = nil
            promise.fail(error)
        }
    }

    // MARK: - Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .handshaking: pendingWrites.append((buffer, promise))
        case .established: encrypt(buffer, promise: promise, context: context)
        case .closed: promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if state == .established { flushCiphertext(context: context) }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, state == .established {
            session.shutdown()
            flushCiphertext(context: context)
        }
        state = .closed
        context.close(mode: mode, promise: promise)
    }

    private func encrypt(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        if let error = buffer.withUnsafeReadableBytes({ session.writePlaintext($0) }) {
            promise?.fail(error)
            return fail(context: context, error)
        }
        if let promise { outboundPromises.append(promise) }
    }

    /// Writes out whatever ciphertext OpenSSL produced (records, handshake messages, alerts),
    /// completing the promises of the writes it carries once the socket took it.
    private func flushCiphertext(context: ChannelHandlerContext) {
        guard session.hasCiphertextToSend else { return }
        var buffer = context.channel.allocator.buffer(capacity: 16 * 1024 + 64)
        session.drainCiphertext(into: &buffer)
        let promises = outboundPromises
        outboundPromises = []
        var promise: EventLoopPromise<Void>?
        if promises.count == 1 {
            promise = promises[0]
        } else if !promises.isEmpty {
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for waiting in promises { waiting.completeWith(result) }
            }
            promise = combined
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }
}
