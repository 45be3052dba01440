/// Base64 (RFC 4648) without Foundation: gRPC `-bin` metadata, proto3 JSON bytes.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        t[Int(UInt8(ascii: "-"))] = 62
        t[Int(UInt8(ascii: "_"))] = 63
        return t
    }()

    /// Encodes `bytes`; `padded: false` omits trailing `=` (gRPC emits unpadded `-bin` values).
    public static func encode<C: Collection>(_ bytes: C, padded: Bool = true, urlSafe: Bool = false) -> String where C.Element == UInt8 {
        let table = urlSafe ? urlAlphabet : alphabet
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var it = bytes.makeIterator()
        while let b0 = it.next() {
            let b1 = it.next()
            let b2 = it.next()
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            if let b1 {
                out.append(table[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            } else if padded {
                out.append(UInt8(ascii: "="))
            }
            if let b2 {
                out.append(table[Int(b2 & 0x3F)])
            } else if padded {
                out.append(UInt8(ascii: "="))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64, padded or not, ignoring surrounding spaces and tabs;
    /// nil when the text is not base64.
    public static func decode(_ text: String) -> [UInt8]? { decode(Substring(text).utf8[...]) }

    /// The same, over any slice of UTF-8 (e.g. one comma-separated part of a header value).
    public static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) -> [UInt8]? {
        var start = text.startIndex
        var end = text.endIndex
        func isSpace(_ c: UInt8) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }
        while start < end, isSpace(text[start]) { start = text.index(after: start) }
        while start < end {
            let last = text.index(start, offsetBy: text.distance(from: start, to: end) - 1)
            guard isSpace(text[last]) else { break }
            end = last
        }
        var values: [UInt8] = []
        values.reserveCapacity(text.distance(from: start, to: end))
        var sawPadding = false
        for c in text[start..<end] {
            if c == UInt8(ascii: "=") {
                sawPadding = true
                continue
            }
            if sawPadding { return nil }
            let v = decodeTable[Int(c)]
            if v == 0xFF { return nil }
            values.append(v)
        }
        if values.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i + 4 <= values.count {
            out.append(values[i] << 2 | values[i + 1] >> 4)
            out.append(values[i + 1] << 4 | values[i + 2] >> 2)
            out.append(values[i + 2] << 6 | values[i + 3])
            i += 4
        }
        let rest = values.count - i
        if rest >= 2 { out.append(values[i] << 2 | values[i + 1] >> 4) }
        if rest == 3 { out.append(values[i + 1] << 4 | values[i + 2] >> 2) }
        return out
    }
}
