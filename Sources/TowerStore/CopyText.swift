/// PostgreSQL's COPY text format: tab-separated columns, `\N` for NULL, backslash escapes.
public enum CopyText {
    /// Appends one row, escaping tabs, newlines, carriage returns and backslashes.
    public static func appendRow(_ values: [String?], to buffer: inout [UInt8]) {
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: "\t")) }
            guard let value else {
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(UInt8(ascii: "N"))
                continue
            }
            let utf8 = value.utf8
            // Most values need no escape: copy them whole.
            if !utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x0E && ($0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) {
                buffer.append(contentsOf: utf8)
                continue
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case UInt8(ascii: "\t"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case UInt8(ascii: "\n"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case UInt8(ascii: "\r"): buffer += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                default: buffer.append(byte)
                }
            }
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Splits COPY text output into rows of values (nil is NULL).
    public static func parseRows(_ bytes: [UInt8]) -> [[String?]] {
        var rows: [[String?]] = []
        var row: [String?] = []
        var field: [UInt8] = []
        var isNull = false
        var index = 0
        func finishField() {
            row.append(isNull ? nil : String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            isNull = false
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\t"):
                finishField()
            case UInt8(ascii: "\n"):
                finishField()
                rows.append(row)
                row = []
            case UInt8(ascii: "\\") where index + 1 < bytes.count:
                index += 1
                switch bytes[index] {
                case UInt8(ascii: "N"): isNull = true
                case UInt8(ascii: "t"): field.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "n"): field.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "r"): field.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "b"): field.append(8)
                case UInt8(ascii: "f"): field.append(12)
                case UInt8(ascii: "v"): field.append(11)
                default: field.append(bytes[index])
                }
            default:
                field.append(byte)
            }
            index += 1
        }
        if !field.isEmpty || !row.isEmpty {
            finishField()
            rows.append(row)
        }
        return rows
    }
}
