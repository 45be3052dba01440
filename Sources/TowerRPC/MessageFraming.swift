import NIOCore

/// One gRPC message as it arrived: the compressed flag and the payload bytes.
struct FramedMessage: Sendable {
    var compressed: Bool
    var payload: [UInt8]
}

/// Splits a byte stream into gRPC messages (1-byte flag, 4-byte big-endian length, payload),
/// independent of how the bytes were cut into DATA frames.
struct MessageDeframer {
    let maxMessageSize: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Bytes received but not yet returned as a message.
    var bufferedByteCount: Int { buffer.count - readIndex }

    mutating func append(_ bytes: some Collection<UInt8>) {
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil when more bytes are needed. Throws RESOURCE_EXHAUSTED as
    /// soon as a length prefix exceeds the limit, before buffering the payload.
    mutating func next() throws(RPCError) -> FramedMessage? {
        let available = buffer.count - readIndex
        guard available >= 5 else { return nil }
        let flag = buffer[readIndex]
        let length =
            Int(buffer[readIndex + 1]) << 24 | Int(buffer[readIndex + 2]) << 16 | Int(buffer[readIndex + 3]) << 8
            | Int(buffer[readIndex + 4])
        if length > maxMessageSize {
            throw RPCError(.resourceExhausted, "Received a message of \(length) bytes, larger than the limit of \(maxMessageSize) bytes.")
        }
        guard flag <= 1 else {
            throw RPCError(.internal, "Received a message with an invalid compressed flag \(flag).")
        }
        guard available >= 5 + length else { return nil }
        let start = readIndex + 5
        let payload = Array(buffer[start..<start + length])
        readIndex = start + length
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            readIndex = 0
        } else if readIndex > 64 * 1024 && readIndex * 2 > buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        return FramedMessage(compressed: flag == 1, payload: payload)
    }
}

enum MessageFramer {
    /// Writes the 5-byte prefix and the payload.
    static func frame(_ payload: some Collection<UInt8>, compressed: Bool, into buffer: inout ByteBuffer) {
        buffer.writeInteger(compressed ? 1 : 0, as: UInt8.self)
        buffer.writeInteger(UInt32(payload.count), as: UInt32.self)
        buffer.writeBytes(payload)
    }

    static func frame(_ payload: [UInt8], compressed: Bool) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.count + 5)
        frame(payload, compressed: compressed, into: &buffer)
        return buffer
    }
}
