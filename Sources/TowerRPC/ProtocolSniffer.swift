import NIOCore

/// What the server's registry asks of a connection once its protocol is known.
protocol ServerProtocolConnection: AnyObject {
    func initiateGracefulShutdown()
    func forceClose()
}

/// One accepted connection in the server's registry. Until the sniffer has chosen a protocol
/// there is nothing to drain, so shutdown simply closes it. Confined to the channel's event loop.
final class ServerConnectionEntry: @unchecked Sendable {
    let channel: any Channel
    var handler: (any ServerProtocolConnection)?

    init(channel: any Channel) {
        self.channel = channel
    }

    func initiateGracefulShutdown() {
        if let handler { handler.initiateGracefulShutdown() } else { channel.close(promise: nil) }
    }

    func forceClose() {
        if let handler { handler.forceClose() } else { channel.close(promise: nil) }
    }
}

/// Looks at the first bytes of a connection (after TLS, if any) and installs the handler for its
/// protocol: the HTTP/2 client preface (`PRI * HTTP/2.0`) means gRPC, anything else HTTP/1.1.
/// Closes connections that have not said enough within the handshake timeout (which so also
/// bounds the TLS handshake).
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The part of the HTTP/2 preface that no HTTP/1.x request line can start with.
    private static let preface = Array("PRI * HTTP/2.0".utf8)

    private let shared: ServerShared
    private let entry: ServerConnectionEntry
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(shared: ServerShared, entry: ServerConnectionEntry) {
        self.shared = shared
        self.entry = entry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: .init(shared.configuration.limits.handshakeTimeout)) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        let isHTTP2Prefix = bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        if isHTTP2Prefix && compared < Self.preface.count { return }
        install(isHTTP2Prefix ? .http2 : .http1, context: context)
    }

    private enum Kind { case http2, http1 }

    private func install(_ kind: Kind, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let handler: any ChannelHandler & ServerProtocolConnection
        switch kind {
        case .http2: handler = ServerConnectionHandler(shared: shared)
        case .http1: handler = HTTP1ConnectionHandler(shared: shared)
        }
        do {
            try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        entry.handler = handler
        let bytes = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}
