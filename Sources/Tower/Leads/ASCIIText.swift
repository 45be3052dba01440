/// Byte-level helpers behind the import normalisers' fast path. Lead files are overwhelmingly
/// ASCII; for such text these do in one pass over the UTF-8 bytes what `Character`-level code
/// does with grapheme breaking and intermediate strings. Callers keep a `Character` path for
/// text with any non-ASCII byte, so results never differ.
enum ASCIIText {
    /// Space, tab, LF, VT, FF, CR: the ASCII characters `Character.isWhitespace` accepts.
    @inline(__always)
    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

    @inline(__always)
    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- 0x61 < 26 }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    @inline(__always)
    static func upper(_ byte: UInt8) -> UInt8 { byte &- 0x61 < 26 ? byte & ~0x20 : byte }

    /// Whether every byte is ASCII.
    static func isASCII(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            // Eight bytes at a time: no byte may have its high bit set.
            var index = 0
            var any: UInt64 = 0
            let base = UnsafeRawPointer(bytes.baseAddress)
            while index + 8 <= bytes.count {
                any |= base!.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < bytes.count {
                any |= UInt64(bytes[index])
                index += 1
            }
            return any & 0x8080_8080_8080_8080 == 0
        } ?? text.utf8.allSatisfy { $0 < 0x80 }
    }

    /// `text` with runs of the bytes `isSeparator` accepts turned into one space and none at
    /// either end. Returns `text` itself when there is nothing to change.
    static func collapsed(_ text: String, separator isSeparator: (UInt8) -> Bool) -> String {
        let utf8 = text.utf8
        var clean = true
        var previousSpace = true
        for byte in utf8 {
            if isSeparator(byte) {
                if previousSpace || byte != 0x20 {
                    clean = false
                    break
                }
                previousSpace = true
            } else {
                previousSpace = false
            }
        }
        if clean && !previousSpace { return text }
        if clean && utf8.isEmpty { return text }
        return rewritten(utf8, separator: isSeparator)
    }

    /// One pass over `utf8`: bytes `dropping` accepts are left out, runs of bytes `isSeparator`
    /// accepts become one space (none at either end), and every other byte goes through `map`.
    @inline(__always)
    static func rewritten(
        _ utf8: String.UTF8View, separator isSeparator: (UInt8) -> Bool, dropping: (UInt8) -> Bool = { _ in false },
        map: (UInt8) -> UInt8 = { $0 }
    ) -> String {
        String(unsafeUninitializedCapacity: utf8.count) { out in
            var count = 0
            var pendingSpace = false
            for byte in utf8 where !dropping(byte) {
                if isSeparator(byte) {
                    pendingSpace = count > 0
                } else {
                    if pendingSpace {
                        out[count] = 0x20
                        count += 1
                        pendingSpace = false
                    }
                    out[count] = map(byte)
                    count += 1
                }
            }
            return count
        }
    }

    /// `text` without ASCII whitespace at either end (inner text untouched).
    static func trimmed(_ text: String) -> Substring {
        let utf8 = text.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, isSpace(utf8[start]) { start = utf8.index(after: start) }
        while end > start, isSpace(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
        return Substring(utf8[start..<end])
    }
}
