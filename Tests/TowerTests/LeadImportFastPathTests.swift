import Testing

@testable import Tower

/// The import's byte-level fast paths must answer exactly what the `Character`-level paths
/// answer. Random ASCII text built from the characters these fields carry (letters, digits,
/// every kind of ASCII whitespace, punctuation, state and unit words) goes through both.
@Suite("Lead import fast paths")
struct LeadImportFastPathTests {
    static let pieces = [
        " ", "  ", "\t", "\n", "\r\n", "\u{0B}", "\u{0C}", "a", "Z", "mc", "Mc", "MC", "mac", "o'", "-", ".", ",", "'", "0", "1",
        "5", "9", "12", "555", "0123", "#", "x", "X", "ext", "EXT", "+", "(", ")", "ac", "acre", "ACRES", "e", "n ", "s ", "w ",
        "texas", "TX", "carolina", "North", "virginia", "new", "york", "dc", "county", "Parish", "co.", "co", "borough", "st.",
        "john", "SMITH", "landline", "cell", "line",
    ]

    static func samples(_ count: Int, seed: UInt64) -> [String] {
        // Seeded, so a failure names an input that reproduces.
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
        }
    }

    @Test func namesAndStatesAgreeWithTheCharacterPath() {
        for text in Self.samples(20_000, seed: 1) {
            #expect(LeadFieldNormalizer.asciiName(text) == LeadFieldNormalizer.nameByCharacters(text), "\(text.debugDescription)")
            #expect(
                LeadFieldNormalizer.asciiStateCode(text) == LeadFieldNormalizer.stateCodeByCharacters(text), "\(text.debugDescription)")
        }
    }

    @Test func whitespaceHandlingAgreesWithTheCharacterPath() {
        for text in Self.samples(20_000, seed: 2) {
            #expect(
                ASCIIText.collapsed(text, separator: ASCIIText.isSpace) == LeadRowNormalizer.collapsedByCharacters(text),
                "\(text.debugDescription)")
            #expect(String(ASCIIText.trimmed(text)) == LeadRowNormalizer.trimmedByCharacters(text), "\(text.debugDescription)")
            #expect(LeadRowNormalizer.isBlank(text) == text.allSatisfy(\.isWhitespace), "\(text.debugDescription)")
        }
    }

    @Test func zipCodesAndAcreageAgreeWithTheCharacterPath() {
        let normalizer = LeadRowNormalizer(plan: LeadImportPlan.suggested(headers: ["Phone"]))
        for text in Self.samples(20_000, seed: 3) + [
            "78701", " 7301", "7301", "73301-1234", "73301 1234", "1,250 acres", "40 AC", "-3", "+4", ".", "1e5",
        ] {
            var fast: [LeadRowNormalizer.Problem] = []
            var slow: [LeadRowNormalizer.Problem] = []
            #expect(normalizer.zip(text, "Zip", &fast) == normalizer.zipByCharacters(text, "Zip", &slow), "\(text.debugDescription)")
            #expect(
                normalizer.acreage(text, "Acres", &fast) == normalizer.acreageByCharacters(text, "Acres", &slow), "\(text.debugDescription)"
            )
            #expect(fast == slow, "\(text.debugDescription)")
        }
    }

    /// The phone rules as the importer first wrote them (with `Character` and Foundation).
    static func referencePhone(_ raw: String) -> Result<String, PhoneNumberNormalizer.Rejection> {
        var text = Substring(raw.lowercased())
        for marker in ["ext", "x", "#"] {
            if let range = text.range(of: marker), text[..<range.lowerBound].contains(where: \.isNumber) {
                text = text[..<range.lowerBound]
                break
            }
        }
        var digits = Array(text.filter(\.isNumber))
        if digits.isEmpty { return .failure(.empty) }
        if digits.count == 11, digits.first == "1" { digits.removeFirst() }
        guard digits.count == 10 else { return .failure(.wrongLength) }
        let npa = String(digits[0..<3])
        let nxx = String(digits[3..<6])
        let line = String(digits[6..<10])
        guard digits[0] >= "2" else { return .failure(.invalidAreaCode) }
        if digits[1] == "1", digits[2] == "1" { return .failure(.serviceAreaCode) }
        guard digits[3] >= "2" else { return .failure(.invalidExchange) }
        if digits[4] == "1", digits[5] == "1" { return .failure(.serviceExchange) }
        if nxx == "555", let n = Int(line), (100...199).contains(n) { return .failure(.fictional) }
        if ["800", "833", "844", "855", "866", "877", "888", "900"].contains(npa) { return .failure(.tollFreeOrPremium) }
        return .success("+1" + npa + nxx + line)
    }

    @Test func phonesAgreeWithTheReferenceRules() {
        var random = SplitMix64(seed: 4)
        let shapes = [
            "(NPA) NXX-LINE", "NPA.NXX.LINE", "+1 NPA NXX LINE", "1NPANXXLINE", " NPA-NXX-LINE ext 2", "NPANXXLINE x12", "NXX-LINE",
        ]
        for _ in 0..<20_000 {
            let digits = { (n: Int) in String((0..<n).map { _ in "0123456789".randomElement(using: &random)! }) }
            var npa = digits(3)
            if Bool.random(using: &random) { npa = ["911", "800", "512", "112", "211"].randomElement(using: &random)! }
            var nxx = digits(3)
            if Bool.random(using: &random) { nxx = ["555", "411", "167", "867"].randomElement(using: &random)! }
            let line = Bool.random(using: &random) ? "01" + digits(2) : digits(4)
            let raw = shapes.randomElement(using: &random)!
                .replacingOccurrences(of: "NPA", with: npa).replacingOccurrences(of: "NXX", with: nxx)
                .replacingOccurrences(of: "LINE", with: line)
            #expect(PhoneNumberNormalizer.normalize(raw) == Self.referencePhone(raw), "\(raw)")
        }
    }
}
