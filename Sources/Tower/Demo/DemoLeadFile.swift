import Foundation

/// A generated landowner lead file as a county-records vendor would sell it: the usual header
/// names, phones in every format people type, some numbers that can never take a text, blank
/// cells, stray whitespace and mixed case, and owners listed twice. Deterministic from a seed, so
/// `ctower demo` and the benchmarks can state exact expectations.
public struct DemoLeadFile: Sendable {
    public var rows: Int
    public var seed: UInt64
    /// Share of rows that repeat an earlier owner (same person, phone typed differently).
    public var duplicateRate = 0.04
    /// Share of phone cells holding something that is not a textable US number.
    public var invalidPhoneRate = 0.06

    public init(rows: Int, seed: UInt64 = 2026) {
        self.rows = rows
        self.seed = seed
    }

    public static let header = [
        "Owner First Name", "Owner Last Name", "Mailing Address", "Mailing City", "Mailing State", "Mailing Zip",
        "Property County", "Property State", "APN", "Lot Acres", "Phone 1", "Phone 2", "Phone 3",
    ]

    /// The whole file as CSV text (RFC 4180, CRLF line ends).
    public func csv() -> String {
        var out = ""
        write { out += $0 }
        return out
    }

    /// Streams the file line by line (each chunk ends with CRLF), for files too large to hold.
    public func write(_ emit: (String) -> Void) {
        emit(Self.header.map(Self.quoted).joined(separator: ",") + "\r\n")
        var random = SplitMix64(seed: seed)
        var owners: [Owner] = []
        owners.reserveCapacity(min(rows, 50_000))
        for _ in 0..<rows {
            let owner: Owner
            if !owners.isEmpty, random.unit() < duplicateRate {
                // The same owner again, as a second vendor would list them.
                var again = owners[random.below(owners.count)]
                again.firstName = random.unit() < 0.5 ? again.firstName.uppercased() : " \(again.firstName) "
                owner = again
            } else {
                owner = Owner.random(using: &random)
                if owners.count < 50_000 { owners.append(owner) }
            }
            var phones: [String] = []
            for (index, digits) in owner.phones.enumerated() {
                if random.unit() < invalidPhoneRate {
                    phones.append(Self.invalidPhones[random.below(Self.invalidPhones.count)])
                } else {
                    phones.append(Self.formatted(digits, style: random.below(6) + index))
                }
            }
            while phones.count < 3 { phones.append("") }
            let cells = [
                owner.firstName, owner.lastName, owner.mailingAddress, owner.mailingCity, owner.mailingState, owner.mailingZip,
                owner.county, owner.propertyState, owner.apn, owner.acres, phones[0], phones[1], phones[2],
            ]
            emit(cells.map(Self.quoted).joined(separator: ",") + "\r\n")
        }
    }

