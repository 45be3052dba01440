import TowerRPC

/// The entries of a zip archive (PKWARE APPNOTE), enough to read .xlsx files: the central
/// directory, stored and deflated entries. Zip64 and encryption are refused.
struct ZipArchive: Sendable {
    struct Malformed: Error, Sendable, Hashable {
        var reason: String
    }

    struct Entry: Sendable, Hashable {
        var name: String
        var method: UInt16
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
    }

    let bytes: [UInt8]
    let entries: [String: Entry]

    init(_ bytes: [UInt8]) throws(Malformed) {
        self.bytes = bytes
        // The end-of-central-directory record: the last 22 bytes, unless a comment follows it.
        let minimum = 22
        guard bytes.count >= minimum else { throw Malformed(reason: "too short to be a zip archive") }
        var end = -1
        var i = bytes.count - minimum
        while i >= max(0, bytes.count - minimum - 65_535) {
            if Self.u32(bytes, i) == 0x0605_4B50 {
                end = i
                break
            }
            i -= 1
        }
        guard end >= 0 else { throw Malformed(reason: "no zip end-of-directory record (is this an .xlsx file?)") }
        let count = Int(Self.u16(bytes, end + 10))
        let directoryOffset = Int(Self.u32(bytes, end + 16))
        guard count != 0xFFFF, directoryOffset != 0xFFFF_FFFF else { throw Malformed(reason: "zip64 archives are not supported") }
        var entries: [String: Entry] = [:]
        var p = directoryOffset
        for _ in 0..<count {
            guard p + 46 <= bytes.count, Self.u32(bytes, p) == 0x0201_4B50 else { throw Malformed(reason: "a damaged zip directory") }
            let flags = Self.u16(bytes, p + 8)
            guard flags & 1 == 0 else { throw Malformed(reason: "encrypted zip entries are not supported") }
            let nameLength = Int(Self.u16(bytes, p + 28))
            let extraLength = Int(Self.u16(bytes, p + 30))
            let commentLength = Int(Self.u16(bytes, p + 32))
            guard p + 46 + nameLength <= bytes.count else { throw Malformed(reason: "a damaged zip directory") }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            entries[name] = Entry(
                name: name, method: Self.u16(bytes, p + 10), compressedSize: Int(Self.u32(bytes, p + 20)),
                uncompressedSize: Int(Self.u32(bytes, p + 24)), localHeaderOffset: Int(Self.u32(bytes, p + 42)))
            p += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }

    /// An entry's content, at most `limit` bytes once inflated.
    func contents(of name: String, limit: Int) throws(Malformed) -> [UInt8]? {
        guard let entry = entries[name] else { return nil }
        let p = entry.localHeaderOffset
        guard p + 30 <= bytes.count, Self.u32(bytes, p) == 0x0403_4B50 else { throw Malformed(reason: "a damaged zip entry: \(name)") }
        let start = p + 30 + Int(Self.u16(bytes, p + 26)) + Int(Self.u16(bytes, p + 28))
        guard start + entry.compressedSize <= bytes.count else { throw Malformed(reason: "a truncated zip entry: \(name)") }
        let data = Array(bytes[start..<(start + entry.compressedSize)])
        switch entry.method {
        case 0:
            guard data.count <= limit else { throw Malformed(reason: "\(name) is larger than \(limit / (1 << 20)) MiB") }
            return data
        case 8:
            do {
                return try Inflate.rawDeflate(data, limit: limit)
            } catch {
                throw Malformed(
                    reason: error.code == .resourceExhausted ? "\(name) is larger than \(limit / (1 << 20)) MiB" : "\(name) is corrupt")
            }
        default: throw Malformed(reason: "\(name) uses zip compression method \(entry.method); only stored and deflate are supported")
        }
    }

    static func u16(_ b: [UInt8], _ i: Int) -> UInt16 {
        guard i + 2 <= b.count else { return 0 }
        return UInt16(b[i]) | UInt16(b[i + 1]) << 8
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        guard i + 4 <= b.count else { return 0 }
        return UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
