extension QuietHours {
    /// The IANA zones a place may be in, from its state and (when known) its county.
    ///
    /// A county listed as an exception (the Florida panhandle is Central, El Paso is Mountain)
    /// gives its own zones. In a state whose exceptions are listed completely, any other county is
    /// in the state's main zone. Otherwise — no county, or a split state whose counties are not
    /// all listed (Kentucky, Tennessee) — every zone the state spans, so the window holds
    /// wherever in the state the recipient is. nil for an unknown state code.
    public static func zones(forState code: String, county: String?) -> [String]? {
        let state = code.uppercased()
        guard let all = stateZones[state] else { return nil }
        guard all.count > 1, let county, !county.isEmpty else { return all }
        let key = countyKey(county)
        if let zones = countyZoneExceptions[state]?[key] { return zones }
        return countyExceptionsAreComplete.contains(state) ? [all[0]] : all
    }

    /// "La Porte", "LaPorte" and "LAPORTE COUNTY" name the same county.
    static func countyKey(_ county: String) -> String {
        var name = county.lowercased()
        for suffix in [" county", " parish", " borough", " census area"] where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
        }
        return String(name.unicodeScalars.filter { $0.properties.isAlphabetic }.map(Character.init))
    }

    /// States whose every county outside the state's main zone (the first of `stateZones`) is
    /// listed in `countyZoneExceptions`.
    static let countyExceptionsAreComplete: Set<String> = ["AK", "FL", "ID", "IN", "KS", "MI", "ND", "NE", "OR", "SD", "TX"]

    /// Counties not (only) in their state's main zone. Counties split by a zone line list both.
    static let countyZoneExceptions: [String: [String: [String]]] = {
        let central = ["America/Chicago"]
        let mountain = ["America/Denver"]
        let centralAndMountain = ["America/Chicago", "America/Denver"]
        func table(_ groups: [([String], [String])]) -> [String: [String]] {
            var out: [String: [String]] = [:]
            for (counties, zones) in groups { for county in counties { out[countyKey(county)] = zones } }
            return out
        }
        return [
            "AK": table([(["Aleutians West"], ["America/Adak"])]),
            "FL": table([
                (["Escambia", "Santa Rosa", "Okaloosa", "Walton", "Holmes", "Washington", "Bay", "Jackson", "Calhoun"], central),
                (["Gulf"], ["America/Chicago", "America/New_York"]),
            ]),
            "ID": table([
                (
                    ["Benewah", "Bonner", "Boundary", "Clearwater", "Kootenai", "Latah", "Lewis", "Nez Perce", "Shoshone"],
                    ["America/Los_Angeles"]
                ),
                (["Idaho"], ["America/Boise", "America/Los_Angeles"]),
            ]),
            "IN": table([
                (
                    [
                        "Lake", "Porter", "La Porte", "Newton", "Jasper", "Starke", "Gibson", "Posey", "Vanderburgh", "Warrick", "Spencer",
                        "Perry",
                    ], central
                )
            ]),
            "KS": table([(["Sherman", "Wallace", "Greeley", "Hamilton"], mountain)]),
            "MI": table([(["Gogebic", "Iron", "Dickinson", "Menominee"], ["America/Menominee"])]),
            "ND": table([
                (["Adams", "Billings", "Bowman", "Golden Valley", "Grant", "Hettinger", "Slope", "Stark"], mountain),
                (["Dunn", "McKenzie", "Sioux"], centralAndMountain),
            ]),
            "NE": table([
                (
                    [
                        "Arthur", "Banner", "Box Butte", "Chase", "Cheyenne", "Dawes", "Deuel", "Dundy", "Garden", "Grant", "Hooker",
                        "Keith",
                        "Kimball", "Morrill", "Perkins", "Scotts Bluff", "Sheridan", "Sioux",
                    ], mountain
                ),
                (["Cherry"], centralAndMountain),
            ]),
            "OR": table([(["Malheur"], ["America/Boise"])]),
            "SD": table([
                (
                    [
                        "Bennett", "Butte", "Corson", "Custer", "Dewey", "Fall River", "Haakon", "Harding", "Jackson", "Lawrence", "Meade",
                        "Oglala Lakota", "Pennington", "Perkins", "Ziebach",
                    ], mountain
                )
            ]),
            "TX": table([(["El Paso", "Hudspeth"], mountain), (["Culberson"], centralAndMountain)]),
        ]
    }()
}
