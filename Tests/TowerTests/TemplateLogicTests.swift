import Testing
import TowerProto

@testable import Tower

@Suite("Template segments at the edges")
struct TemplateSegmentTests {
    @Test func gsm7SinglePartHolds160AndSplitPartsHold153() {
        let exactly = MessageEncoding(String(repeating: "a", count: 160))
        #expect(exactly.charset == .gsm7 && exactly.segments == 1 && exactly.unitsPerSegment == 160)
        let over = MessageEncoding(String(repeating: "a", count: 161))
        #expect(over.segments == 2 && over.unitsPerSegment == 153)
        #expect(MessageEncoding(String(repeating: "a", count: 306)).segments == 2)
        #expect(MessageEncoding(String(repeating: "a", count: 307)).segments == 3)
    }

    @Test func oneAccentedVowelSwitchesToUCS2() {
        // 69 GSM characters and one "á": UCS-2, exactly one 70-unit segment.
        let seventy = MessageEncoding(String(repeating: "a", count: 69) + "á")
        #expect(seventy.charset == .ucs2 && seventy.segments == 1 && seventy.unitsPerSegment == 70)
        #expect(seventy.nonGSMCharacters == ["á"])
        let seventyOne = MessageEncoding(String(repeating: "a", count: 70) + "í")
        #expect(seventyOne.segments == 2 && seventyOne.unitsPerSegment == 67)
        #expect(MessageEncoding(String(repeating: "a", count: 133) + "ó").segments == 2)
        #expect(MessageEncoding(String(repeating: "a", count: 134) + "ú").segments == 3)
        // The same 160 characters cost 1 segment in GSM-7 and 3 once one "ú" is among them.
        #expect(MessageEncoding(String(repeating: "a", count: 160)).segments == 1)
        #expect(MessageEncoding(String(repeating: "a", count: 159) + "ú").segments == 3)
        // é ñ ü ¿ ¡ à are GSM-7.
        #expect(MessageEncoding("¿Señor Peña? ¡Qué pequeño! é ü à").charset == .gsm7)
    }

    @Test func extensionCharactersCountDoubleAndAreNeverSplit() {
        let euros = MessageEncoding(String(repeating: "€", count: 79) + "ab")
        #expect(euros.charset == .gsm7 && euros.units == 160 && euros.segments == 1)
        #expect(MessageEncoding(String(repeating: "€", count: 80) + "a").segments == 2)
        // 152 + 2 + 152 = 306 septets fit 2 parts of 153 only if "€" (ESC + e) were split; it is not.
        let straddling = MessageEncoding(String(repeating: "a", count: 152) + "€" + String(repeating: "a", count: 152))
        #expect(straddling.units == 306)
        #expect(straddling.segments == 3)
        #expect(MessageEncoding("[~]|^{}\\").units == 16)
    }
}

@Suite("Template text and lint rules")
struct TemplateLintTests {
    @Test func everyUnknownVariableIsReportedWithItsPosition() {
        let problems = TemplateText.problems(in: "Hi {frist_name}, about {countee} County {county}")
        #expect(problems.map(\.variable) == ["frist_name", "countee"])
        #expect(problems.map(\.offset) == [3, 23])
        #expect(problems[0].message.contains("character 4"))
        #expect(TemplateText.problems(in: "Hi {first_name|there} and {brand}").isEmpty)
        #expect(TemplateText.problems(in: "a } b {c").count == 2)
    }

    @Test func renderingSaysWhichVariablesFellBack() throws {
        let text = try TemplateText(parsing: "Hi {first_name|there}, {agent_name} at {brand} about {county|your} land.")
        let r = text.rendering(["brand": "Sunbelt", "county": " "])
        #expect(r.text == "Hi there, at Sunbelt about your land.")
        #expect(r.fellBack == ["first_name", "county"])
        #expect(r.empty == ["agent_name"])
    }

