import Foundation
import Testing
import TowerProto
import TowerProtoRuntime
import TowerRPC
import TowerStore

@testable import Tower

/// NumberService against the real database, and the area-code reference table.
@Suite("Sender numbers")
struct NumberServiceTests {
    @Test func poolLifecycle() async throws {
        let f = try await CampaignFixture.make(name: "Numbers")
        let numbers = f.numbers
        var add = AddNumberRequest()
        add.carrierConnectionID = f.connectionID
        add.phone = CampaignFixture.uniquePhone()
        let warming = try await numbers.addNumber(add, options: f.options)
        #expect(warming.state == .warming)
        #expect(warming.kind == .longCode)
        #expect(warming.messagesPerSecond == 1)
        #expect(warming.dailyCap == 200)  // the org's default
        #expect(warming.areaCode == "737")

        add.phone = "+1888" + String(format: "%07d", Int.random(in: 2_000_000...9_999_999))
        add.kind = .tollFree
        add.initialState = .active
        add.dailyCap = 5000
        let tollFree = try await numbers.addNumber(add, options: f.options)
        #expect(tollFree.state == .active)
        #expect(tollFree.messagesPerSecond == 3)
        #expect(tollFree.dailyCap == 5000)

        // The same number cannot be held twice.
        #expect(await status { try await numbers.addNumber(add, options: f.options) } == .alreadyExists)
        var bad = AddNumberRequest()
        bad.carrierConnectionID = "nope"
        bad.phone = "512-555-0100"
        bad.messagesPerSecond = 0
        bad.initialState = .released
        let invalid = await rpcError { try await numbers.addNumber(bad, options: f.options) }
        #expect(invalid?.code == .invalidArgument)
        for field in ["carrier_connection_id", "phone", "messages_per_second", "initial_state"] {
            #expect(invalid?.message.contains(field) == true, "\(field) not named")
        }

        var update = UpdateNumberRequest()
        update.phoneNumberID = warming.id
        update.state = .quarantined
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["state"]
        let noReason = await rpcError { try await numbers.updateNumber(update, options: f.options) }
        #expect(noReason?.message.contains("quarantine_reason") == true)
        update.quarantineReason = "30007 filtering spike"
        update.messagesPerSecond = 0.5
        update.updateMask?.paths = ["state", "messages_per_second"]
        let quarantined = try await numbers.updateNumber(update, options: f.options)
        #expect(quarantined.state == .quarantined)
        #expect(quarantined.quarantineReason == "30007 filtering spike")
        #expect(quarantined.quarantineTime != nil)
        #expect(quarantined.messagesPerSecond == 0.5)
        update.state = .active
        update.updateMask?.paths = ["state"]
        let back = try await numbers.updateNumber(update, options: f.options)
        #expect(back.state == .active)
        #expect(back.quarantineReason == "")

        var release = ReleaseNumberRequest()
        release.phoneNumberID = warming.id
        let released = try await numbers.releaseNumber(release, options: f.options)
        #expect(released.state == .released)
        #expect(released.releaseTime != nil)
        #expect(await status { try await numbers.releaseNumber(release, options: f.options) } == .failedPrecondition)
        #expect(await status { try await numbers.updateNumber(update, options: f.options) } == .failedPrecondition)

        let listed = try await numbers.listNumbers(ListNumbersRequest(), options: f.options).numbers.map(\.id)
        #expect(Set(listed) == [f.numberID, tollFree.id])
        var onlyReleased = ListNumbersRequest()
        onlyReleased.states = [.released]
        #expect(try await numbers.listNumbers(onlyReleased, options: f.options).numbers.map(\.id) == [warming.id])
        // Released, the number can be registered again.
        add.phone = warming.phone
        add.kind = .longCode
        #expect(try await numbers.addNumber(add, options: f.options).state == .active)
    }

    @Test func otherTenantsNumbersAndConnectionsAreNotFound() async throws {
        let a = try await CampaignFixture.make(name: "Tenant A numbers")
        let b = try await CampaignFixture.make(name: "Tenant B numbers")
        var add = AddNumberRequest()
        add.carrierConnectionID = b.connectionID
        add.phone = CampaignFixture.uniquePhone()
        #expect(await status { try await a.numbers.addNumber(add, options: a.options) } == .notFound)
        var update = UpdateNumberRequest()
        update.phoneNumberID = b.numberID
        update.dailyCap = 1
        update.updateMask = Google_Protobuf_FieldMask()
        update.updateMask?.paths = ["daily_cap"]
        #expect(await status { try await a.numbers.updateNumber(update, options: a.options) } == .notFound)
        var release = ReleaseNumberRequest()
        release.phoneNumberID = b.numberID
        #expect(await status { try await a.numbers.releaseNumber(release, options: a.options) } == .notFound)
        #expect(try await a.numbers.listNumbers(ListNumbersRequest(), options: a.options).numbers.map(\.id) == [a.numberID])
        let bNumbers = try await b.numbers.listNumbers(ListNumbersRequest(), options: b.options).numbers
        #expect(bNumbers.map(\.state) == [.active])
        #expect(bNumbers.map(\.dailyCap) == [200])
    }

    @Test func areaCodesAreReferenceDataTheAppCannotChange() async throws {
        let env = try await IdentityEnvironment.get()
        let rows = try await env.store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT area_code, region_code, zones FROM area_codes WHERE area_code IN ('850', '915', '405', '212')")
                .map { (try $0.decode(0, as: String.self), try $0.decode(1, as: String.self), try $0.decode(2, as: [String].self)) }
        }
        let table = Dictionary(uniqueKeysWithValues: rows.map { ($0.0, ($0.1, $0.2)) })
        #expect(table["850"]?.0 == "FL")
        #expect(Set(table["850"]?.1 ?? []) == ["America/Chicago", "America/New_York"])
        #expect(table["915"]?.1 == ["America/Denver"])
        #expect(table["405"]?.0 == "OK")
        #expect(table["212"]?.1 == ["America/New_York"])
        // Every zone named is one the system knows, and every US code's region is a state Swift knows.
        let all = try await env.store.withTransaction(tenant: nil) { tx in
            try await tx.query("SELECT area_code, region_code, country, zones FROM area_codes")
                .map { (try $0.decode(1, as: String.self), try $0.decode(2, as: String.self), try $0.decode(3, as: [String].self)) }
        }
        #expect(all.count > 400)
        for (region, country, zones) in all {
            for zone in zones { #expect(TimeZone(identifier: zone) != nil, "\(zone) is not a known zone") }
            if country == "US" { #expect(QuietHours.zones(forState: region) != nil, "\(region) has no state zones") }
        }
        let change = await #expect(throws: StoreError.self) {
            try await env.store.withTransaction(tenant: nil) { tx in
                try await tx.execute("UPDATE area_codes SET zones = '{America/New_York}' WHERE area_code = '915'")
            }
        }
        #expect(change?.code == .permissionDenied)
    }
}
