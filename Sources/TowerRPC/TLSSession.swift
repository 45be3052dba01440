internal import COpenSSL
import NIOCore

/// Why a TLS context could not be built or a handshake failed. The message names the file or the
/// step and OpenSSL's reason; it never contains key material.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "TLS: \(message)" }
}

/// The only owner of OpenSSL's `SSL_CTX`: built once from a server or client configuration and
/// shared by every connection (OpenSSL allows concurrent `SSL_new` on a configured context).
final class TLSContext: @unchecked Sendable {
    enum Role { case server, client }

    private let context: OpaquePointer
    let role: Role
    /// Client: the name checked against the certificate (and sent as SNI unless it is an IP).
    let serverName: String?
    let verifiesHostname: Bool

    private init(context: OpaquePointer, role: Role, serverName: String?, verifiesHostname: Bool) {
        self.context = context
        self.role = role
        self.serverName = serverName
        self.verifiesHostname = verifiesHostname
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// TLS 1.2+, certificate chain and key from PEM files, ALPN `h2` (and `http/1.1` when
    /// `offerHTTP1`). A client that offers ALPN without any protocol we speak is refused with the
    /// `no_application_protocol` alert; a client that offers no ALPN at all is accepted and the
    /// connection's first bytes decide the protocol.
    static func server(certificateChainPath: String, privateKeyPath: String, offerHTTP1: Bool) throws(TLSError) -> TLSContext {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw lastError("SSL_CTX_new failed") }
        let result = TLSContext(context: context, role: .server, serverName: nil, verifiesHostname: false)
        try result.applyCommonSettings()
        guard SSL_CTX_use_certificate_chain_file(context, certificateChainPath) == 1 else {
            throw lastError("Could not load the certificate chain from \(certificateChainPath) (expected PEM)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw lastError("Could not load the private key from \(privateKeyPath) (expected unencrypted PEM)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw lastError("The private key in \(privateKeyPath) does not match the certificate")
        }
        SSL_CTX_set_alpn_select_cb(context, offerHTTP1 ? selectH2OrHTTP1 : selectH2Only, nil)
        return result
    }

    /// Verifies the server's chain against `trustRootsPath` (PEM bundle) or the system store, and
    /// its name against `serverName`; offers ALPN `h2` only.
    static func client(trustRootsPath: String?, serverName: String, verifyHostname: Bool) throws(TLSError) -> TLSContext {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw lastError("SSL_CTX_new failed") }
        let result = TLSContext(context: context, role: .client, serverName: serverName, verifiesHostname: verifyHostname)
        try result.applyCommonSettings()
        if let trustRootsPath {
            guard SSL_CTX_load_verify_locations(context, trustRootsPath, nil) == 1 else {
                throw lastError("Could not load trust roots from \(trustRootsPath) (expected a PEM bundle)")
            }
        } else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw lastError("Could not load the system trust store") }
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        let protocols: [UInt8] = [2] + Array("h2".utf8)
        guard SSL_CTX_set_alpn_protos(context, protocols, UInt32(protocols.count)) == 0 else { throw lastError("Could not set ALPN") }
        return result
    }

    private func applyCommonSettings() throws(TLSError) {
        guard ctower_ssl_ctx_set_min_tls12(context) == 1 else { throw Self.lastError("Could not require TLS 1.2") }
        _ = ctower_ssl_ctx_set_mode_release_buffers(context)
        // Renegotiation is a DoS lever and HTTP/2 forbids it (RFC 9113 §9.2.1); compression is CRIME.
        _ = ctower_ssl_ctx_disable_renegotiation_and_compression(context)
    }

    func makeSession() throws(TLSError) -> TLSSession {
        guard let ssl = SSL_new(context) else { throw Self.lastError("SSL_new failed") }
        guard let networkIn = BIO_new(BIO_s_mem()), let networkOut = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw Self.lastError("BIO_new failed")
        }
        // The SSL owns both BIOs from here on; SSL_free releases them.
        SSL_set_bio(ssl, networkIn, networkOut)
        switch role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                if !Self.isIPAddress(serverName) { _ = ctower_ssl_set_tlsext_host_name(ssl, serverName) }
                if verifiesHostname, SSL_set1_host(ssl, serverName) != 1 {
                    SSL_free(ssl)
                    throw Self.lastError("Could not set the expected host name")
                }
            }
        }
        return TLSSession(ssl: ssl, networkIn: networkIn, networkOut: networkOut)
    }

    /// SNI must not carry IP literals (RFC 6066 §3).
    static func isIPAddress(_ name: String) -> Bool {
        name.contains(":") || (!name.isEmpty && name.allSatisfy { $0.isNumber || $0 == "." })
    }

    static func lastError(_ context: String) -> TLSError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            reasons.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TLSError(reasons.isEmpty ? context : "\(context): \(reasons.joined(separator: "; "))")
    }
}

