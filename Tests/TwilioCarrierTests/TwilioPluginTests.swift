import Foundation
import Testing
import TowerCarrierHost
import TowerHTTPClient
import TowerProto

@testable import TwilioCarrier

/// The real `ctower-carrier-twilio` process, driven through CarrierHost, against the fake API.
@Suite("Twilio plugin against the fake API", .enabled(if: TestSupport.twilioIsBuilt, Comment(rawValue: TestSupport.missingTwilioMessage)))
struct TwilioPluginTests {
    @Test func sendPostsTheFormAndReturnsTheSid() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let info = try #require(await host.pluginInfo)
        #expect(info.name == "twilio" && info.capabilities.contains(.webhookParsing) && info.capabilities.contains(.queryStatus))

        let result = try await host.send(TestSupport.message("key-1", body: "Hola, ¿vende su terreno?"), connection: "t1")
        #expect(result.providerMessageID.hasPrefix("SM") && result.providerMessageID.count == 34)
        #expect(result.carrierStatus == "queued" && result.segments == 1)
        let request = try #require(fake.requests.last)
        #expect(request.authorized && request.method == "POST" && request.path.hasSuffix("/Messages.json"))
        let form = Dictionary(request.form, uniquingKeysWith: { $1 })
        #expect(form["To"] == "+15125550100" && form["From"] == "+15125550199" && form["Body"] == "Hola, ¿vende su terreno?")
        #expect(form["StatusCallback"] == "https://hooks.example.com/webhooks/carriers/t1?ik=key-1")
        await host.shutdown()
        await fake.close()
    }

    @Test func messagingServiceAndMedia() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake, settings: ["messaging_service_sid": "MG" + String(repeating: "0", count: 32)])
        var message = TestSupport.message("key-mms", from: "")
        message.mediaUrls = ["https://example.com/a.jpg", "https://example.com/b.jpg"]
        let result = try await host.send(message, connection: "t1")
        #expect(result.carrierStatus == "accepted")
        let form = try #require(fake.requests.last).form
        #expect(form.filter { $0.0 == "MediaUrl" }.count == 2)
        #expect(form.contains { $0.0 == "MessagingServiceSid" } && !form.contains { $0.0 == "From" })
        await host.shutdown()
        await fake.close()
    }

    @Test func rateLimitIsNotSubmittedWithRetryAfterAndThrottles() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        fake.failNext(.error(status: 429, code: 20429, message: "Too Many Requests", retryAfter: "3"))
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-rl"), connection: "t1") }
        #expect(error?.code == .rateLimited && error?.submissionState == .notSubmitted)
        #expect(error?.retryAfter == .seconds(3) && error?.carrierCode == "20429")
        let throttle = await TestSupport.firstEvent(in: host) { if case .throttle = $0.kind { true } else { false } }
        guard case .throttle(let value)? = throttle?.kind else {
            Issue.record("expected a Throttle event")
            return
        }
        #expect(value.maxMps == 0 && value.duration?.seconds == 3)
        // Nothing was created, and the retry goes through.
        #expect(fake.messages.isEmpty)
        _ = try await host.send(TestSupport.message("key-rl"), connection: "t1")
        #expect(fake.messages.count == 1)
        await host.shutdown()
        await fake.close()
    }

    @Test func wrongTokenIsAuth() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake, token: "wrong-token")
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-auth"), connection: "t1") }
        #expect(error?.code == .auth && error?.carrierCode == "20003" && error?.submissionState == .notSubmitted)
        #expect(error?.message.contains("wrong-token") == false)
        let check = await #expect(throws: CarrierError.self) { try await host.checkAccount(connection: "t1") }
        #expect(check?.code == .auth)
        await host.shutdown()
        await fake.close()
    }

    @Test(arguments: [("+1512", "21211"), ("+15005550004", "21610"), ("+15005550009", "21614")])
    func invalidRecipientsArePermanentWithTheRawCode(to: String, code: String) async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let error = await #expect(throws: CarrierError.self) {
            try await host.send(TestSupport.message("key-\(code)", to: to), connection: "t1")
        }
        #expect(error?.code == .permanent && error?.carrierCode == code && error?.submissionState == .notSubmitted)
        await host.shutdown()
        await fake.close()
    }

    @Test func filteredMessageErrorFromTwilioIsPermanent() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        fake.failNext(.error(status: 400, code: 30007, message: "Message filtered"))
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-30007"), connection: "t1") }
        #expect(error?.code == .permanent && error?.carrierCode == "30007")
        await host.shutdown()
        await fake.close()
    }

    @Test func serverErrorIsTransientAndUnknown() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        fake.failNext(.error(status: 500, code: 20500, message: "Internal Server Error"))
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-500"), connection: "t1") }
        #expect(error?.code == .transient && error?.submissionState == .unknown)
        await host.shutdown()
        await fake.close()
    }

    @Test func connectFailureIsTransientAndNotSubmitted() async throws {
        let host = TestSupport.twilioHost()
        try await host.start()
        try await host.configure(
            connection: "t1", credentials: ["account_sid": FakeTwilio.testAccountSID, "auth_token": "x"],
            settings: ["base_url": "http://127.0.0.1:\(TestSupport.closedPort())"])
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-down"), connection: "t1") }
        #expect(error?.code == .transient && error?.submissionState == .notSubmitted)
        await host.shutdown()
    }

    @Test func timeoutAfterTwilioAcceptedIsUnknownAndQueryStatusFindsIt() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake, settings: ["request_timeout_ms": "500"])
        fake.failNext(.hangAfterProcessing)
        let error = await #expect(throws: CarrierError.self) { try await host.send(TestSupport.message("key-hang"), connection: "t1") }
        #expect(error?.submissionState == .unknown)
        let created = try #require(fake.messages.first)
        fake.setStatus(created.sid, "sent")

        // This process remembers the attempt (recipient, sender, time) and searches for it.
        let found = try await host.queryStatus(idempotencyKey: "key-hang", connection: "t1")
        #expect(found.found && found.providerMessageID == created.sid && found.state == .sent)
        await host.shutdown()
        await fake.close()
    }

    @Test func queryStatusWithOnlyHintsNeverGuesses() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let now = WallClock.now().seconds
        _ = fake.addMessage(to: "+15125550100", from: "+15125550199", created: now - 86_400)  // yesterday: outside the window

        // Only a key: this process never saw it, so it must refuse rather than say "not found".
        let refused = await #expect(throws: CarrierError.self) { try await host.queryStatus(idempotencyKey: "key-lost", connection: "t1") }
        #expect(refused?.submissionState == .unknown)

        var query = Carrier_QueryStatusRequest()
        query.idempotencyKey = "key-lost"
        query.to = "+15125550100"
        query.from = "+15125550199"
        query.notBefore = Google_Protobuf_Timestamp.seconds(now - 60)
        guard case .queryStatus(let missing) = try await host.perform(.queryStatus(query), connection: "t1") else {
            Issue.record("expected a QueryStatus result")
            return
        }
        #expect(!missing.found, "nothing in the window: certainly not submitted")

        // A message in the window that nobody claimed could be ours or anyone's: ambiguous.
        let maybe = fake.addMessage(to: "+15125550100", from: "+15125550199", created: now - 5)
        let ambiguous = await #expect(throws: CarrierError.self) { try await host.perform(.queryStatus(query), connection: "t1") }
        #expect(ambiguous?.code == .transient && ambiguous?.submissionState == .unknown)

        // Its status callback names the key: now it is known.
        var callback = Carrier_ParseWebhookRequest()
        callback.method = "POST"
        callback.url = "https://hooks.example.com/webhooks/carriers/t1?ik=key-lost"
        let params = [("MessageSid", maybe), ("MessageStatus", "delivered"), ("To", "+15125550100"), ("From", "+15125550199")]
        callback.body = Array(FormEncoding.encode(params).utf8)
        var signature = Carrier_Header()
        signature.name = "X-Twilio-Signature"
        signature.value = TwilioSignature.compute(authToken: fake.authToken, url: callback.url, parameters: params)
        callback.headers = [signature]
        #expect(try await host.parseWebhook(callback, connection: "t1").verified)
        let known = try await host.queryStatus(idempotencyKey: "key-lost", connection: "t1")
        #expect(known.found && known.providerMessageID == maybe && known.state == .delivered)
        await host.shutdown()
        await fake.close()
    }

    @Test func checkAccountAndNumbers() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let account = try await host.checkAccount(connection: "t1")
        #expect(
            account.accountName == "Fake Land Co" && account.status == "active" && account.balance == "42.17" && account.currency == "USD")

        var search = Carrier_SearchNumbersRequest()
        search.areaCode = "737"
        search.limit = 5
        guard case .searchNumbers(let found) = try await host.perform(.searchNumbers(search), connection: "t1") else { return }
        #expect(found.numbers.count == 5 && found.numbers.allSatisfy { $0.phoneNumber.hasPrefix("+1737") && $0.sms && $0.region == "TX" })
        let searchRequest = try #require(fake.requests.last)
        #expect(searchRequest.path.hasSuffix("/AvailablePhoneNumbers/US/Local.json"))
        #expect(searchRequest.query.contains { $0 == ("AreaCode", "737") })

        var purchase = Carrier_PurchaseNumberRequest()
        purchase.phoneNumber = found.numbers[0].phoneNumber
        purchase.smsWebhookURL = "https://hooks.example.com/webhooks/carriers/t1"
        guard case .purchaseNumber(let bought) = try await host.perform(.purchaseNumber(purchase), connection: "t1") else { return }
        #expect(bought.providerNumberID.hasPrefix("PN") && bought.phoneNumber == purchase.phoneNumber)
        #expect(fake.numbers[bought.providerNumberID] == purchase.phoneNumber)

        purchase.phoneNumber = "+17375550000"
        let unavailable = await #expect(throws: CarrierError.self) { try await host.perform(.purchaseNumber(purchase), connection: "t1") }
        #expect(unavailable?.code == .permanent && unavailable?.carrierCode == "21422")

        var release = Carrier_ReleaseNumberRequest()
        release.providerNumberID = bought.providerNumberID
        _ = try await host.perform(.releaseNumber(release), connection: "t1")
        #expect(fake.numbers.isEmpty)
        _ = try await host.perform(.releaseNumber(release), connection: "t1")  // idempotent
        await host.shutdown()
        await fake.close()
    }

    @Test func webhooksAreVerifiedNormalisedAndOrdered() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let url = "https://hooks.example.com/webhooks/carriers/t1?ik=key-9"
        func webhook(_ params: [(String, String)], signedWith token: String? = nil, url: String = url) -> Carrier_ParseWebhookRequest {
            var request = Carrier_ParseWebhookRequest()
            request.method = "POST"
            request.url = url
            request.body = Array(FormEncoding.encode(params).utf8)
            var content = Carrier_Header()
            content.name = "Content-Type"
            content.value = "application/x-www-form-urlencoded"
            var signature = Carrier_Header()
            signature.name = "X-Twilio-Signature"
            signature.value = TwilioSignature.compute(authToken: token ?? fake.authToken, url: url, parameters: params)
            request.headers = [content, signature]
            return request
        }
        func status(_ value: String) -> [(String, String)] {
            [
                ("MessageSid", "SM9"), ("MessageStatus", value), ("SmsStatus", value), ("To", "+15125550100"), ("From", "+15125550199"),
                ("AccountSid", fake.accountSID), ("ApiVersion", "2010-04-01"), ("ChannelToAddress", "+1512555XXXX"),
            ]
        }
        let delivered = try await host.parseWebhook(webhook(status("delivered")), connection: "t1")
        #expect(delivered.verified && delivered.httpStatus == 200 && delivered.events.count == 1)
        guard case .deliveryStatus(let event)? = delivered.events.first?.kind else {
            Issue.record("expected a delivery status")
            return
        }
        #expect(event.state == .delivered && event.idempotencyKey == "key-9" && event.providerMessageID == "SM9")

        // A late "sent" must not move the message back.
        let late = try await host.parseWebhook(webhook(status("sent")), connection: "t1")
        #expect(late.verified && late.events.isEmpty)

        // Port spelled out by a proxy: still valid.
        let withPort = try await host.parseWebhook(
            webhook(status("read"), url: "https://hooks.example.com:443/webhooks/carriers/t1?ik=key-9"), connection: "t1")
        #expect(withPort.verified)

        let forged = try await host.parseWebhook(webhook(status("failed"), signedWith: "not-the-token"), connection: "t1")
        #expect(!forged.verified && forged.events.isEmpty && forged.httpStatus == 403)

        var tampered = webhook(status("delivered"))
        tampered.body += Array("&Extra=1".utf8)
        #expect(try await host.parseWebhook(tampered, connection: "t1").verified == false)

        let inbound = try await host.parseWebhook(
            webhook(
                [
                    ("MessageSid", "SMin1"), ("SmsStatus", "received"), ("From", "+15125550100"), ("To", "+15125550199"), ("Body", "ALTO"),
                    ("NumMedia", "1"), ("MediaUrl0", "https://api.twilio.com/media/ME1"), ("MediaContentType0", "image/jpeg"),
                    ("FromCity", "AUSTIN"), ("NumSegments", "1"),
                ], url: "https://hooks.example.com/webhooks/carriers/t1"),
            connection: "t1")
        #expect(inbound.verified && inbound.httpContentType == "text/xml")
        guard case .inboundMessage(let message)? = inbound.events.first?.kind else {
            Issue.record("expected an inbound message")
            return
        }
        #expect(message.body == "ALTO" && message.from == "+15125550100" && message.mediaUrls == ["https://api.twilio.com/media/ME1"])
        #expect(message.carrierEventID == "SMin1")

        // The callback taught the plugin the key's sid: QueryStatus needs no hints now.
        let sid = fake.addMessage(to: "+15125550100", from: "+15125550199", created: WallClock.now().seconds)
        _ = try await host.parseWebhook(
            webhook(
                [("MessageSid", sid), ("MessageStatus", "sent"), ("To", "+15125550100"), ("From", "+15125550199")],
                url: "https://hooks.example.com/webhooks/carriers/t1?ik=key-10"), connection: "t1")
        let known = try await host.queryStatus(idempotencyKey: "key-10", connection: "t1")
        #expect(known.found && known.providerMessageID == sid)
        await host.shutdown()
        await fake.close()
    }

    @Test func configureRejectsMissingCredentialsAndWarnsOnUnknownSettings() async throws {
        let host = TestSupport.twilioHost()
        try await host.start()
        let missing = await #expect(throws: CarrierError.self) {
            try await host.configure(connection: "t1", credentials: ["account_sid": FakeTwilio.testAccountSID])
        }
        #expect(missing?.code == .auth)
        let warnings = try await host.configure(
            connection: "t1", credentials: ["account_sid": FakeTwilio.testAccountSID, "auth_token": "x"], settings: ["colour": "blue"])
        #expect(warnings.count == 1 && warnings[0].contains("colour"))
        await host.shutdown()
    }
}

extension Google_Protobuf_Timestamp {
    static func seconds(_ value: Int64) -> Google_Protobuf_Timestamp {
        var timestamp = Google_Protobuf_Timestamp()
        timestamp.seconds = value
        return timestamp
    }
}