    func codes(_ body: String, _ category: ComplianceLint.Category, _ policy: ComplianceLint.Policy = .init(brandName: "Sunbelt Land Co"))
        throws -> [String: ComplianceLint.Finding.Severity]
    {
        let findings = ComplianceLint.check(try TemplateText(parsing: body), raw: body, category: category, policy: policy)
        return Dictionary(findings.map { ($0.code, $0.severity) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func initialMessagesNeedTheBrandAndOptOutLanguage() throws {
        #expect(try codes("Hi {first_name}, want to sell your land?", .initial) == ["missing_brand": .error, "missing_opt_out": .error])
        // The org's brand name written out counts as naming the sender.
        #expect(try codes("Hi, Sunbelt Land Co here. Sell your land? Reply STOP to opt out.", .initial).isEmpty)
        #expect(try codes("Hi, Sunbelt here. Sell your land? Reply STOP to opt out.", .initial) == ["missing_brand": .error])
        #expect(try codes("{brand}: ¿Vende su terreno? Responde ALTO para no recibir más mensajes.", .initial) == ["ucs2": .warning])
        // The org switch turns the opt-out rule into a warning, not into silence.
        let relaxed = ComplianceLint.Policy(brandName: "Sunbelt Land Co", requireOptOutLanguage: false)
        #expect(try codes("{brand}: want to sell your land?", .initial, relaxed) == ["missing_opt_out": .warning])
        // Follow-ups are not held to the first-message rules.
        #expect(try codes("Still thinking about selling?", .followUp).isEmpty)
    }

    @Test func shortenersAreErrorsAndShaftWordsWarnings() throws {
        #expect(try codes("See the offer: bit.ly/abc", .followUp) == ["link_shortener": .error])
        #expect(try codes("Offer at https://t.ly/abc", .followUp) == ["link_shortener": .error])
        #expect(try codes("Offer at mybit.ly.example.com/x", .followUp).isEmpty)
        #expect(try codes("We can bring wine to the closing", .followUp) == ["shaft_content": .warning])
        // Word boundaries: "Gunnison" is a county, not a firearm.
        #expect(try codes("Your land in Gunnison County", .followUp).isEmpty)
    }

    @Test func helpAndStopRepliesNameTheBrand() throws {
        #expect(
            try codes("{brand}: land offers. Msg & data rates may apply. Reply STOP to opt out.", .help).isEmpty)
        #expect(try codes("{brand}: land offers. Reply STOP to opt out.", .help) == ["missing_rates": .warning])
        #expect(
            try codes("We text about land. Msg & data rates may apply.", .help) == ["missing_brand": .error, "missing_opt_out": .error])
        #expect(try codes("You are unsubscribed.", .stop) == ["missing_brand": .error])
        #expect(try codes("You are unsubscribed from {brand}.", .stop).isEmpty)
    }

    @Test func longMessagesAreFlagged() throws {
        let long = "{brand}: " + String(repeating: "land ", count: 100) + "Reply STOP to opt out."
        #expect(try codes(long, .initial) == ["long_message": .warning])
    }
}

@Suite("Starter library")
struct StarterLibraryTests {
    static let policy = ComplianceLint.Policy(brandName: "Sunbelt Land Co", requireOptOutLanguage: true)

    @Test func hasTwentyVariantsPerLanguageInEveryCategoryItNeeds() {
        for language in [Language.en, .es] {
            let entries = StarterLibrary.entries.filter { $0.language == language }
            #expect(entries.reduce(0) { $0 + $1.variants.count } >= 20)
            #expect(Set(entries.map(\.category)) == [.initial, .followUp, .reply, .help, .stop])
        }
        #expect(Set(StarterLibrary.entries.map(\.key)).count == StarterLibrary.entries.count)
        #expect(Set(StarterLibrary.entries.map(\.name)).count == StarterLibrary.entries.count)
    }

    @Test func everyVariantParsesAndPassesTheLint() throws {
        for entry in StarterLibrary.entries {
            for body in entry.variants {
                #expect(TemplateText.problems(in: body).isEmpty, "\(entry.key): \(body)")
                let analysis = TemplateRecords.Analysis(body: body, category: entry.category, policy: Self.policy)
                let codes = analysis.findings.map(\.code)
                // Spanish keeps its accents, so UCS-2 is the one finding it may carry.
                #expect(codes == (entry.language == .es && analysis.encoding.charset == .ucs2 ? ["ucs2"] : []), "\(entry.key): \(body)")
                if entry.language == .en {
                    #expect(analysis.encoding.charset == .gsm7 && analysis.encoding.segments <= 2, "\(entry.key): \(body)")
                } else {
                    #expect(analysis.encoding.segments <= 3, "\(entry.key): \(body)")
                }
            }
        }
    }

    @Test func everyVariantReadsWellWithNoLeadData() throws {
        for entry in StarterLibrary.entries {
            for body in entry.variants {
                let text = try TemplateText(parsing: body).render(["brand": "Sunbelt Land Co"])
                #expect(!text.contains("{") && !text.contains("}"), "\(text)")
                for artefact in [" ,", ",,", ",?", ",!", ",.", "  ", "( )", " ."] {
                    #expect(!text.contains(artefact), "\(entry.key): \"\(text)\" contains \"\(artefact)\"")
                }
                #expect(!text.hasPrefix(",") && !text.hasPrefix(" "), "\(text)")
            }
        }
    }
}