/// Picks `h2` from the client's ALPN list; with nothing acceptable the handshake fails.
private let selectH2Only: SSL_CTX_alpn_select_cb_func = { _, out, outLength, offered, offeredLength, _ in
    selectProtocol(out: out, outLength: outLength, offered: offered, offeredLength: offeredLength, allowHTTP1: false)
}

private let selectH2OrHTTP1: SSL_CTX_alpn_select_cb_func = { _, out, outLength, offered, offeredLength, _ in
    selectProtocol(out: out, outLength: outLength, offered: offered, offeredLength: offeredLength, allowHTTP1: true)
}

private func selectProtocol(
    out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, outLength: UnsafeMutablePointer<UInt8>?, offered: UnsafePointer<UInt8>?,
    offeredLength: UInt32, allowHTTP1: Bool
) -> Int32 {
    guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    var http1: Int?
    var index = 0
    while index < list.count {
        let length = Int(list[index])
        let start = index + 1
        guard start + length <= list.count else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let name = list[start..<start + length]
        if name.elementsEqual("h2".utf8) {
            out.pointee = offered + start
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        if allowHTTP1, http1 == nil, name.elementsEqual("http/1.1".utf8) { http1 = start }
        index = start + length
    }
    if let http1 {
        out.pointee = offered + http1
        outLength.pointee = 8
        return SSL_TLSEXT_ERR_OK
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// One TLS connection over memory BIOs: ciphertext in from the socket, plaintext out to the
/// protocol handler and back. Owns the `SSL*` (and through it both BIOs) and frees it in deinit.
/// Confined to its connection's event loop.
final class TLSSession {
    enum Step {
        case complete
        case wantsMoreInput
        case failed(TLSError)
    }

    enum ReadOutcome {
        /// Everything decryptable so far was appended.
        case drained
        /// The peer sent close_notify.
        case closed
        case failed(TLSError)
    }

    private let ssl: OpaquePointer
    private let networkIn: OpaquePointer
    private let networkOut: OpaquePointer

    fileprivate init(ssl: OpaquePointer, networkIn: OpaquePointer, networkOut: OpaquePointer) {
        self.ssl = ssl
        self.networkIn = networkIn
        self.networkOut = networkOut
    }

    deinit {
        SSL_free(ssl)
    }

    /// Ciphertext from the network.
    func receive(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // A memory BIO grows as needed, so the write always takes everything.
        _ = BIO_write(networkIn, base, Int32(bytes.count))
    }

    func handshake() -> Step {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantsMoreInput
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != Int(X509_V_OK) {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                ERR_clear_error()
                return .failed(TLSError("Certificate verification failed: \(reason)"))
            }
            return .failed(TLSContext.lastError("Handshake failed"))
        }
    }

    /// Decrypts whatever full records have arrived into `buffer`.
    func readPlaintext(into buffer: inout ByteBuffer) -> ReadOutcome {
        while true {
            ERR_clear_error()
            var status: Int32 = 0
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { raw -> Int in
                status = SSL_read(ssl, raw.baseAddress, Int32(min(raw.count, Int(Int32.max))))
                return status > 0 ? Int(status) : 0
            }
            if count > 0 { continue }
            switch SSL_get_error(ssl, status) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .drained
            case SSL_ERROR_ZERO_RETURN: return .closed
            default: return .failed(TLSContext.lastError("Read failed"))
            }
        }
    }

    /// Encrypts all of `bytes` (memory BIOs never block, so this completes or fails).
    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSError? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        ERR_clear_error()
        let written = SSL_write(ssl, base, Int32(bytes.count))
        return written == Int32(bytes.count) ? nil : TLSContext.lastError("Write failed")
    }

    /// Moves pending ciphertext (handshake messages, records, alerts) into `buffer`.
    func drainCiphertext(into buffer: inout ByteBuffer) {
        while BIO_ctrl_pending(networkOut) > 0 {
            _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(BIO_ctrl_pending(networkOut))) { raw -> Int in
                let read = BIO_read(networkOut, raw.baseAddress, Int32(min(raw.count, Int(Int32.max))))
                return read > 0 ? Int(read) : 0
            }
        }
    }

    var hasCiphertextToSend: Bool { BIO_ctrl_pending(networkOut) > 0 }

    /// The protocol ALPN settled on, if any.
    var negotiatedProtocol: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    /// Queues close_notify.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }
}
