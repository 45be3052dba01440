/// The rows of the first worksheet of an .xlsx workbook (Office Open XML SpreadsheetML), as text
/// cells the importer treats like CSV rows: shared and inline strings, numbers (whole numbers
/// written in exponent form, as spreadsheets store long phone numbers, become plain digits),
/// booleans. Formulas give their cached value; styles and dates' formats are not applied.
enum XLSXSheetReader {
    struct Malformed: Error, Sendable, Hashable {
        var reason: String
    }

    static let entryLimit = 256 << 20

    static func rows(_ file: [UInt8]) throws(Malformed) -> [[String]] {
        let zip: ZipArchive
        do {
            zip = try ZipArchive(file)
        } catch {
            throw Malformed(reason: error.reason)
        }
        func entry(_ name: String) throws(Malformed) -> [UInt8]? {
            do {
                return try zip.contents(of: name, limit: entryLimit)
            } catch {
                throw Malformed(reason: error.reason)
            }
        }
        var sheetPath: String?
        if let workbook = try entry("xl/workbook.xml") {
            sheetPath = firstSheetPath(workbook: workbook, relationships: try entry("xl/_rels/workbook.xml.rels"))
        }
        guard let sheet = try entry(sheetPath ?? "xl/worksheets/sheet1.xml") else {
            throw Malformed(reason: "the workbook has no worksheet (is this an .xlsx file?)")
        }
        let shared = try entry("xl/sharedStrings.xml").map(sharedStrings) ?? []
        return cells(sheet: sheet, shared: shared)
    }

    /// The first `<sheet>` of the workbook, through its relationship id.
    static func firstSheetPath(workbook: [UInt8], relationships: [UInt8]?) -> String? {
        var relationshipID: String?
        XMLScanner.scan(workbook) { event in
            if relationshipID == nil, case .start("sheet", let attributes, _) = event { relationshipID = attributes["id"] }
        }
        guard let relationshipID, let relationships else { return nil }
        var target: String?
        XMLScanner.scan(relationships) { event in
            if case .start("Relationship", let attributes, _) = event, attributes["Id"] == relationshipID { target = attributes["Target"] }
        }
        guard let target else { return nil }
        return target.hasPrefix("/") ? String(target.dropFirst()) : "xl/" + target
    }

    /// `<si>` items in order; the text of their `<t>` runs, without phonetic guides (`<rPh>`).
    static func sharedStrings(_ xml: [UInt8]) -> [String] {
        var strings: [String] = []
        var current = ""
        var inItem = false, inText = false, inPhonetic = false
        XMLScanner.scan(xml) { event in
            switch event {
            case .start("si", _, let closed):
                inItem = !closed
                current = ""
                if closed { strings.append("") }
            case .end("si"):
                strings.append(current)
                inItem = false
            case .start("rPh", _, let closed): inPhonetic = !closed
            case .end("rPh"): inPhonetic = false
            case .start("t", _, let closed): inText = !closed
            case .end("t"): inText = false
            case .text(let text) where inItem && inText && !inPhonetic: current += text
            default: break
            }
        }
        return strings
    }

    static func cells(sheet: [UInt8], shared: [String]) -> [[String]] {
        var rows: [[String]] = []
        var row: [String]?
        var column = 0
        var type = ""
        var value = ""
        var inValue = false, inInline = false, inText = false
        XMLScanner.scan(sheet) { event in
            switch event {
            case .start("row", _, let closed):
                row = []
                if closed {
                    rows.append([])
                    row = nil
                }
            case .end("row"):
                if let row { rows.append(row) }
                row = nil
            case .start("c", let attributes, let closed):
                column = attributes["r"].flatMap(columnIndex) ?? (row?.count ?? 0)
                type = attributes["t"] ?? ""
                value = ""
                if closed { place("") }
            case .end("c"): place(cellText(type: type, value: value, shared: shared))
            case .start("v", _, let closed): inValue = !closed
            case .end("v"): inValue = false
            case .start("is", _, let closed): inInline = !closed
            case .end("is"): inInline = false
            case .start("t", _, let closed): inText = !closed
            case .end("t"): inText = false
            case .text(let text) where inValue || (inInline && inText): value += text
            default: break
            }
        }
        func place(_ text: String) {
            guard row != nil else { return }
            while row!.count < column { row!.append("") }
            if row!.count == column { row!.append(text) } else { row![column] = text }
        }
        return rows
    }

