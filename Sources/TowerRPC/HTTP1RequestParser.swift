/// Incremental HTTP/1.1 request parser (RFC 9112) for the small HTTP side of the server: request
/// line, header fields, Content-Length and chunked bodies, all bounded. Pure value type, no I/O.
///
/// Deliberately strict where leniency enables request smuggling: both Transfer-Encoding and
/// Content-Length, conflicting Content-Lengths, obsolete line folding and codings other than
/// `chunked` are refused, and the connection closes after any error.
struct HTTP1RequestParser {
    enum Event: Equatable {
        case request(ParsedRequest)
        /// The client sent `Expect: 100-continue` and waits before sending the body.
        case expectContinue
        case needMoreBytes
        /// Answer with `status` and close the connection.
        case failure(status: Int, reason: String)
    }

    struct ParsedRequest: Equatable {
        var method: String
        var path: String
        var query: String
        var headers: [Header]
        var body: [UInt8]
        var keepAlive: Bool

        var asHTTPRequest: HTTPRequest {
            HTTPRequest(method: method, path: path, query: query, headers: headers.map { ($0.name, $0.value) }, body: body)
        }
    }

    struct Header: Equatable {
        var name: String
        var value: String
    }

    private enum BodyState: Equatable {
        case none
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    let maxHeaderBytes: Int
    let maxBodyBytes: Int

    private var input: [UInt8] = []
    private var position = 0
    private var head: ParsedRequest?
    private var bodyState = BodyState.none
    private var wantsContinue = false
    private var trailerBytes = 0
    private var failed = false

    init(maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Bytes received but not yet parsed (bounds the connection's buffer).
    var bufferedByteCount: Int { input.count - position }
    /// Whether a request has started but is not complete.
    var isInsideRequest: Bool { head != nil || bufferedByteCount > 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if position > 0 && position >= input.count / 2 {
            input.removeFirst(position)
            position = 0
        }
        input.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func next() -> Event {
        guard !failed else { return .needMoreBytes }
        if head == nil {
            switch parseHead() {
            case .some(.failure(let status, let reason)):
                failed = true
                return .failure(status: status, reason: reason)
            case .some(let event):
                return event
            case .none:
                break
            }
        }
        if wantsContinue {
            wantsContinue = false
            if bufferedByteCount == 0 { return .expectContinue }
        }
        switch parseBody() {
        case .failure(let status, let reason):
            failed = true
            return .failure(status: status, reason: reason)
        case let event:
            return event
        }
    }

    // MARK: - Head

    /// nil when the head was parsed and the body comes next.
    private mutating func parseHead() -> Event? {
        // Robustness (RFC 9112 §2.2): ignore empty lines before the request line.
        while input.count - position >= 2, input[position] == 13, input[position + 1] == 10 { position += 2 }
        guard let end = findHeadEnd() else {
            if input.count - position > maxHeaderBytes { return .failure(status: 431, reason: "request header too large") }
            return .needMoreBytes
        }
        if end - position > maxHeaderBytes { return .failure(status: 431, reason: "request header too large") }
        let lines = splitLines(input[position..<end])
        position = end + 4
        guard let requestLine = lines.first else { return .failure(status: 400, reason: "missing request line") }
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte) else {
            return .failure(status: 400, reason: "malformed request line")
        }
        let target = parts[1]
        guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failure(status: 400, reason: "malformed request target")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .failure(status: version.hasPrefix("HTTP/") ? 505 : 400, reason: "unsupported HTTP version")
        }
        let isHTTP11 = version == "HTTP/1.1"

        var headers: [Header] = []
        headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                line[line.startIndex..<colon].allSatisfy(Self.isTokenByte)
            else { return .failure(status: 400, reason: "malformed header field") }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
            while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
            guard value.allSatisfy({ $0 >= 32 || $0 == 9 }), !value.contains(127) else {
                return .failure(status: 400, reason: "invalid header value")
            }
            headers.append(
                Header(
                    name: String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased(),
                    value: String(decoding: value, as: UTF8.self)))
        }

        let hosts = headers.filter { $0.name == "host" }
        if isHTTP11 && hosts.count != 1 || hosts.count > 1 { return .failure(status: 400, reason: "exactly one Host header is required") }

        let connection = headers.filter { $0.name == "connection" }.map { $0.value.lowercased() }.joined(separator: ",")
        let connectionTokens = connection.split(separator: ",").map { $0.httpTrimmed }
        let keepAlive = isHTTP11 ? !connectionTokens.contains("close") : connectionTokens.contains("keep-alive")

        let transferEncodings = headers.filter { $0.name == "transfer-encoding" }
        let contentLengths = headers.filter { $0.name == "content-length" }
        if !transferEncodings.isEmpty {
            guard isHTTP11, contentLengths.isEmpty else {
                return .failure(status: 400, reason: "Transfer-Encoding with Content-Length or in HTTP/1.0")
            }
            let codings = transferEncodings.map { $0.value.lowercased() }.joined(separator: ",").split(separator: ",")
                .map { $0.httpTrimmed }
            guard codings == ["chunked"] else { return .failure(status: 501, reason: "only chunked transfer coding is supported") }
            bodyState = .chunkSize
        } else if !contentLengths.isEmpty {
            let values = Set(contentLengths.flatMap { $0.value.split(separator: ",").map { $0.httpTrimmed } })
            guard values.count == 1, let text = values.first, !text.isEmpty, text.count <= 18, text.allSatisfy(\.isASCIIDigit),
                let length = Int(text)
            else { return .failure(status: 400, reason: "invalid Content-Length") }
            if length > maxBodyBytes { return .failure(status: 413, reason: "request body too large") }
            bodyState = length > 0 ? .length(remaining: length) : .none
        } else {
            bodyState = .none
        }
        if isHTTP11, bodyState != .none,
            headers.contains(where: { $0.name == "expect" && $0.value.lowercased() == "100-continue" })
        {
            wantsContinue = true
        }

        let targetString = String(decoding: target, as: UTF8.self)
        let path: String
        let query: String
        if let question = targetString.firstIndex(of: "?") {
            path = String(targetString[..<question])
            query = String(targetString[targetString.index(after: question)...])
        } else {
            path = targetString
            query = ""
        }
        head = ParsedRequest(
            method: String(decoding: parts[0], as: UTF8.self), path: path, query: query, headers: headers, body: [],
            keepAlive: keepAlive)
        trailerBytes = 0
        return nil
    }

