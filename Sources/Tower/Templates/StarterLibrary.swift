import TowerProto

/// The built-in landowner-outreach templates a new org (or `ctower demo`) installs with
/// TemplateService.InstallStarterLibrary. Written for this product: short, plain, with the brand
/// and opt-out language in every first message, and fallbacks wherever a lead field may be blank.
/// English stays within GSM-7; Spanish keeps its accents (so it travels as UCS-2, which the lint
/// reports as a warning and the tests allow).
public enum StarterLibrary {
    public struct Entry: Sendable {
        /// Stable identity of the template across installs ("starter.en.initial").
        public var key: String
        public var name: String
        public var category: TemplateCategory
        public var language: Language
        public var variants: [String]
    }

    public static let entries: [Entry] = english + spanish

    static let english: [Entry] = [
        Entry(
            key: "starter.en.initial", name: "Starter: First message (EN)", category: .initial, language: .en,
            variants: [
                "Hi {first_name|there}, this is {brand}. Would you consider a cash offer for your land near {property_city|you}? Reply STOP to opt out.",
                "Hello {first_name|there}, this is {agent_name|a buyer} with {brand}. Is your land in {county|your area} for sale, or would you consider it? Reply STOP to opt out.",
                "{first_name|Hi}, it's {brand}. Do you still own {property_address|the land we have on file for you}? We'd like to make an offer. Reply STOP to opt out.",
                "Hi {first_name|there}! {brand} here. Have you thought about selling your land? We make simple cash offers, no agent needed. Reply STOP to opt out.",
                "{brand}: Hi {first_name|there}, we're interested in buying your property near {property_city|you}. Open to an offer? Reply STOP to opt out.",
                "Hi {first_name|there}, quick question from {brand}: would you sell your land in {county|your area} if the price was right? Reply STOP to opt out.",
                "Hello {first_name|there}. {brand} is looking for land in {county|your area} and your parcel caught our eye. May we send an offer? Reply STOP to opt out.",
                "Hi {first_name|there}, {agent_name|a buyer} at {brand} here. We buy vacant land for cash. Any interest in selling yours? Text STOP to opt out.",
            ]),
        Entry(
            key: "starter.en.follow_up", name: "Starter: Follow-up (EN)", category: .followUp, language: .en,
            variants: [
                "Hi {first_name|there}, just following up on my note about your land. Still open to an offer? - {brand}",
                "{first_name|Hi}, checking back in. If you'd ever sell your property, we'd be glad to make a no-pressure offer. - {brand}",
                "Hi {first_name|there}, {brand} again. Is now a better time to talk about your land near {property_city|you}? Reply STOP to opt out.",
                "Still thinking it over, {first_name|friend}? Our interest in your land stands whenever you're ready. - {brand}",
                "Hi {first_name|there}, last note from {brand} about your parcel. If selling is ever on your mind, just reply here. Reply STOP to opt out.",
                "{first_name|Hello}, would a number for your land help you decide? Reply with a good time to talk. - {brand}",
            ]),
        Entry(
            key: "starter.en.reply", name: "Starter: Replies (EN)", category: .reply, language: .en,
            variants: [
                "Thanks, {first_name|there}! Could you tell me a bit about the property: acreage, road access, any liens? Then we'll put an offer together.",
                "Great to hear. What price would you need to sell? No pressure, a ballpark is fine.",
                "Thanks for getting back to us. What's the best time for a quick call this week?",
                "Understood, thanks for letting us know. If anything changes, we're here. - {brand}",
            ]),
        Entry(
            key: "starter.en.help", name: "Starter: HELP reply (EN)", category: .help, language: .en,
            variants: [
                "{brand}: we text landowners about selling their land. Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out.",
                "This is {brand}. For help, reply with your question and a person will answer. Msg & data rates may apply. Text STOP to opt out.",
            ]),
        Entry(
            key: "starter.en.stop", name: "Starter: STOP confirmation (EN)", category: .stop, language: .en,
            variants: [
                "{brand}: you're unsubscribed and will get no more messages from us. Reply START to resubscribe.",
                "You have been opted out of {brand} messages. No more texts will be sent.",
            ]),
    ]

