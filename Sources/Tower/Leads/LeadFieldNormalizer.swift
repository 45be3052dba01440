/// Cleaning of the free-text fields of imported leads: names, states, counties.
public enum LeadFieldNormalizer {
    /// Trimmed, inner spaces collapsed, and cased like a name when the file shouted or whispered
    /// (`JOHN O'BRIEN` -> `John O'Brien`, `mary-jo mcdonald` -> `Mary-Jo McDonald`); mixed case is
    /// kept as typed.
    public static func name(_ raw: String) -> String {
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
        let cleaned = raw.lowercased().replacingOccurrences(of: ".", with: "")
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        if cleaned.count == 2, codes.contains(cleaned.uppercased()) { return cleaned.uppercased() }
        if let code = states[cleaned] { return code }
        // Abbreviated directions: "n carolina", "w virginia".
        let expanded = cleaned.replacingOccurrences(of: "^n ", with: "north ", options: .regularExpression)
            .replacingOccurrences(of: "^s ", with: "south ", options: .regularExpression)
            .replacingOccurrences(of: "^w ", with: "west ", options: .regularExpression)
        return states[expanded]
    }

    /// `TRAVIS COUNTY` -> `Travis`, `st. landry parish` -> `St. Landry`: the suffix is implied by the state.
    public static func county(_ raw: String) -> String {
        var words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if let last = words.last?.lowercased(), ["county", "parish", "borough", "co", "co."].contains(last), words.count > 1 {
            words.removeLast()
        }
        return name(words.joined(separator: " "))
    }
}