    private func findHeadEnd() -> Int? {
        var index = position
        let limit = input.count - 3
        while index < limit {
            if input[index] == 13, input[index + 1] == 10, input[index + 2] == 13, input[index + 3] == 10 { return index }
            index += 1
        }
        return nil
    }

    private func splitLines(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == 13, index + 1 < bytes.endIndex, bytes[index + 1] == 10 {
                lines.append(bytes[start..<index])
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        lines.append(bytes[start..<bytes.endIndex])
        return lines
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    // MARK: - Body

    private mutating func parseBody() -> Event {
        while true {
            switch bodyState {
            case .none:
                return complete()
            case .length(let remaining):
                let take = min(remaining, input.count - position)
                head!.body.append(contentsOf: input[position..<position + take])
                position += take
                if take == remaining { return complete() }
                bodyState = .length(remaining: remaining - take)
                return .needMoreBytes
            case .chunkSize:
                guard let lineEnd = findCRLF() else {
                    if input.count - position > 1024 { return .failure(status: 400, reason: "malformed chunk size") }
                    return .needMoreBytes
                }
                var line = input[position..<lineEnd]
                if let semicolon = line.firstIndex(of: UInt8(ascii: ";")) { line = line[..<semicolon] }
                while let last = line.last, last == 32 || last == 9 { line = line.dropLast() }
                guard !line.isEmpty, line.count <= 15, let size = Int(String(decoding: line, as: UTF8.self), radix: 16),
                    line.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) })
                else { return .failure(status: 400, reason: "malformed chunk size") }
                position = lineEnd + 2
                if size == 0 {
                    bodyState = .trailers
                } else {
                    if head!.body.count + size > maxBodyBytes { return .failure(status: 413, reason: "request body too large") }
                    bodyState = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let take = min(remaining, input.count - position)
                head!.body.append(contentsOf: input[position..<position + take])
                position += take
                if take < remaining {
                    bodyState = .chunkData(remaining: remaining - take)
                    return .needMoreBytes
                }
                bodyState = .chunkDataEnd
            case .chunkDataEnd:
                guard input.count - position >= 2 else { return .needMoreBytes }
                guard input[position] == 13, input[position + 1] == 10 else {
                    return .failure(status: 400, reason: "chunk data not followed by CRLF")
                }
                position += 2
                bodyState = .chunkSize
            case .trailers:
                // Trailer fields are read and dropped; a CRLF alone ends the message.
                guard let lineEnd = findCRLF() else {
                    if trailerBytes + input.count - position > maxHeaderBytes {
                        return .failure(status: 431, reason: "trailer section too large")
                    }
                    return .needMoreBytes
                }
                trailerBytes += lineEnd - position + 2
                if trailerBytes > maxHeaderBytes { return .failure(status: 431, reason: "trailer section too large") }
                let empty = lineEnd == position
                position = lineEnd + 2
                if empty { return complete() }
            }
        }
    }

    private func findCRLF() -> Int? {
        var index = position
        while index + 1 < input.count {
            if input[index] == 13, input[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }

    private mutating func complete() -> Event {
        let request = head!
        head = nil
        bodyState = .none
        return .request(request)
    }
}

extension Substring {
    fileprivate var httpTrimmed: String {
        var slice = self[...]
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
