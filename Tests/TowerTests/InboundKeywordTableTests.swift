import Testing

@testable import Tower

/// The keyword table, exhaustively: every keyword the issue names (and the Spanish ones the
/// compliance reference adds), in every casing, accent, spacing and punctuation variant a phone
/// produces, plus the near-misses that must never opt anybody out.
@Suite("Inbound keyword table")
struct InboundKeywordTableTests {
    static let optOutKeywords = [
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT",
        "ALTO", "PARAR", "PARE", "BASTA", "CANCELAR", "NO MAS", "NO MÁS", "BAJA",
    ]
    static let spanishOptOut: Set<String> = ["ALTO", "PARAR", "PARE", "BASTA", "CANCELAR", "NO MAS", "NO MÁS", "BAJA"]
    static let resubscribeKeywords = ["START", "UNSTOP", "YES", "ALTA", "REANUDAR"]
    static let helpKeywords = ["HELP", "INFO", "AYUDA"]

    /// What a phone may turn a typed keyword into.
    static func variants(_ keyword: String) -> [String] {
        let lower = keyword.lowercased()
        let title = keyword.prefix(1) + keyword.dropFirst().lowercased()
        return [
            keyword, lower, String(title), "  \(keyword)  ", "\t\(lower)\n", "\(keyword).", "\(title)!", "\(lower)!!!", "\"\(keyword)\"",
            "\(keyword) 🛑", keyword.replacingOccurrences(of: " ", with: "   "), "\u{00A0}\(keyword)\u{00A0}",
            // Full-width letters (some Asian keyboards) and a decomposed accent (a + U+0301).
            String(
                String.UnicodeScalarView(
                    keyword.unicodeScalars.map { s in
                        ("A"..."Z").contains(s) ? Unicode.Scalar(s.value + 0xFEE0)! : s
                    })),
            keyword.replacingOccurrences(of: "Á", with: "A\u{0301}"),
        ]
    }

    @Test(arguments: optOutKeywords)
    func everyOptOutKeywordInEveryForm(_ keyword: String) {
        for text in Self.variants(keyword) {
            let intent = KeywordClassifier.classify(text)
            guard case .optOut(let matched) = intent else {
                Issue.record("\(text.debugDescription) should opt out, got \(intent)")
                continue
            }
            #expect(KeywordClassifier.optOut.contains(matched.lowercased()))
            #expect(intent.isSpanish == Self.spanishOptOut.contains(keyword), "\(text.debugDescription)")
        }
    }

    @Test func accentsAnywhereAreIgnored() {
        for text in ["ÁLTO", "pÁrar", "NÓ MÁS", "no màs", "Bástá", "cancelár", "STÖP", "ÉND", "quít"] {
            guard case .optOut = KeywordClassifier.classify(text) else {
                Issue.record("\(text) should opt out")
                continue
            }
        }
        #expect(KeywordClassifier.classify("Opt-Out") == .optOut(keyword: "OPT-OUT"))
    }

    @Test(arguments: resubscribeKeywords)
    func everyResubscribeKeyword(_ keyword: String) {
        for text in Self.variants(keyword) {
            guard case .resubscribe = KeywordClassifier.classify(text) else {
                Issue.record("\(text.debugDescription) should resubscribe")
                continue
            }
            #expect(KeywordClassifier.classify(text).isSpanish == ["ALTA", "REANUDAR"].contains(keyword))
        }
    }

    @Test(arguments: helpKeywords)
    func everyHelpKeyword(_ keyword: String) {
        for text in Self.variants(keyword) {
            guard case .help = KeywordClassifier.classify(text) else {
                Issue.record("\(text.debugDescription) should ask for help")
                continue
            }
            #expect(KeywordClassifier.classify(text).isSpanish == (keyword == "AYUDA"))
        }
    }

    /// A keyword inside other text is not a keyword. A strong opt-out word there flags the message
    /// for a person; nothing is suppressed.
    @Test(arguments: [
        "stop by tomorrow?", "Can you stop by Tuesday?", "I'll stop at the property on Friday", "Stop! Wait, how much is it?",
        "el precio es muy alto", "basta de hablar, cuánto ofrece?", "How do I unsubscribe from the county newsletter",
    ])
    func nearMissesWithStrongWordsAreFlaggedNotOptedOut(_ text: String) {
        guard case .possibleRevocation = KeywordClassifier.classify(text) else {
            Issue.record("\(text) should be flagged for review only, got \(KeywordClassifier.classify(text))")
            return
        }
    }

    @Test(arguments: [
        "Stopping by later", "nonstop calls from realtors", "the end of the road", "I quit my job last year",
        "cancel the meeting?", "Yes please, what is the offer?", "start date?", "Information please", "helpful, thanks",
        "stopwatch", "endless", "No", "no thanks", "Not interested", "Alta Loma property", "Info on the 40 acres?",
        "END OF STORY I will sell", "ayudame a entender el precio",
    ])
    func nearMissesAreConversation(_ text: String) {
        #expect(KeywordClassifier.classify(text) == .message, "\(text)")
    }

    /// FCC 24-18: any wording a reasonable person reads as revocation, in any language.
    @Test(arguments: [
        "STOP STOP", "stop now", "Stop. Thanks", "no más por favor", "please stop texting me", "Remove me", "REMOVE MY NUMBER",
        "take me off your list", "do not text this number", "no me escribas más", "bórrenme de su lista",
        "dejen de enviar mensajes", "Ya no me manden nada",
    ])
    func freeTextRevocations(_ text: String) {
        guard case .revocation = KeywordClassifier.classify(text) else {
            Issue.record("\(text) should be a revocation, got \(KeywordClassifier.classify(text))")
            return
        }
    }

    @Test func repliesCarryWhatTheRulesRequire() {
        let org = ComplianceReplies.OrgTexts(brand: "Sunbelt Land")
        let help = ComplianceReplies.help(org, .english)
        for part in ["Sunbelt Land", "Msg & data rates may apply", "STOP", "frequency", "Reply to this message"] {
            #expect(help.contains(part), "HELP reply lacks \(part)")
        }
        let ayuda = ComplianceReplies.help(org, .spanish)
        for part in ["Sunbelt Land", "tarifas de mensajes y datos", "ALTO", "Frecuencia"] { #expect(ayuda.contains(part)) }
        let stop = ComplianceReplies.optOutConfirmation(org, .english)
        #expect(stop.contains("Sunbelt Land") && stop.contains("no more messages"))
        #expect(ComplianceReplies.optOutConfirmation(org, .spanish).contains("no le enviaremos mensajes"))
        // The built-in texts stay in GSM-7 (Spanish ones avoid á í ó ú) and in one or two segments.
        for text in [
            help, ayuda, stop, ComplianceReplies.optOutConfirmation(org, .spanish),
            ComplianceReplies.resubscribeConfirmation(org, .english),
            ComplianceReplies.resubscribeConfirmation(org, .spanish),
        ] {
            let encoding = MessageEncoding(text)
            #expect(encoding.charset == .gsm7, "\(text) uses \(encoding.nonGSMCharacters)")
            #expect(encoding.segments <= 2, "\(text)")
        }
        let custom = ComplianceReplies.OrgTexts(brand: "X", stopReply: "Custom stop text", helpReply: "Custom help")
        #expect(ComplianceReplies.optOutConfirmation(custom, .spanish) == "Custom stop text")
        #expect(ComplianceReplies.help(custom, .english) == "Custom help")
    }
}
