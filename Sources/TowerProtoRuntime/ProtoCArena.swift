package import CProtobufC

/// Scratch memory for building a protobuf-c message tree from Swift values, freed all at once.
///
/// Generated code converts a Swift message into protobuf-c structs allocated here, packs them with
/// protobuf-c, and lets the arena go: one bump allocator instead of a malloc per string and array.
/// Not for use outside generated code.
package final class ProtoCArena {
    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private var nextChunkSize: Int

    package init(initialCapacity: Int = 512) {
        nextChunkSize = max(initialCapacity, 64)
    }

    deinit {
        for chunk in chunks { chunk.deallocate() }
    }

    /// Raw zeroed memory of `byteCount` bytes aligned to 16.
    package func allocateBytes(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let size = (max(byteCount, 1) + 15) & ~15
        if size > remaining {
            let chunkSize = max(size, nextChunkSize)
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
            chunks.append(chunk)
            cursor = chunk
            remaining = chunkSize
            nextChunkSize = min(chunkSize * 2, 1 << 20)
        }
        let p = cursor!
        cursor = p + size
        remaining -= size
        p.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        return p
    }

    /// Zeroed storage for `count` values of `T`.
    package func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.alignment <= 16)
        return allocateBytes(MemoryLayout<T>.stride * count).bindMemory(to: T.self, capacity: count)
    }

    /// A NUL-terminated copy of `string` (protobuf-c strings are C strings).
    package func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var s = string
        return s.withUTF8 { utf8 in
            let p = allocate(CChar.self, count: utf8.count + 1)
            if let base = utf8.baseAddress {
                UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: utf8.count)
            }
            p[utf8.count] = 0
            return p
        }
    }

    /// A copy of `bytes` as protobuf-c binary data.
    package func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        if bytes.isEmpty { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: bytes.count) }
        return ProtobufCBinaryData(len: bytes.count, data: p)
    }

    /// An array of C values converted from Swift values, or nil when empty (protobuf-c's convention).
    package func array<S, C>(_ values: [S], _ convert: (S) -> C) -> UnsafeMutablePointer<C>? {
        if values.isEmpty { return nil }
        let p = allocate(C.self, count: values.count)
        for (i, v) in values.enumerated() { (p + i).initialize(to: convert(v)) }
        return p
    }

    /// Packs the message rooted at `message` and hands the bytes to `body`.
    package func pack<M, R>(_ message: UnsafeMutablePointer<M>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let base = UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
        let size = protobuf_c_message_get_packed_size(base)
        if size == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let out = allocate(UInt8.self, count: size)
        let written = protobuf_c_message_pack(base, out)
        return try body(UnsafeRawBufferPointer(start: out, count: written))
    }
}

/// Conversions from protobuf-c values to Swift values, for generated code.
package enum ProtoC {
    package static func string(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    package static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    package static func array<C, S>(_ p: UnsafePointer<C>?, _ count: Int, _ convert: (C) -> S) -> [S] {
        guard let p, count > 0 else { return [] }
        var out: [S] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(convert(p[i])) }
        return out
    }

    /// The protobuf-c descriptor of a message type, read from a struct its `__init` function set up
    /// (protobuf-c generates no accessor for nested types' descriptors).
    package static func descriptor<C>(of type: C.Type, initialize: (UnsafeMutablePointer<C>) -> Void) -> UnsafePointer<
        ProtobufCMessageDescriptor
    > {
        let m = UnsafeMutablePointer<C>.allocate(capacity: 1)
        defer { m.deallocate() }
        initialize(m)
        return UnsafeMutableRawPointer(m).assumingMemoryBound(to: ProtobufCMessage.self).pointee.descriptor
    }

    /// Unpacks `bytes` as the message `descriptor` describes, converts it with `convert`, and frees
    /// the protobuf-c tree.
    package static func decode<C, S>(
        _ bytes: UnsafeRawBufferPointer,
        descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        as type: C.Type,
        convert: (UnsafeMutablePointer<C>) -> S
    ) throws(ProtoDecodingError) -> S {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let message = protobuf_c_message_unpack(descriptor, nil, bytes.count, base) else {
            throw ProtoDecodingError(message: "the bytes are not a valid protobuf encoding of \(String(cString: descriptor.pointee.name))")
        }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        return convert(UnsafeMutableRawPointer(message).assumingMemoryBound(to: C.self))
    }
}
