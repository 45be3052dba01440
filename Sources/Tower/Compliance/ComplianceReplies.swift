/// The texts the platform answers compliance keywords with. Each carries the brand; HELP also
/// carries how to reach a person (reply here), frequency, "Msg & data rates may apply" and how
/// to stop. The Spanish texts avoid á í ó ú, which would switch the message to UCS-2 and
/// multiply its cost; é ñ ü are GSM-7.
public enum ComplianceReplies {
    public enum Language: Sendable, Hashable { case english, spanish }

    /// What the org has configured (empty or nil means the built-in text).
    public struct OrgTexts: Sendable, Hashable {
        public var brand: String
        public var stopReply: String?
        public var helpReply: String?

        public init(brand: String, stopReply: String? = nil, helpReply: String? = nil) {
            self.brand = brand
            self.stopReply = stopReply
            self.helpReply = helpReply
        }
    }

    /// Confirms an opt-out: the brand and that no more messages will be sent.
    public static func optOutConfirmation(_ org: OrgTexts, _ language: Language) -> String {
        if let custom = org.stopReply, !custom.isEmpty { return custom }
        switch language {
        case .english:
            return "\(org.brand): You are unsubscribed and will receive no more messages from us. Reply START to resubscribe."
        case .spanish:
            return "\(org.brand): Usted se ha dado de baja y no le enviaremos mensajes nuevos. Responda ALTA para volver a suscribirse."
        }
    }

    /// Answers HELP/INFO/AYUDA.
    public static func help(_ org: OrgTexts, _ language: Language) -> String {
        if let custom = org.helpReply, !custom.isEmpty { return custom }
        switch language {
        case .english:
            return
                "\(org.brand): Reply to this message to reach our team. Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out."
        case .spanish:
            return
                "\(org.brand): Responda a este mensaje para hablar con nuestro equipo. Frecuencia de mensajes variable. Pueden aplicarse tarifas de mensajes y datos. Responda ALTO para cancelar."
        }
    }

    /// Confirms START/UNSTOP/YES/ALTA after an opt-out.
    public static func resubscribeConfirmation(_ org: OrgTexts, _ language: Language) -> String {
        switch language {
        case .english:
            return
                "\(org.brand): You are resubscribed and will receive messages again. Msg & data rates may apply. Reply HELP for help, STOP to opt out."
        case .spanish:
            return
                "\(org.brand): Usted vuelve a estar suscrito y le enviaremos mensajes. Pueden aplicarse tarifas de mensajes y datos. Responda AYUDA para ayuda, ALTO para cancelar."
        }
    }
}
