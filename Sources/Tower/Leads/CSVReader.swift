/// An incremental RFC 4180 reader: bytes go in as they arrive (split anywhere, even inside a
/// quoted field or a multi-byte character), whole rows come out.
///
/// Quoted fields may hold commas, doubled quotes and line breaks; rows end in CRLF, LF or a lone
/// CR; a UTF-8 byte-order mark at the very start is skipped. It is lenient where files in the
/// wild are sloppy (a quote inside an unquoted field is kept as a character, text after a closing
/// quote is appended) and strict about memory: one row may hold at most `maxRowBytes`, so an
/// unclosed quote cannot make it buffer a whole upload.
public struct CSVReader: Sendable {
    public struct RowTooLong: Error, Sendable, Hashable {
        /// 1-based number of the row (counting the header row as 1) that grew too long.
        public var row: Int
        public var limit: Int
    }

    private enum State: Sendable {
        case fieldStart, unquoted, quoted, quoteInQuoted, afterCR
    }

    public let maxRowBytes: Int
    private var state = State.fieldStart
    private var field: [UInt8] = []
    private var row: [String] = []
    private var rowBytes = 0
    private var bomBytesSeen = 0
    private var started = false
    /// Rows emitted so far.
    public private(set) var rowsRead = 0

    public init(maxRowBytes: Int = 1 << 20) {
        self.maxRowBytes = maxRowBytes
    }

    private static let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Reads `bytes`, calling `emit` with each row it completes.
    public mutating func feed(_ bytes: [UInt8], _ emit: ([String]) throws -> Void) throws {
        var index = 0
        // The byte-order mark may arrive split across chunks.
        while !started, index < bytes.count {
            if bytes[index] == Self.bom[bomBytesSeen] {
                bomBytesSeen += 1
                index += 1
                if bomBytesSeen == 3 { started = true }
            } else {
                started = true
                // A partial mark was ordinary data after all.
                let partial = Array(Self.bom[0..<bomBytesSeen])
                bomBytesSeen = 0
                try consume(partial, from: 0, emit)
            }
        }
        try consume(bytes, from: index, emit)
    }

    /// Ends the input: emits the last row if the file did not end with a line break.
    public mutating func finish(_ emit: ([String]) throws -> Void) throws {
        if !started, bomBytesSeen > 0 {
            started = true
            let partial = Array(Self.bom[0..<bomBytesSeen])
            try consume(partial, from: 0, emit)
        }
        switch state {
        case .fieldStart where row.isEmpty, .afterCR:
            break
        default:
            try endRow(emit)
        }
        state = .fieldStart
    }

    private mutating func consume(_ bytes: [UInt8], from start: Int, _ emit: ([String]) throws -> Void) throws {
        try bytes.withUnsafeBufferPointer { bytes in
            var index = start
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch state {
                case .afterCR:
                    state = .fieldStart
                    if byte == Self.lf { continue }
                    fallthrough
                case .fieldStart:
                    if byte == Self.quote {
                        state = .quoted
                    } else if try !endsField(at: byte, emit) {
                        // The rest of a plain field in one step.
                        let end = Self.nextSpecial(bytes, from: index, quoted: false)
                        try append(bytes, index - 1..<end)
                        index = end
                        state = .unquoted
                    }
                case .unquoted:
                    if try !endsField(at: byte, emit) {
                        let end = Self.nextSpecial(bytes, from: index, quoted: false)
                        try append(bytes, index - 1..<end)
                        index = end
                    }
                case .quoted:
                    if byte == Self.quote {
                        state = .quoteInQuoted
                    } else {
                        let end = Self.nextSpecial(bytes, from: index, quoted: true)
                        try append(bytes, index - 1..<end)
                        index = end
                    }
                case .quoteInQuoted:
                    if byte == Self.quote {
                        // A doubled quote is one quote character.
                        try append(bytes, index - 1..<index)
                        state = .quoted
                    } else if try !endsField(at: byte, emit) {
                        // Text after a closing quote is kept.
                        try append(bytes, index - 1..<index)
                        state = .unquoted
                    }
                }
            }
        }
    }

    /// Ends the field at a comma, or the row at a line break, outside quotes, and moves the state
    /// on; false for any other byte.
    @inline(__always)
    private mutating func endsField(at byte: UInt8, _ emit: ([String]) throws -> Void) throws -> Bool {
        switch byte {
        case Self.comma:
            endField()
            state = .fieldStart
        case Self.cr:
            try endRow(emit)
            state = .afterCR
        case Self.lf:
            try endRow(emit)
            state = .fieldStart
        default:
            return false
        }
        return true
    }

    /// The index of the next byte that ends a run of field text: a quote inside quotes; a comma
    /// or line break outside them.
    @inline(__always)
    private static func nextSpecial(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, quoted: Bool) -> Int {
        var index = start
        if quoted {
            while index < bytes.count, bytes[index] != quote { index += 1 }
        } else {
            while index < bytes.count {
                let byte = bytes[index]
                if byte == comma || byte == lf || byte == cr { break }
                index += 1
            }
        }
        return index
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws {
        rowBytes += range.count
        if rowBytes > maxRowBytes { throw RowTooLong(row: rowsRead + 1, limit: maxRowBytes) }
        field.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[range]))
    }

    private mutating func endField() {
        row.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
    }

    private mutating func endRow(_ emit: ([String]) throws -> Void) throws {
        endField()
        let completed = row
        row.removeAll(keepingCapacity: true)
        rowBytes = 0
        rowsRead += 1
        try emit(completed)
    }
}
