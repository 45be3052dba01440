internal import CZlib

/// gzip through zlib. The z_stream lives in memory this type allocates and frees.
enum Gzip {
    static func compress(_ input: [UInt8]) throws(RPCError) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        guard ctower_deflate_init_gzip(stream, Z_DEFAULT_COMPRESSION) == Z_OK else {
            throw RPCError(.internal, "Could not start gzip compression.")
        }
        let bound = Int(deflateBound(stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        var mutableInput = input
        let status: Int32 = mutableInput.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.pointee.next_in = inputBuffer.baseAddress
                stream.pointee.avail_in = uInt(inputBuffer.count)
                stream.pointee.next_out = outputBuffer.baseAddress
                stream.pointee.avail_out = uInt(outputBuffer.count)
                return deflate(stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw RPCError(.internal, "gzip compression failed.") }
        output.removeLast(Int(stream.pointee.avail_out))
        return output
    }

    static func decompress(_ input: [UInt8], limit: Int, raw: Bool = false) throws(RPCError) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        guard (raw ? ctower_inflate_init_raw(stream) : ctower_inflate_init_gzip(stream)) == Z_OK else {
            throw RPCError(.internal, "Could not start gzip decompression.")
        }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 4096), 256 * 1024))
        var mutableInput = input
        var failure: RPCError?
        mutableInput.withUnsafeMutableBufferPointer { inputBuffer in
            stream.pointee.next_in = inputBuffer.baseAddress
            stream.pointee.avail_in = uInt(inputBuffer.count)
            while true {
                let (status, produced): (Int32, Int) = chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                    stream.pointee.next_out = chunkBuffer.baseAddress
                    stream.pointee.avail_out = uInt(chunkBuffer.count)
                    let status = inflate(stream, Z_NO_FLUSH)
                    return (status, chunkBuffer.count - Int(stream.pointee.avail_out))
                }
                if output.count + produced > limit {
                    failure = RPCError(
                        .resourceExhausted, "Decompressed message is larger than the limit of \(limit) bytes.")
                    return
                }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END { return }
                if status != Z_OK || (produced == 0 && stream.pointee.avail_in == 0) {
                    failure = RPCError(.internal, "Could not decompress a gzip message.")
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}

/// Inflate for callers outside the RPC layer (zip archives), through the same zlib wrapper.
public enum Inflate {
    /// Decompresses raw deflate data (RFC 1951, no zlib or gzip framing), refusing output larger
    /// than `limit` bytes with RESOURCE_EXHAUSTED and corrupt input with INTERNAL.
    public static func rawDeflate(_ input: [UInt8], limit: Int) throws(RPCError) -> [UInt8] {
        try Gzip.decompress(input, limit: limit, raw: true)
    }
}
