import Foundation
import Testing
import TowerCarrierHost
import TowerProto

@testable import TwilioCarrier

/// Twilio prices a message (negative decimal `price`, `price_unit`) only once it is done; the
/// plugin reports the price in micro-units wherever Twilio gives it.
@Suite("Twilio prices")
struct TwilioPriceTests {
    @Test(arguments: [
        ("-0.00790", "USD", Int64(7_900)), ("-0.0079", "usd", 7_900), ("0.12", "EUR", 120_000), ("-1.5", "GBP", 1_500_000),
        ("-0.0000004", "USD", 0), ("-.25", "USD", 250_000),
    ])
    func pricesParseToMicros(_ price: String, _ unit: String, _ micros: Int64) {
        let parsed = TwilioPrice.parse(price: price, unit: unit)
        #expect(parsed?.amountMicros == micros && parsed?.currency == unit.uppercased())
    }

    @Test(arguments: [(String?.none, "USD"), ("", "USD"), ("-0.0079", ""), ("abc", "USD"), ("-0.00x", "USD"), ("-0.0079", "US1")])
    func unpricedOrMalformedIsNil(_ price: String?, _ unit: String) {
        #expect(TwilioPrice.parse(price: price, unit: unit) == nil)
    }

    @Test func queryStatusReportsThePriceOnceTwilioHasOne() async throws {
        let fake = try await FakeTwilio()
        let host = try await TestSupport.configuredHost(fake)
        let sent = try await host.send(TestSupport.message("key-price"), connection: "t1")
        #expect(sent.price == nil)  // Twilio's answer to a create has no price yet
        let before = try await host.queryStatus(idempotencyKey: "key-price", connection: "t1")
        #expect(before.found && before.price == nil)
        fake.setStatus(sent.providerMessageID, "delivered")
        fake.setPrice(sent.providerMessageID, "-0.00790")
        let after = try await host.queryStatus(idempotencyKey: "key-price", connection: "t1")
        #expect(after.state == .delivered && after.price?.amountMicros == 7_900 && after.price?.currency == "USD")
        await host.shutdown()
        await fake.close()
    }
}
