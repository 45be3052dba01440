/// Save-time checks on a template's text. Errors block saving an initial message; warnings are
/// shown to the author.
public enum ComplianceLint {
    public struct Finding: Sendable, Hashable {
        public enum Severity: String, Sendable, Hashable { case error, warning }
        public var severity: Severity
        public var code: String
        public var message: String
    }

    public enum Category: Sendable, Hashable { case initial, followUp, help, stop }

    static let optOutLanguage = [
        "reply stop", "text stop", "stop to", "stop para", "responda alto", "alto para", "opt out", "opt-out", "unsubscribe",
    ]
    static let shorteners = [
        "bit.ly", "tinyurl.com", "t.co/", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly", "shorturl.at",
    ]
    /// Sex, hate, alcohol, firearms, tobacco (and cannabis): carriers filter or forbid them.
    static let shaft = [
        "cannabis", "marijuana", "weed", "cbd", "thc", "vape", "vaping", "cigar", "cigarette", "tobacco", "alcohol", "beer", "wine",
        "liquor",
        "firearm", "gun", "guns", "ammo", "ammunition", "sex", "sexy", "xxx", "casino", "gambling",
    ]

    public static func check(_ template: TemplateText, raw: String, category: Category) -> [Finding] {
        var findings: [Finding] = []
        let lower = " " + KeywordClassifier.normalize(raw) + " "
        let rawLower = raw.lowercased()
        if category == .initial {
            if !template.variables.contains("brand") {
                findings.append(
                    Finding(severity: .error, code: "missing_brand", message: "an initial message must name the sender: include {brand}"))
            }
            if !optOutLanguage.contains(where: { lower.contains(" " + KeywordClassifier.normalize($0) + " ") }) {
                findings.append(
                    Finding(
                        severity: .error, code: "missing_opt_out",
                        message: "an initial message must say how to opt out, e.g. \"Reply STOP to opt out\""))
            }
        }
        for s in shorteners where rawLower.contains(s) {
            findings.append(
                Finding(
                    severity: .error, code: "link_shortener",
                    message: "public link shorteners such as \(s) are filtered by carriers; use your own domain"))
        }
        for word in shaft where lower.contains(" \(word) ") {
            findings.append(
                Finding(severity: .warning, code: "shaft_content", message: "\"\(word)\" is SHAFT content that carriers filter or forbid"))
        }
        let encoding = MessageEncoding(template.render(["first_name": "Maria", "brand": "Brand"]))
        if encoding.charset == .ucs2 {
            let chars = encoding.nonGSMCharacters.map { String($0) }.joined(separator: " ")
            findings.append(
                Finding(
                    severity: .warning, code: "ucs2",
                    message: "\(chars) switch the message to UCS-2: 70 characters per segment instead of 160"))
        }
        return findings
    }
}