    static func cellText(type: String, value: String, shared: [String]) -> String {
        switch type {
        case "s": return Int(value).flatMap { shared.indices.contains($0) ? shared[$0] : nil } ?? ""
        case "b": return value == "1" ? "TRUE" : value == "0" ? "FALSE" : value
        case "inlineStr", "str", "e": return value
        default:
            // 5.128675309E9 -> 5128675309.
            if value.contains(where: { $0 == "E" || $0 == "e" }), let number = Double(value), number == number.rounded(),
                abs(number) < 1e15
            {
                return String(Int64(number))
            }
            return value
        }
    }

    /// "B7" -> 1 (zero-based column).
    static func columnIndex(_ reference: String) -> Int? {
        var index = 0
        var letters = 0
        for scalar in reference.unicodeScalars {
            guard ("A"..."Z").contains(scalar) else { break }
            index = index * 26 + Int(scalar.value - 64)
            letters += 1
        }
        return letters == 0 ? nil : index - 1
    }
}

/// A forgiving XML event scanner for the flat, machine-written XML of spreadsheets: tags with
/// their attributes (namespace prefixes dropped), text with entities decoded; declarations,
/// comments and processing instructions skipped, CDATA kept as text.
enum XMLScanner {
    enum Event: Sendable, Hashable {
        case start(String, [String: String], closed: Bool)
        case end(String)
        case text(String)
    }

    static func scan(_ xml: [UInt8], _ handle: (Event) -> Void) {
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">")
        var i = 0
        let n = xml.count
        while i < n {
            if xml[i] != lt {
                var j = i
                while j < n, xml[j] != lt { j += 1 }
                handle(.text(decodeEntities(xml[i..<j])))
                i = j
                continue
            }
            if starts(xml, i, "<!--") {
                i = find(xml, from: i + 4, "-->").map { $0 + 3 } ?? n
                continue
            }
            if starts(xml, i, "<![CDATA[") {
                let close = find(xml, from: i + 9, "]]>") ?? n
                handle(.text(String(decoding: xml[(i + 9)..<close], as: UTF8.self)))
                i = min(n, close + 3)
                continue
            }
            var j = i + 1
            var quote: UInt8 = 0
            while j < n {
                let b = xml[j]
                if quote != 0 {
                    if b == quote { quote = 0 }
                } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                    quote = b
                } else if b == gt {
                    break
                }
                j += 1
            }
            let tag = xml[(i + 1)..<min(j, n)]
            i = j + 1
            guard let first = tag.first, first != UInt8(ascii: "?"), first != UInt8(ascii: "!") else { continue }
            if first == UInt8(ascii: "/") {
                handle(.end(localName(String(decoding: tag.dropFirst(), as: UTF8.self).trimmingWhitespace())))
                continue
            }
            let closed = tag.last == UInt8(ascii: "/")
            let body = closed ? tag.dropLast() : tag
            let (name, attributes) = parseTag(body)
            handle(.start(name, attributes, closed: closed))
            if closed { handle(.end(name)) }
        }
    }

    static func parseTag(_ body: ArraySlice<UInt8>) -> (String, [String: String]) {
        var attributes: [String: String] = [:]
        var i = body.startIndex
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while i < body.endIndex, !isSpace(body[i]) { i += 1 }
        let name = localName(String(decoding: body[body.startIndex..<i], as: UTF8.self))
        while i < body.endIndex {
            while i < body.endIndex, isSpace(body[i]) { i += 1 }
            let keyStart = i
            while i < body.endIndex, body[i] != UInt8(ascii: "="), !isSpace(body[i]) { i += 1 }
            let key = localName(String(decoding: body[keyStart..<i], as: UTF8.self))
            while i < body.endIndex, body[i] != UInt8(ascii: "\""), body[i] != UInt8(ascii: "'") { i += 1 }
            guard i < body.endIndex else { break }
            let quote = body[i]
            i += 1
            let valueStart = i
            while i < body.endIndex, body[i] != quote { i += 1 }
            if !key.isEmpty { attributes[key] = decodeEntities(body[valueStart..<min(i, body.endIndex)]) }
            i += 1
        }
        return (name, attributes)
    }

    static func localName(_ name: String) -> String {
        name.split(separator: ":").last.map(String.init) ?? name
    }

    static func starts(_ xml: [UInt8], _ i: Int, _ prefix: String) -> Bool {
        let p = Array(prefix.utf8)
        return i + p.count <= xml.count && Array(xml[i..<(i + p.count)]) == p
    }

    static func find(_ xml: [UInt8], from: Int, _ needle: String) -> Int? {
        let p = Array(needle.utf8)
        var i = from
        while i + p.count <= xml.count {
            if xml[i] == p[0], Array(xml[i..<(i + p.count)]) == p { return i }
            i += 1
        }
        return nil
    }

    static func decodeEntities(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 10 else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number =
                    entity.hasPrefix("#x")
                    ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += "&\(entity);" }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
