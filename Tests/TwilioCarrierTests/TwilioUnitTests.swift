import CarrierKit
import Testing
import TowerCrypto
import TowerHTTPClient
import TowerProto
import TowerProtoRuntime

@testable import TwilioCarrier

@Suite("Twilio pure logic")
struct TwilioUnitTests {
    @Test func signatureMatchesTheAlgorithmAndSurvivesPortVariants() {
        let token = "12345"
        let params = [
            ("To", "+18005551212"), ("From", "+12349013030"), ("Digits", "1234"), ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
        ]
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2"
        // Built by hand: URL, then name+value sorted by name.
        let data = url + "CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212"
        let expected = Base64.encode(Crypto.hmacSHA1(key: Array(token.utf8), data: Array(data.utf8)))
        #expect(TwilioSignature.compute(authToken: token, url: url, parameters: params) == expected)
        #expect(TwilioSignature.isValid(signature: expected, authToken: token, url: url, parameters: params))
        #expect(
            TwilioSignature.isValid(
                signature: expected, authToken: token, url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: params))
        let withPort = TwilioSignature.compute(authToken: token, url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: params)
        #expect(TwilioSignature.isValid(signature: withPort, authToken: token, url: url, parameters: params))
        #expect(!TwilioSignature.isValid(signature: expected, authToken: "54321", url: url, parameters: params))
        #expect(!TwilioSignature.isValid(signature: expected, authToken: token, url: url, parameters: params + [("Body", "x")]))
        #expect(!TwilioSignature.isValid(signature: "", authToken: token, url: url, parameters: params))
        #expect(TwilioSignature.urlVariants("http://h:8080/x") == ["http://h:8080/x"])
        #expect(TwilioSignature.urlVariants("http://u:p@h/x?q") == ["http://u:p@h/x?q", "http://u:p@h:80/x?q"])
    }

    @Test func statusPrecedenceNeverMovesBackwards() {
        #expect(TwilioMessageStatus.supersedes("delivered", "sent"))
        #expect(!TwilioMessageStatus.supersedes("sent", "delivered"))
        #expect(!TwilioMessageStatus.supersedes("queued", "sent"))
        #expect(TwilioMessageStatus.supersedes("delivered", "undelivered"))
        #expect(!TwilioMessageStatus.supersedes("failed", "delivered"))
        #expect(!TwilioMessageStatus.supersedes("brand-new-status", "queued"))
        #expect(TwilioMessageStatus.deliveryState("undelivered") == .undelivered)
    }

    @Test func datesParseAndFormat() {
        #expect(TwilioDate.parse("Wed, 18 Aug 2010 20:01:40 +0000") == 1_282_161_700)
        #expect(TwilioDate.parse("Wed, 18 Aug 2010 22:01:40 +0200") == 1_282_161_700)
        #expect(TwilioDate.format(1_282_161_700) == "Wed, 18 Aug 2010 20:01:40 +0000")
        #expect(TwilioDate.isoDay(1_282_161_700) == "2010-08-18")
        #expect(TwilioDate.parse("garbage") == nil)
    }

    @Test func errorsAreClassified() {
        func response(_ status: Int, _ code: Int?, retryAfter: String? = nil) -> HTTPResponse {
            let body =
                code.map { #"{"code":\#($0),"message":"m","more_info":"https://www.twilio.com/docs/errors/\#($0)","status":\#(status)}"# }
                ?? "oops"
            return HTTPResponse(
                status: status, headers: retryAfter.map { [HTTPHeader(name: "Retry-After", value: $0)] } ?? [], body: Array(body.utf8))
        }
        let limited = TwilioAPIError.classify(response(429, 20429, retryAfter: "7"), operation: "Send")
        #expect(limited.errorClass == .rateLimited && limited.submissionState == .notSubmitted && limited.retryAfter == .seconds(7))
        #expect(TwilioAPIError.classify(response(401, 20003), operation: "Send").errorClass == .auth)
        let invalid = TwilioAPIError.classify(response(400, 21211), operation: "Send")
        #expect(invalid.errorClass == .permanent && invalid.carrierCode == "21211" && invalid.submissionState == .notSubmitted)
        let outage = TwilioAPIError.classify(response(502, nil), operation: "Send")
        #expect(outage.errorClass == .transient && outage.submissionState == .unknown)
        let sentTimeout = TwilioAPIError.transport(HTTPClientError(.timedOut, delivery: .maybeSent, "t"), operation: "Send")
        #expect(sentTimeout.submissionState == .unknown)
        let refused = TwilioAPIError.transport(HTTPClientError(.connectFailed, delivery: .notSent, "r"), operation: "Send")
        #expect(refused.submissionState == .notSubmitted && refused.errorClass == .transient)
    }

    @Test func webhookToleratesUnknownFieldsAndReadsTheKey() {
        let url = "https://hooks.example.com/webhooks/carriers/t1?ik=msg-42"
        let params = [
            ("MessageSid", "SM1"), ("SmsSid", "SM1"), ("MessageStatus", "delivered"), ("SmsStatus", "delivered"), ("To", "+15125550100"),
            ("From", "+15125550199"), ("ApiVersion", "2010-04-01"), ("AccountSid", FakeTwilio.testAccountSID),
            ("BrandNewField", "whatever"),
        ]
        var request = Carrier_ParseWebhookRequest()
        request.method = "POST"
        request.url = url
        request.body = Array(FormEncoding.encode(params).utf8)
        var header = Carrier_Header()
        header.name = "X-Twilio-Signature"
        header.value = TwilioSignature.compute(authToken: "tok", url: url, parameters: params)
        request.headers = [header]
        let webhook = TwilioWebhook(request, authToken: "tok")
        #expect(webhook.verified)
        guard case .deliveryStatus(let status)? = webhook.event else {
            Issue.record("expected a delivery status")
            return
        }
        #expect(status.idempotencyKey == "msg-42" && status.state == .delivered && status.carrierEventID == "SM1:delivered")
        #expect(TwilioWebhook(request, authToken: "other").event == nil)
    }
}