    static func quoted(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Ten digits typed the way lead files type them.
    static func formatted(_ d: String, style: Int) -> String {
        let a = d.prefix(3), b = d.dropFirst(3).prefix(3), c = d.suffix(4)
        switch style % 6 {
        case 0: return "(\(a)) \(b)-\(c)"
        case 1: return "\(a)-\(b)-\(c)"
        case 2: return "\(a).\(b).\(c)"
        case 3: return "+1 \(a) \(b) \(c)"
        case 4: return "1\(d)"
        default: return d
        }
    }

    /// Cells that look like phones but cannot take a text: too short, N11, fiction, toll-free.
    static let invalidPhones = ["867-5309", "(911) 234-5678", "512-555-0142", "1-800-426-9400", "N/A", "0", "512 0123 456"]

    struct Owner {
        var firstName: String
        var lastName: String
        var mailingAddress: String
        var mailingCity: String
        var mailingState: String
        var mailingZip: String
        var county: String
        var propertyState: String
        var apn: String
        var acres: String
        var phones: [String]

        static func random(using random: inout SplitMix64) -> Owner {
            let place = DemoLeadFile.places[random.below(DemoLeadFile.places.count)]
            // Absentee owners: a third live in another state than their land.
            let home = random.unit() < 0.33 ? DemoLeadFile.places[random.below(DemoLeadFile.places.count)] : place
            let street = DemoLeadFile.streets[random.below(DemoLeadFile.streets.count)]
            let phoneCount = [1, 1, 1, 2, 2, 3][random.below(6)]
            var phones: [String] = []
            for _ in 0..<phoneCount {
                let areaCode = place.areaCodes[random.below(place.areaCodes.count)]
                // Exchange 2xx-9xx, never 555 or an N11.
                var exchange = 200 + random.below(800)
                if exchange == 555 || exchange % 100 == 11 { exchange += 1 }
                phones.append("\(areaCode)\(exchange)\(String(format: "%04d", random.below(10_000)))")
            }
            let first = DemoLeadFile.firstNames[random.below(DemoLeadFile.firstNames.count)]
            return Owner(
                firstName: random.unit() < 0.1 ? first.lowercased() : first,
                lastName: DemoLeadFile.lastNames[random.below(DemoLeadFile.lastNames.count)],
                mailingAddress: "\(100 + random.below(9_800)) \(street)",
                mailingCity: home.city,
                mailingState: random.unit() < 0.15 ? home.state.lowercased() : home.state,
                mailingZip: home.zip,
                county: random.unit() < 0.2 ? place.county.uppercased() + " COUNTY" : place.county,
                propertyState: place.state,
                apn:
                    "\(random.below(900) + 100)-\(String(format: "%03d", random.below(1000)))-\(String(format: "%03d", random.below(1000)))",
                acres: String(format: "%.2f", 0.5 + Double(random.below(4_000)) / 100),
                phones: phones)
        }
    }

    struct Place {
        var county: String
        var state: String
        var city: String
        var zip: String
        var areaCodes: [String]
    }

    static let places: [Place] = [
        Place(county: "Bastrop", state: "TX", city: "Bastrop", zip: "78602", areaCodes: ["512", "737"]),
        Place(county: "Hudspeth", state: "TX", city: "Sierra Blanca", zip: "79851", areaCodes: ["915"]),
        Place(county: "Brewster", state: "TX", city: "Alpine", zip: "79830", areaCodes: ["432"]),
        Place(county: "Polk", state: "FL", city: "Lakeland", zip: "33801", areaCodes: ["863"]),
        Place(county: "Putnam", state: "FL", city: "Palatka", zip: "32177", areaCodes: ["386"]),
        Place(county: "Walton", state: "FL", city: "DeFuniak Springs", zip: "32433", areaCodes: ["850"]),
        Place(county: "Mohave", state: "AZ", city: "Kingman", zip: "86401", areaCodes: ["928"]),
        Place(county: "Navajo", state: "AZ", city: "Show Low", zip: "85901", areaCodes: ["928"]),
        Place(county: "Valencia", state: "NM", city: "Los Lunas", zip: "87031", areaCodes: ["505"]),
        Place(county: "Costilla", state: "CO", city: "San Luis", zip: "81152", areaCodes: ["719"]),
        Place(county: "Park", state: "CO", city: "Fairplay", zip: "80440", areaCodes: ["719"]),
        Place(county: "Cumberland", state: "TN", city: "Crossville", zip: "38555", areaCodes: ["931"]),
        Place(county: "Brunswick", state: "NC", city: "Bolivia", zip: "28422", areaCodes: ["910"]),
        Place(county: "Wayne", state: "GA", city: "Jesup", zip: "31545", areaCodes: ["912"]),
        Place(county: "Pushmataha", state: "OK", city: "Antlers", zip: "74523", areaCodes: ["580"]),
        Place(county: "Garrett", state: "MD", city: "Oakland", zip: "21550", areaCodes: ["301", "240"]),
        Place(county: "Lake", state: "CA", city: "Clearlake", zip: "95422", areaCodes: ["707"]),
        Place(county: "Elko", state: "NV", city: "Elko", zip: "89801", areaCodes: ["775"]),
    ]

    static let firstNames = [
        "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
        "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Karen", "Charles", "Sarah", "José", "María",
        "Juan", "Guadalupe", "Carlos", "Rosa", "Luis", "Ana", "Dolores", "Earl", "Wanda", "Harold", "Loretta",
    ]

    static let lastNames = [
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "O'Neal",
        "McAllister", "De la Cruz",
    ]

    static let streets = [
        "County Road 210", "Ranch Road 12", "Old Mill Rd", "Pecan St", "Oak Hollow Dr", "E Main St", "Cedar Ln",
        "State Hwy 71", "Mesquite Trl", "Pine Ridge Rd, Apt 4", "Lakeview Dr", "N 3rd Ave",
    ]
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same file everywhere.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Uniform in 0..<n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
