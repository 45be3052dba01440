import CarrierConformance
import Foundation
import Testing
import TowerHTTPClient

@testable import TwilioCarrier

/// `ctower carrier test` against the real Twilio plugin, pointed at the fake API.
@Suite("Twilio plugin conformance", .enabled(if: TestSupport.twilioIsBuilt, Comment(rawValue: TestSupport.missingTwilioMessage)))
struct TwilioConformanceTests {
    @Test func theTwilioPluginPassesTheKit() async throws {
        let fake = try await FakeTwilio()
        var configuration = ConformanceConfiguration()
        configuration.credentials = ["account_sid": fake.accountSID, "auth_token": fake.authToken]
        configuration.settings = [
            "base_url": fake.baseURL, "status_callback_url": "https://hooks.example.com/webhooks/carriers/conformance",
        ]
        configuration.rateLimit = .init(to: "+15005550429")
        configuration.slowSend = .init(to: "+15005550998")
        let url = "https://hooks.example.com/webhooks/carriers/conformance?ik=k1"
        for params in [
            [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("To", "+15125550100"), ("From", "+15125550199")],
            [
                ("MessageSid", "SM2"), ("SmsStatus", "received"), ("Body", "STOP"), ("To", "+15125550199"), ("From", "+15125550100"),
                ("NumMedia", "0"),
            ],
        ] {
            let signature = TwilioSignature.compute(authToken: fake.authToken, url: url, parameters: params)
            configuration.webhooks.append(
                .init(
                    url: url, headers: [("X-Twilio-Signature", signature), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array(FormEncoding.encode(params).utf8)))
        }
        let results = await ConformanceSuite(executable: TestSupport.binDirectory + "/ctower-carrier-twilio", configuration: configuration)
            .run()
        for result in results {
            #expect(result.outcome == .pass, "\(result)")
        }
        await fake.close()
    }
}