    static let spanish: [Entry] = [
        Entry(
            key: "starter.es.initial", name: "Starter: First message (ES)", category: .initial, language: .es,
            variants: [
                "Hola {first_name}, le escribe {brand}. ¿Vendería su terreno cerca de {property_city|usted}? Responda ALTO para no recibir más mensajes.",
                "Saludos {first_name}, somos {brand}. Compramos terrenos en {county|su zona} y nos interesa el suyo. ¿Quiere una oferta? Responda ALTO para no recibir más mensajes.",
                "{first_name|Hola}, soy {agent_name|un comprador} de {brand}. ¿Aún tiene su terreno en {county|la zona}? Quisiéramos hacerle una oferta. Responda ALTO para no recibir más mensajes.",
                "Hola {first_name}, le contacta {brand}. ¿Ha pensado en vender su terreno? Hacemos ofertas sencillas en efectivo. Responda ALTO para no recibir más mensajes.",
                "Hola {first_name}, le saluda {agent_name|un comprador} de {brand}. ¿Le interesaría vender su lote en {county|su zona}? Responda ALTO para no recibir más mensajes.",
                "{brand}: Hola {first_name}, nos interesa comprar su propiedad cerca de {property_city|usted}. ¿Aceptaría una oferta? Responda ALTO para no recibir más mensajes.",
                "Hola {first_name}, una pregunta rápida de {brand}: ¿vendería su terreno en {county|su zona} por el precio adecuado? Responda ALTO para no recibir más mensajes.",
                "Saludos {first_name}. En {brand} buscamos terrenos en {county|su zona} y su parcela nos llamó la atención. ¿Le enviamos una oferta? Responda ALTO para no recibir más mensajes.",
            ]),
        Entry(
            key: "starter.es.follow_up", name: "Starter: Follow-up (ES)", category: .followUp, language: .es,
            variants: [
                "Hola {first_name}, le escribo de nuevo sobre su terreno. ¿Le interesaría escuchar una oferta? - {brand}",
                "{first_name|Hola}, quería saber si ha pensado en vender su propiedad. Con gusto le hacemos una oferta sin compromiso. - {brand}",
                "Hola {first_name}, {brand} otra vez. ¿Es un buen momento para hablar de su terreno cerca de {property_city|usted}? Responda ALTO para no recibir más mensajes.",
                "{first_name|Hola}, ¿lo sigue pensando? Nuestro interés en su terreno sigue en pie cuando usted quiera. - {brand}",
                "Hola {first_name}, {brand} le escribe por última vez sobre su parcela. Si algún día quiere vender, contéstenos. Responda ALTO para no recibir más mensajes.",
                "{first_name|Hola}, ¿le ayudaría tener una cifra por su terreno para decidir? Díganos un buen momento para llamarle. - {brand}",
            ]),
        Entry(
            key: "starter.es.reply", name: "Starter: Replies (ES)", category: .reply, language: .es,
            variants: [
                "¡Muchas gracias! ¿Nos cuenta un poco del terreno? Superficie, acceso por camino y si tiene gravámenes. Con eso le preparamos una oferta.",
                "¡Qué bueno! ¿Qué precio necesitaría para vender? Sin presión, una cifra aproximada está bien.",
                "Gracias por responder. ¿Cuál es el mejor momento para una llamada breve esta semana?",
                "Entendido, gracias por avisarnos. Si algo cambia, aquí estamos. - {brand}",
            ]),
        Entry(
            key: "starter.es.help", name: "Starter: HELP reply (ES)", category: .help, language: .es,
            variants: [
                "{brand}: escribimos a dueños de terrenos sobre su venta. La frecuencia varía. Pueden aplicarse tarifas de mensajes y datos. Responda ALTO para no recibir más mensajes.",
                "Le atiende {brand}. Responda con su pregunta y una persona le contestará. Pueden aplicarse tarifas de mensajes y datos. Responda ALTO para darse de baja.",
            ]),
        Entry(
            key: "starter.es.stop", name: "Starter: STOP confirmation (ES)", category: .stop, language: .es,
            variants: [
                "{brand}: se ha dado de baja y no recibirá más mensajes nuestros. Responda ALTA para volver a suscribirse.",
                "Su número fue dado de baja de los mensajes de {brand}. No le enviaremos más textos.",
            ]),
    ]
}
