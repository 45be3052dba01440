import TowerProto
import TowerProtoRuntime

/// A fatal protocol fault: a frame that is too large or not an `Envelope`, or a frame that is not
/// allowed where it arrived. The peer cannot recover from it, so the connection ends.
///
/// The message quotes the first bytes of the offending data in hex and as text, because the
/// usual cause is a stray `print` on stdout and seeing the text makes that obvious.
public struct CarrierProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of fault.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        public static let oversizedFrame = Code(name: "oversized frame")
        public static let undecodableFrame = Code(name: "undecodable frame")
        public static let unexpectedFrame = Code(name: "unexpected frame")
        public static let versionMismatch = Code(name: "version mismatch")
        public static let truncatedStream = Code(name: "truncated stream")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "carrier protocol error (\(code)): \(message)" }

    /// Renders up to `limit` bytes as `hex "printable"` for error messages.
    public static func preview<C: Collection>(_ bytes: C, limit: Int = 32) -> String where C.Element == UInt8 {
        let head = bytes.prefix(limit)
        let hex = head.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: " ")
        let text = String(head.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
        let more = bytes.count > limit ? " …" : ""
        return "\(hex)\(more) \"\(text)\""
    }
}

/// Encodes envelopes as frames: a 4-byte big-endian length, then the serialized `Envelope`.
public enum CarrierFrame {
    /// The frame bytes (length prefix included) for `envelope`.
    public static func encode(_ envelope: Carrier_Envelope) -> [UInt8] {
        envelope.withProtobufBytes { body in
            var frame = [UInt8]()
            frame.reserveCapacity(CarrierProtocol.lengthPrefixBytes + body.count)
            let length = UInt32(body.count)
            frame.append(UInt8(truncatingIfNeeded: length >> 24))
            frame.append(UInt8(truncatingIfNeeded: length >> 16))
            frame.append(UInt8(truncatingIfNeeded: length >> 8))
            frame.append(UInt8(truncatingIfNeeded: length))
            frame.append(contentsOf: body)
            return frame
        }
    }

    /// Decodes one frame body (without the length prefix).
    public static func decode(_ body: [UInt8]) throws(CarrierProtocolError) -> Carrier_Envelope {
        do {
            return try Carrier_Envelope(protobufBytes: body)
        } catch {
            throw CarrierProtocolError(
                code: .undecodableFrame,
                message: "a \(body.count)-byte frame is not a ctower.carrier.v1.Envelope (\(error.message)); "
                    + "first bytes: \(CarrierProtocolError.preview(body)). "
                    + "Only frames may be written to stdout: send logs to stderr.")
        }
    }
}

/// Splits a byte stream into frame bodies. Feed it whatever the pipe delivers; it keeps partial
/// frames until the rest arrives.
public struct CarrierFrameDecoder: Sendable {
    /// Frames larger than this are a fatal error.
    public var maxFrameBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maxFrameBytes: Int = CarrierProtocol.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Adds bytes read from the stream.
    public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame body, or nil when more bytes are needed.
    public mutating func nextFrame() throws(CarrierProtocolError) -> [UInt8]? {
        let available = buffer.count - start
        guard available >= CarrierProtocol.lengthPrefixBytes else { return nil }
        let length =
            Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        if length > maxFrameBytes {
            throw CarrierProtocolError(
                code: .oversizedFrame,
                message: "frame length \(length) exceeds the limit of \(maxFrameBytes) bytes; "
                    + "first bytes: \(CarrierProtocolError.preview(buffer[start...])). "
                    + "Only frames may be written to stdout: send logs to stderr.")
        }
        guard available >= CarrierProtocol.lengthPrefixBytes + length else { return nil }
        let bodyStart = start + CarrierProtocol.lengthPrefixBytes
        let body = Array(buffer[bodyStart..<bodyStart + length])
        start = bodyStart + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.count <= 1 << 20)
            start = 0
        }
        return body
    }

    /// The error for a stream that ended in the middle of a frame, or nil when it ended cleanly.
    public func endOfStreamError() -> CarrierProtocolError? {
        guard bufferedByteCount > 0 else { return nil }
        return CarrierProtocolError(
            code: .truncatedStream,
            message: "stream ended inside a frame; \(bufferedByteCount) bytes left over, first bytes: "
                + CarrierProtocolError.preview(buffer[start...]))
    }
}
