/// Cleaning of the free-text fields of imported leads: names, states, counties.
public enum LeadFieldNormalizer {
    /// Trimmed, inner spaces collapsed, and cased like a name when the file shouted or whispered
    /// (`JOHN O'BRIEN` -> `John O'Brien`, `mary-jo mcdonald` -> `Mary-Jo McDonald`); mixed case is
    /// kept as typed.
    public static func name(_ raw: String) -> String {
        ASCIIText.isASCII(raw) ? asciiName(raw) : nameByCharacters(raw)
    }

    /// `name` for any text, by `Character`.
    static func nameByCharacters(_ raw: String) -> String {
        let collapsed = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        let letters = collapsed.filter(\.isLetter)
        guard !letters.isEmpty, letters == letters.uppercased() || letters == letters.lowercased() else { return collapsed }
        var out = ""
        var startOfWord = true
        for ch in collapsed.lowercased() {
            out.append(startOfWord ? Character(ch.uppercased()) : ch)
            startOfWord = ch == " " || ch == "-" || ch == "'" || ch == "."
            // Mc and Mac prefixes keep the next capital: McDonald.
            if out.hasSuffix(" Mc") || out == "Mc" || out.hasSuffix("-Mc") { startOfWord = true }
        }
        return out
    }

    /// `name` for ASCII text, byte by byte (same rules).
    static func asciiName(_ raw: String) -> String {
        let collapsed = ASCIIText.collapsed(raw) { $0 == 0x20 || $0 == 0x09 }
        var upper = false
        var lower = false
        for byte in collapsed.utf8 {
            if byte &- 0x41 < 26 { upper = true } else if byte &- 0x61 < 26 { lower = true }
        }
        guard upper != lower else { return collapsed }
        let utf8 = collapsed.utf8
        return String(unsafeUninitializedCapacity: utf8.count) { out in
            var count = 0
            var startOfWord = true
            for byte in utf8 {
                let ch = ASCIIText.lower(byte)
                out[count] = startOfWord ? ASCIIText.upper(ch) : ch
                count += 1
                startOfWord = ch == 0x20 || ch == 0x2D || ch == 0x27 || ch == 0x2E
                // Mc and Mac prefixes keep the next capital: McDonald.
                if count >= 2, out[count - 2] == UInt8(ascii: "M"), out[count - 1] == UInt8(ascii: "c"),
                    count == 2 || out[count - 3] == 0x20 || out[count - 3] == 0x2D
                {
                    startOfWord = true
                }
            }
            return count
        }
    }

    static let states: [String: String] = [
        "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
        "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "washington dc": "DC", "florida": "FL",
        "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
        "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI",
        "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
        "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
        "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI",
        "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
        "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
        "puerto rico": "PR", "guam": "GU", "us virgin islands": "VI", "virgin islands": "VI", "american samoa": "AS",
        "northern mariana islands": "MP",
    ]
    static let codes = Set(states.values)

    /// The USPS code for a state written as a code or a name (`tx`, `Texas`, `N. Carolina`), or nil.
    public static func stateCode(_ raw: String) -> String? {
        ASCIIText.isASCII(raw) ? asciiStateCode(raw) : stateCodeByCharacters(raw)
    }

    /// `stateCode` for any text, by `Character`.
    static func stateCodeByCharacters(_ raw: String) -> String? {
        let cleaned = raw.lowercased().replacingOccurrences(of: ".", with: "")
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        if cleaned.count == 2, codes.contains(cleaned.uppercased()) { return cleaned.uppercased() }
        if let code = states[cleaned] { return code }
        return states[expandingDirection(cleaned)]
    }

    /// Abbreviated directions: "n carolina", "w virginia".
    private static func expandingDirection(_ cleaned: String) -> String {
        for (short, long) in [("n ", "north "), ("s ", "south "), ("w ", "west ")] where cleaned.hasPrefix(short) {
            return long + cleaned.dropFirst(short.count)
        }
        return cleaned
    }

    /// `stateCode` for ASCII text: lower-cased, dots dropped and spaces collapsed in one pass.
    static func asciiStateCode(_ raw: String) -> String? {
        let utf8 = raw.utf8
        let cleaned = ASCIIText.rewritten(
            utf8, separator: { $0 == 0x20 || $0 == 0x09 }, dropping: { $0 == UInt8(ascii: ".") }, map: ASCIIText.lower)
        if cleaned.utf8.count == 2 {
            let code = cleaned.uppercased()
            if codes.contains(code) { return code }
        }
        if let code = states[cleaned] { return code }
        return states[expandingDirection(cleaned)]
    }

    /// `TRAVIS COUNTY` -> `Travis`, `st. landry parish` -> `St. Landry`: the suffix is implied by the state.
    public static func county(_ raw: String) -> String {
        let collapsed =
            ASCIIText.isASCII(raw)
            ? ASCIIText.collapsed(raw) { $0 == 0x20 || $0 == 0x09 }
            : raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        if let space = collapsed.utf8.lastIndex(of: 0x20) {
            let last = collapsed[collapsed.index(after: space)...].lowercased()
            if ["county", "parish", "borough", "co", "co."].contains(last) { return name(String(collapsed[..<space])) }
        }
        return name(collapsed)
    }
}
