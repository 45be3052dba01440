import CarrierKit
import Logging
import NIOCore
import TowerProto
import TowerProtoRuntime

/// Splits the plugin's stdout into frames and hands each decoded Envelope to the connection.
/// A protocol fault (oversized or undecodable frame) is reported once; nothing after it is read.
final class FrameInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var decoder: CarrierFrameDecoder
    private var failed = false
    private let onEnvelope: @Sendable (Carrier_Envelope) -> Void
    private let onFault: @Sendable (CarrierProtocolError) -> Void
    private let onEndOfInput: @Sendable () -> Void

    init(
        maxFrameBytes: Int, onEnvelope: @escaping @Sendable (Carrier_Envelope) -> Void,
        onFault: @escaping @Sendable (CarrierProtocolError) -> Void, onEndOfInput: @escaping @Sendable () -> Void = {}
    ) {
        self.decoder = CarrierFrameDecoder(maxFrameBytes: maxFrameBytes)
        self.onEnvelope = onEnvelope
        self.onFault = onFault
        self.onEndOfInput = onEndOfInput
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        decoder.append(contentsOf: buffer.readableBytesView)
        do {
            while let body = try decoder.nextFrame() {
                onEnvelope(try CarrierFrame.decode(body))
            }
        } catch {
            failed = true
            onFault(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !failed, let error = decoder.endOfStreamError() { onFault(error) }
        onEndOfInput()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Half-closure: the plugin closed stdout. Every frame it wrote has been read by now; the
        // process watcher, which waits for this, reports the exit.
        if let event = event as? ChannelEvent, event == .inputClosed { onEndOfInput() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Forwards the plugin's stderr into the host's log, one record per line, tagged with the
/// plugin's name and pid. Lines may be any length: a line longer than `maxLineBytes` is logged in
/// pieces (marked `continued`) rather than failing. JSON lines (`{"level":…,"msg":…}`, what
/// CarrierKit writes) keep their level and fields; anything else is logged as text at info.
final class StderrLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var line: [UInt8] = []
    private let maxLineBytes: Int
    private let logger: Logger

    init(logger: Logger, maxLineBytes: Int = 256 * 1024) {
        self.logger = logger
        self.maxLineBytes = maxLineBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        for byte in buffer.readableBytesView {
            if byte == 0x0a {
                emit(continued: false)
            } else {
                line.append(byte)
                if line.count >= maxLineBytes { emit(continued: true) }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !line.isEmpty { emit(continued: false) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func emit(continued: Bool) {
        defer { line.removeAll(keepingCapacity: line.count < 64 * 1024) }
        if line.last == 0x0d { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        if text.isEmpty && !continued { return }
        StderrLineHandler.forward(text, continued: continued, to: logger)
    }

    static func forward(_ text: String, continued: Bool, to logger: Logger) {
        var metadata: Logger.Metadata = [:]
        if continued { metadata["continued"] = "true" }
        if text.first == "{", let json = try? JSONValue.parse(text), case .object(let members) = json,
            case .string(let message)? = json["msg"]
        {
            var level = Logger.Level.info
            if case .string(let name)? = json["level"], let parsed = Logger.Level(rawValue: name) { level = parsed }
            for (key, value) in members where key != "msg" && key != "level" {
                if case .string(let s) = value { metadata[key] = .string(s) } else { metadata[key] = .string(value.serialized()) }
            }
            logger.log(level: level, "\(message)", metadata: metadata)
        } else {
            logger.info("\(text)", metadata: metadata)
        }
    }
}
