internal import CNGHTTP2
import NIOCore

/// What the owner of an `HTTP2Session` hears from nghttp2, as Swift values.
///
/// Every call happens synchronously inside `receive(_:)`, `send(into:)` or a `submit*` call, on the
/// connection's event loop.
protocol HTTP2SessionDelegate: AnyObject {
    func sessionBeginHeaders(streamID: Int32)
    /// Returning false resets the stream (e.g. the header list is too large).
    func sessionHeader(streamID: Int32, name: String, value: String) -> Bool
    func sessionHeadersComplete(streamID: Int32, endStream: Bool)
    func sessionData(streamID: Int32, bytes: UnsafeRawBufferPointer)
    /// END_STREAM arrived on a DATA frame.
    func sessionEndStream(streamID: Int32)
    func sessionStreamClosed(streamID: Int32, errorCode: UInt32)
    /// Outbound bytes buffered for the stream fell to or below the low-water mark.
    func sessionOutboundDrained(streamID: Int32)
    func sessionPingReceived()
    func sessionPingAcknowledged(payload: UInt64)
    func sessionGoAwayReceived(lastStreamID: Int32, errorCode: UInt32)
    func sessionFrameReceived()
}

struct HTTP2Settings {
    var maxConcurrentStreams: UInt32?
    var initialWindowSize: UInt32 = 65_535
    var maxHeaderListSize: UInt32?
    var maxFrameSize: UInt32?
    var enablePush: Bool?
}

/// HTTP/2 error codes we send or interpret.
enum HTTP2ErrorCode {
    static let noError: UInt32 = 0
    static let protocolError: UInt32 = 1
    static let internalError: UInt32 = 2
    static let refusedStream: UInt32 = 7
    static let cancel: UInt32 = 8
    static let enhanceYourCalm: UInt32 = 11
}

/// One nghttp2 session (server or client): the only owner of the C session pointer, which it frees
/// in `deinit`. Outbound DATA for each stream is buffered here and handed to nghttp2 by the data
/// provider's read callback, so flow control and trailers stay in nghttp2's hands.
final class HTTP2Session {
    enum Role { case server, client }

    /// A class so the hot path mutates it in place (one hash lookup, no copy-out/copy-back).
    private final class Outbound {
        var pending: ByteBuffer?
        var ended = false
        var trailers: [(String, String)]?
        var staticTrailers: StaticHeaderBlock?
        var deferred = false
        var drainWanted = false
    }

    let role: Role
    unowned let delegate: any HTTP2SessionDelegate
    private var session: OpaquePointer?
    private var outbound: [Int32: Outbound] = [:]
    /// A streaming writer waits when a stream has more than this many bytes queued.
    let outboundHighWaterMark: Int
    private var sendAllocator = ByteBufferAllocator()

    init(
        role: Role, delegate: any HTTP2SessionDelegate, settings: HTTP2Settings, connectionWindowSize: Int32,
        outboundHighWaterMark: Int = 64 * 1024, resetBurst: UInt64 = 1000, resetRate: UInt64 = 33
    ) {
        self.role = role
        self.delegate = delegate
        self.outboundHighWaterMark = outboundHighWaterMark

        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSend)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // The application replenishes windows as handlers consume messages: real backpressure.
        nghttp2_option_set_no_auto_window_update(option, 1)
        if role == .server {
            nghttp2_option_set_stream_reset_rate_limit(option, resetBurst, resetRate)
        }

        let userData = Unmanaged.passUnretained(self).toOpaque()
        switch role {
        case .server: nghttp2_session_server_new2(&session, callbacks, userData, option)
        case .client: nghttp2_session_client_new2(&session, callbacks, userData, option)
        }

