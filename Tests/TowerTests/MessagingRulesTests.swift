import Testing

@testable import Tower

@Suite("Inbound keywords (STOP/HELP/START, English and Spanish, FCC 24-18 revocations)")
struct KeywordTests {
    @Test(arguments: [
        "STOP", "stop", " Stop. ", "STOPALL", "Unsubscribe", "cancel", "END", "quit", "revoke", "OPTOUT", "opt out", "Opt-Out",
        "ALTO", "parar", "Basta!", "CANCELAR", "no mas", "NO MÁS", "No más.", "baja",
    ])
    func optOutKeywords(_ text: String) {
        guard case .optOut = KeywordClassifier.classify(text) else {
            Issue.record("\(text) should opt out")
            return
        }
    }

    @Test(arguments: ["START", "unstop", "Yes", "ALTA", "reanudar"])
    func resubscribeKeywords(_ text: String) {
        guard case .resubscribe = KeywordClassifier.classify(text) else { Issue.record("\(text) should resubscribe"); return }
    }

    @Test(arguments: ["HELP", "info", "Ayuda?"])
    func helpKeywords(_ text: String) {
        guard case .help = KeywordClassifier.classify(text) else { Issue.record("\(text) should ask for help"); return }
    }

    @Test(arguments: [
        "STOP PLEASE", "please stop!!", "Please stop texting me", "remove me from your list", "Don't text me again",
        "wrong number", "No me escriban más por favor", "quítenme de su lista", "Alto por favor", "lose my number",
    ])
    func freeTextRevocations(_ text: String) {
        guard case .revocation = KeywordClassifier.classify(text) else { Issue.record("\(text) should count as revocation"); return }
    }

    @Test(arguments: [
        "Yes I'm interested, what's your offer?", "How much for the 40 acres?", "Who is this?",
        "I'll end up selling next year", "Help me understand the price", "",
    ])
    func conversationIsNotAKeyword(_ text: String) {
        #expect(KeywordClassifier.classify(text) == .message)
    }
}

@Suite("Segments and encoding")
struct EncodingTests {
    @Test func gsm7Limits() {
        #expect(MessageEncoding(String(repeating: "a", count: 160)).segments == 1)
        #expect(MessageEncoding(String(repeating: "a", count: 161)).segments == 2)
        #expect(MessageEncoding(String(repeating: "a", count: 306)).segments == 2)
        #expect(MessageEncoding(String(repeating: "a", count: 307)).segments == 3)
        #expect(MessageEncoding("").segments == 0)
    }

    @Test func extensionCharactersCostTwo() {
        let e = MessageEncoding(String(repeating: "€", count: 80))
        #expect(e.charset == .gsm7)
        #expect(e.units == 160)
        #expect(e.segments == 1)
        #expect(MessageEncoding(String(repeating: "{", count: 81)).segments == 2)
    }

    @Test func spanishAccentsSplitIntoGSMAndUCS2() {
        #expect(MessageEncoding("¿Señor Núñez? ¡Año de la cosecha! ü é à").charset == .ucs2)  // ú is not GSM-7
        #expect(MessageEncoding("¿Señor? ¡Año! ü é à ñ").charset == .gsm7)
        let ucs = MessageEncoding(String(repeating: "a", count: 150) + "á")
        #expect(ucs.charset == .ucs2)
        #expect(ucs.segments == 3)
        #expect(ucs.nonGSMCharacters == ["á"])
        #expect(MessageEncoding(String(repeating: "ó", count: 70)).segments == 1)
        #expect(MessageEncoding(String(repeating: "ó", count: 71)).segments == 2)
    }
}

@Suite("Template text, lint and rotation")
struct TemplateTests {
    @Test func variablesRenderWithFallbacks() throws {
        let t = try TemplateText(parsing: "Hi {first_name|there}, this is {agent_name} with {brand} about your land in {county} County.")
        #expect(t.variables == ["first_name", "agent_name", "brand", "county"])
        #expect(
            t.render(["first_name": "Ana", "agent_name": "Luis", "brand": "Sunbelt Land", "county": "Polk"])
                == "Hi Ana, this is Luis with Sunbelt Land about your land in Polk County.")
        #expect(
            t.render(["brand": "Sunbelt Land", "county": "Polk", "first_name": "  "])
                == "Hi there, this is with Sunbelt Land about your land in Polk County.")
    }

    @Test func unknownVariablesAndBracesAreRejectedWithPosition() {
        do {
            _ = try TemplateText(parsing: "Hi {frist_name}")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("{frist_name}"))
            #expect(error.offset == 3)
        }
        #expect(throws: TemplateText.ParseError.self) { try TemplateText(parsing: "Hi {first_name") }
        #expect(throws: TemplateText.ParseError.self) { try TemplateText(parsing: "Hi first_name}") }
    }

    @Test func initialMessagesNeedBrandAndOptOut() throws {
        let bad = "Hi {first_name}, want to sell your land? bit.ly/xyz"
        let findings = ComplianceLint.check(try TemplateText(parsing: bad), raw: bad, category: .initial)
        #expect(Set(findings.map(\.code)) == ["missing_brand", "missing_opt_out", "link_shortener"])
        let good = "Hi {first_name|there}, {brand} here. Interested in an offer for your {county} County land? Reply STOP to opt out."
        #expect(ComplianceLint.check(try TemplateText(parsing: good), raw: good, category: .initial).isEmpty)
        let spanish = "Hola {first_name}, le escribe {brand}. ¿Vendería su terreno? Responda ALTO para no recibir más."
        #expect(ComplianceLint.check(try TemplateText(parsing: spanish), raw: spanish, category: .initial).map(\.code) == ["ucs2"])
    }

    @Test func rotationIsFairAndNeverRepeatsForALead() {
        var usage = [0, 0, 0]
        var picks: [Int] = []
        for _ in 0..<9 {
            let pick = VariantRotation.next(usage: usage, alreadySent: [])!
            usage[pick] += 1
            picks.append(pick)
        }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2])
        #expect(VariantRotation.next(usage: [5, 1, 1], alreadySent: [1]) == 2)
        #expect(VariantRotation.next(usage: [1, 1], alreadySent: [0, 1]) == nil)
    }
}
