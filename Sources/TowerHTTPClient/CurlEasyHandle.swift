internal import CCurl
import Synchronization

/// One libcurl easy handle: the only place in the package that touches libcurl or raw pointers.
///
/// A handle keeps its connection cache between transfers (`curl_easy_reset` leaves live
/// connections alone), which is how the client reuses TCP and TLS connections. A handle serves
/// one transfer at a time; `HTTPClient` hands it between threads through its pool's lock, hence
/// `@unchecked Sendable`.
final class CurlEasyHandle: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    /// libcurl's process-wide initialisation, done once before the first handle.
    private static let globalInit: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    init?() {
        guard Self.globalInit, let handle = curl_easy_init() else { return nil }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Runs one blocking transfer on the calling thread.
    func perform(_ request: HTTPRequest, maxResponseBytes: Int, cancellation: CancellationFlag) -> Result<HTTPResponse, HTTPClientError> {
        curl_easy_reset(handle)
        let transfer = Transfer(maxBodyBytes: maxResponseBytes, cancellation: cancellation)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        let userdata = context.toOpaque()

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        // No `Expect: 100-continue` round trip for small bodies.
        headerList = curl_slist_append(headerList, "Expect:")

        var problems: [CURLcode] = []
        func set(_ code: CURLcode) { if code != CURLE_OK { problems.append(code) } }
        set(ctower_curl_setopt_string(handle, CURLOPT_URL, request.url))
        set(ctower_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(ctower_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout)))
        set(ctower_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout)))
        set(ctower_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        set(ctower_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
        set(ctower_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(ctower_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, ""))
        set(ctower_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        if let auth = request.basicAuth {
            set(ctower_curl_setopt_basic_auth(handle))
            set(ctower_curl_setopt_string(handle, CURLOPT_USERNAME, auth.username))
            set(ctower_curl_setopt_string(handle, CURLOPT_PASSWORD, auth.password))
        }
        switch request.method {
        case .get where request.body.isEmpty:
            set(ctower_curl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case .head:
            set(ctower_curl_setopt_long(handle, CURLOPT_NOBODY, 1))
        default:
            if request.method != .post {
                set(ctower_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.name))
            }
            if request.method == .post || !request.body.isEmpty {
                set(ctower_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, request.body.count))
                // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
                if request.body.isEmpty {
                    set(ctower_curl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, ""))
                } else {
                    request.body.withUnsafeBytes { bytes in
                        set(
                            ctower_curl_setopt_pointer(
                                handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress!)))
                    }
                }
            }
        }
        set(ctower_curl_setopt_write_function(handle, curlWriteBody))
        set(ctower_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, userdata))
        set(ctower_curl_setopt_header_function(handle, curlWriteHeader))
        set(ctower_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, userdata))
        set(ctower_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
        set(ctower_curl_setopt_xferinfo_function(handle, curlProgress))
        set(ctower_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, userdata))
        set(ctower_curl_setopt_long(handle, CURLOPT_VERBOSE, 1))
        set(ctower_curl_setopt_debug_function(handle, curlDebug))
        set(ctower_curl_setopt_pointer(handle, CURLOPT_DEBUGDATA, userdata))
        if let problem = problems.first {
            return .failure(HTTPClientError(.invalidRequest, delivery: .notSent, Self.describe(problem)))
        }
        if cancellation.isCancelled {
            return .failure(HTTPClientError(.cancelled, delivery: .notSent, "cancelled before sending"))
        }

        let code = curl_easy_perform(handle)
        if code == CURLE_OK {
            var status = 0
            _ = ctower_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: transfer.headers, body: transfer.body))
        }
        return .failure(Self.classify(code, requestWentOut: transfer.requestWentOut, transfer: transfer))
    }

    /// Maps a libcurl failure to a code and to whether the server may have the request.
    private static func classify(_ code: CURLcode, requestWentOut: Bool, transfer: Transfer) -> HTTPClientError {
        let message = describe(code)
        // Failures that by their nature happen before a request byte is written.
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPClientError(.resolveFailed, delivery: .notSent, message)
        case CURLE_COULDNT_CONNECT:
            return HTTPClientError(.connectFailed, delivery: .notSent, message)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE:
            return HTTPClientError(.tlsFailed, delivery: .notSent, message)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return HTTPClientError(.invalidRequest, delivery: .notSent, message)
        default:
            break
        }
        // Everything else depends on whether the request headers had gone out: libcurl reports
        // them through the debug callback (CURLINFO_HEADER_OUT) right after writing them.
        let delivery: HTTPClientError.Delivery = requestWentOut ? .maybeSent : .notSent
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return HTTPClientError(requestWentOut ? .timedOut : .connectFailed, delivery: delivery, message)
        case CURLE_ABORTED_BY_CALLBACK:
            if transfer.bodyTooLarge {
                return HTTPClientError(.responseTooLarge, delivery: delivery, "the response exceeded the size limit")
            }
            return HTTPClientError(.cancelled, delivery: delivery, "cancelled")
        case CURLE_WRITE_ERROR where transfer.bodyTooLarge:
            return HTTPClientError(.responseTooLarge, delivery: delivery, "the response exceeded the size limit")
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return HTTPClientError(.connectionLost, delivery: delivery, message)
        default:
            return HTTPClientError(.other, delivery: delivery, message)
        }
    }

    private static func describe(_ code: CURLcode) -> String {
        "libcurl error \(code.rawValue): " + String(cString: curl_easy_strerror(code))
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}

/// Raised from another thread to stop a transfer at libcurl's next progress callback.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Per-transfer state the C callbacks fill in. Lives on the transfer's thread only.
private final class Transfer {
    let maxBodyBytes: Int
    let cancellation: CancellationFlag
    var body: [UInt8] = []
    var headers: [HTTPHeader] = []
    var requestWentOut = false
    var bodyTooLarge = false

    init(maxBodyBytes: Int, cancellation: CancellationFlag) {
        self.maxBodyBytes = maxBodyBytes
        self.cancellation = cancellation
    }
}

private func curlWriteBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?) -> Int {
    guard let data, let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    if transfer.body.count + length > transfer.maxBodyBytes {
        transfer.bodyTooLarge = true
        return 0
    }
    data.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}

private func curlWriteHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?) -> Int {
    guard let data, let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    if line.hasPrefix("HTTP/") {
        // A new status line (after 100 Continue or a redirect): headers start over.
        transfer.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters()
        let value = line[line.index(after: colon)...].trimmingCharacters()
        transfer.headers.append(HTTPHeader(name: name, value: value))
    }
    return length
}

private func curlProgress(_ userdata: UnsafeMutableRawPointer?, _: curl_off_t, _: curl_off_t, _: curl_off_t, _: curl_off_t) -> Int32 {
    guard let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.cancellation.isCancelled ? 1 : 0
}

private func curlDebug(
    _: UnsafeMutableRawPointer?, _ type: curl_infotype, _: UnsafeMutablePointer<CChar>?, _: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int32 {
    guard let userdata else { return 0 }
    if type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT {
        Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue().requestWentOut = true
    }
    return 0
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        let scalars = String(self).unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace { end = scalars.index(before: end) }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }
}