        var entries: [nghttp2_settings_entry] = []
        func add(_ id: nghttp2_settings_id, _ value: UInt32) {
            entries.append(nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value))
        }
        if let value = settings.maxConcurrentStreams { add(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, value) }
        add(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initialWindowSize)
        if let value = settings.maxHeaderListSize { add(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, value) }
        if let value = settings.maxFrameSize { add(NGHTTP2_SETTINGS_MAX_FRAME_SIZE, value) }
        if let value = settings.enablePush { add(NGHTTP2_SETTINGS_ENABLE_PUSH, value ? 1 : 0) }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
        if connectionWindowSize > 65_535 {
            nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, connectionWindowSize)
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: - Bytes in and out

    /// Feeds received bytes. Returns false when the connection must be torn down (after sending
    /// whatever nghttp2 queued, usually a GOAWAY).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let result = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        return result >= 0
    }

    /// Appends everything nghttp2 wants to send now to `buffer`. Returns false on a fatal error.
    func send(into buffer: inout ByteBuffer) -> Bool {
        while true {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 { return false }
            if length == 0 { return true }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
        }
    }

    var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }
    var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }

    // MARK: - Submitting

    private static func withNameValues<R>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var storage: [UInt8] = []
        var offsets: [(Int, Int, Int, Int)] = []
        offsets.reserveCapacity(headers.count)
        for (name, value) in headers {
            let nameStart = storage.count
            storage.append(contentsOf: name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: value.utf8)
            offsets.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        if storage.isEmpty { storage.append(0) }
        return storage.withUnsafeMutableBufferPointer { raw in
            let base = raw.baseAddress!
            let nameValues = offsets.map { offset in
                nghttp2_nv(
                    name: base + offset.0, value: base + offset.2, namelen: offset.1, valuelen: offset.3,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nameValues.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    private func dataProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = readOutboundCallback
        return provider
    }

    /// Server: response headers. With `endStream` the HEADERS carry END_STREAM (trailers-only or an
    /// HTTP error); otherwise DATA follows through `enqueue` and `finish`.
    func submitResponse(streamID: Int32, headers: [(String, String)], endStream: Bool) {
        Self.withNameValues(headers) { nameValues, count in
            if endStream {
                _ = nghttp2_submit_response(session, streamID, nameValues, count, nil)
            } else {
                outbound[streamID] = Outbound()
                var provider = dataProvider()
                _ = nghttp2_submit_response(session, streamID, nameValues, count, &provider)
            }
        }
    }

    /// Server: response headers from a prebuilt block (nghttp2 does not copy it); DATA follows.
    func submitResponse(streamID: Int32, headers: StaticHeaderBlock) {
        outbound[streamID] = Outbound()
        var provider = dataProvider()
        _ = nghttp2_submit_response(session, streamID, headers.nameValues, headers.count, &provider)
    }

    /// Client: a request whose body follows through `enqueue` and `finish`. Returns the stream id,
    /// or nil if the session cannot open streams (e.g. after GOAWAY).
    func submitRequest(headers: [(String, String)]) -> Int32? {
        var provider = dataProvider()
        let streamID = Self.withNameValues(headers) { nameValues, count in
            nghttp2_submit_request(session, nil, nameValues, count, &provider, nil)
        }
        guard streamID > 0 else { return nil }
        outbound[streamID] = Outbound()
        return streamID
    }

    /// Queues DATA bytes for a stream. Returns the bytes now buffered for it.
    @discardableResult
    func enqueue(streamID: Int32, _ bytes: ByteBuffer) -> Int {
        guard let state = outbound[streamID], !state.ended else { return 0 }
        if state.pending == nil {
            state.pending = bytes
        } else {
            var copy = bytes
            state.pending!.writeBuffer(&copy)
        }
        let buffered = state.pending!.readableBytes
        let wasDeferred = state.deferred
        state.deferred = false
        if wasDeferred { nghttp2_session_resume_data(session, streamID) }
        return buffered
    }

    /// Ends a stream's outbound side once buffered DATA is sent: the server sends `trailers` as a
    /// HEADERS frame carrying END_STREAM; the client (nil trailers) sets END_STREAM on the last DATA.
    func finish(streamID: Int32, trailers: [(String, String)]?) {
        guard let state = outbound[streamID], !state.ended else { return }
        state.ended = true
        state.trailers = trailers
        let wasDeferred = state.deferred
        state.deferred = false
        if wasDeferred { nghttp2_session_resume_data(session, streamID) }
    }

    /// Like `finish(streamID:trailers:)` with a prebuilt trailer block.
    func finish(streamID: Int32, staticTrailers: StaticHeaderBlock) {
        guard let state = outbound[streamID], !state.ended else { return }
        state.ended = true
        state.staticTrailers = staticTrailers
        let wasDeferred = state.deferred
        state.deferred = false
        if wasDeferred { nghttp2_session_resume_data(session, streamID) }
    }

    func bufferedOutboundBytes(streamID: Int32) -> Int {
        outbound[streamID]?.pending?.readableBytes ?? 0
    }

    /// Asks for `sessionOutboundDrained` once the stream's buffer falls to the low-water mark.
    func notifyWhenDrained(streamID: Int32) {
        outbound[streamID]?.drainWanted = true
    }

    func resetStream(streamID: Int32, errorCode: UInt32) {
        outbound[streamID] = nil
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Returns received DATA bytes to the flow-control windows.
    func consume(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(session, streamID, count) != 0 {
            nghttp2_session_consume_connection(session, count)
        }
    }

    func consumeConnection(count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume_connection(session, count)
    }

    func submitPing(payload: UInt64) {
        var data = payload.bigEndian
        withUnsafeBytes(of: &data) { raw in
            _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The first phase of a graceful shutdown: GOAWAY with the maximum stream id.
    func submitShutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// A GOAWAY naming the last stream this side processed.
    func submitGoAway(errorCode: UInt32, debugData: String = "") {
        let lastStreamID = nghttp2_session_get_last_proc_stream_id(session)
        var bytes = Array(debugData.utf8)
        bytes.withUnsafeMutableBufferPointer { raw in
            _ = nghttp2_submit_goaway(
                session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, errorCode, raw.baseAddress, raw.count)
        }
    }

    // MARK: - Callbacks from nghttp2

    fileprivate func readOutbound(
        streamID: Int32, into destination: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let state = outbound[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        var copied = 0
        if let available = state.pending?.readableBytes, available > 0 {
            copied = min(length, available)
            state.pending!.withUnsafeReadableBytes { raw in
                UnsafeMutableRawPointer(destination).copyMemory(from: raw.baseAddress!, byteCount: copied)
            }
            state.pending!.moveReaderIndex(forwardBy: copied)
            if state.pending!.readableBytes == 0 {
                state.pending!.clear()
            }
        }
        let remaining = state.pending?.readableBytes ?? 0
        if remaining == 0 && state.ended {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            outbound[streamID] = nil
            if let block = state.staticTrailers {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                _ = nghttp2_submit_trailer(session, streamID, block.nameValues, block.count)
            } else if let trailers = state.trailers {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                Self.withNameValues(trailers) { nameValues, count in
                    _ = nghttp2_submit_trailer(session, streamID, nameValues, count)
                }
            }
            return copied
        }
        if copied == 0 {
            state.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        let notify = state.drainWanted && remaining <= outboundHighWaterMark / 2
        if notify { state.drainWanted = false }
        if notify { delegate.sessionOutboundDrained(streamID: streamID) }
        return copied
    }

    fileprivate func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        // A server that finishes before the client half-closed resets the stream with NO_ERROR
        // right after the trailers, so the client stops sending.
        guard role == .server, header.type == UInt8(NGHTTP2_HEADERS.rawValue),
            header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
            nghttp2_session_get_stream_remote_close(session, header.stream_id) == 0
        else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), header.stream_id, HTTP2ErrorCode.noError)
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        delegate.sessionFrameReceived()
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            delegate.sessionHeadersComplete(streamID: header.stream_id, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            if endStream { delegate.sessionEndStream(streamID: header.stream_id) }
        case NGHTTP2_PING.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
                let payload = withUnsafeBytes(of: frame.pointee.ping.opaque_data) { raw in
                    raw.loadUnaligned(as: UInt64.self).bigEndian
                }
                delegate.sessionPingAcknowledged(payload: payload)
            } else {
                delegate.sessionPingReceived()
            }
        case NGHTTP2_GOAWAY.rawValue:
            delegate.sessionGoAwayReceived(
                lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code)
        default:
            break
        }
    }

    fileprivate func streamClosed(streamID: Int32, errorCode: UInt32) {
        outbound[streamID] = nil
        delegate.sessionStreamClosed(streamID: streamID, errorCode: errorCode)
    }
}

/// Header fields encoded once into memory owned by this object, for the responses every call
/// sends alike (`:status 200` + content-type, `grpc-status 0`). nghttp2 is told not to copy names
/// or values, so the block must outlive every session that submits it: the server keeps it in
/// `ServerShared`, which each connection retains.
final class StaticHeaderBlock: @unchecked Sendable {
    private let bytes: UnsafeMutablePointer<UInt8>
    fileprivate let nameValues: UnsafeMutablePointer<nghttp2_nv>
    let count: Int

    /// Names must be lower-case (nghttp2's NO_COPY_NAME contract).
    init(_ headers: [(String, String)]) {
        let total = headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count }
        bytes = .allocate(capacity: max(total, 1))
        nameValues = .allocate(capacity: max(headers.count, 1))
        count = headers.count
        var offset = 0
        for (index, (name, value)) in headers.enumerated() {
            precondition(name == name.lowercased(), "header names must be lower-case")
            let nameStart = bytes + offset
            for byte in name.utf8 {
                bytes[offset] = byte
                offset += 1
            }
            let valueStart = bytes + offset
            for byte in value.utf8 {
                bytes[offset] = byte
                offset += 1
            }
            (nameValues + index).initialize(
                to: nghttp2_nv(
                    name: nameStart, value: valueStart, namelen: name.utf8.count, valuelen: value.utf8.count,
                    flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
        }
    }

    deinit {
        nameValues.deinitialize(count: count)
        nameValues.deallocate()
        bytes.deallocate()
    }
}

// MARK: - C callbacks (no captures: they find the session through user_data)

private func session(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
    Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
}

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
    session(userData).delegate.sessionBeginHeaders(streamID: frame!.pointee.hd.stream_id)
    return 0
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
    let nameString = String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)
    let valueString = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
    let accepted = session(userData).delegate.sessionHeader(
        streamID: frame!.pointee.hd.stream_id, name: nameString, value: valueString)
    return accepted ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
}

private let onFrameRecv: nghttp2_on_frame_recv_callback = { _, frame, userData in
    session(userData).frameReceived(frame!)
    return 0
}

private let onFrameSend: nghttp2_on_frame_send_callback = { _, frame, userData in
    session(userData).frameSent(frame!)
    return 0
}

private let onDataChunkRecv: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
    session(userData).delegate.sessionData(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
    session(userData).streamClosed(streamID: streamID, errorCode: errorCode)
    return 0
}

private let readOutboundCallback: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
    session(userData).readOutbound(streamID: streamID, into: buffer!, length: length, flags: flags!)
}
