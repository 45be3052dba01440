import Testing
import TowerProto

@testable import Tower

/// The keyset page tail and the field checks the services share, without a database.
@Suite("Shared helpers")
struct SharedHelpersTests {
    static func request(_ token: String) -> PageRequest {
        var request = PageRequest()
        request.pageToken = token
        return request
    }

    @Test func aPageHasANextTokenOnlyWhenARowWasLeftOver() throws {
        #expect(PageCursor.fetchLimit(2) == 3)
        let full = KeysetPage(["a", "b", "c"], size: 2)
        #expect(full.rows == ["a", "b"])
        #expect(full.hasMore)
        let fromRow = full.info { PageCursor(sortKey: $0, id: "row") }
        #expect(try PageCursor.decode(Self.request(fromRow.nextPageToken)) == PageCursor(sortKey: "b", id: "row"))
        let fromItem = full.info(last: full.rows.last?.uppercased()) { PageCursor(sortKey: $0, id: "item") }
        #expect(try PageCursor.decode(Self.request(fromItem.nextPageToken)) == PageCursor(sortKey: "B", id: "item"))
        #expect(fromRow.totalSize == -1)

        let last = KeysetPage(["a", "b"], size: 2)
        #expect(last.rows == ["a", "b"])
        #expect(!last.hasMore)
        #expect(last.info { PageCursor(sortKey: $0, id: "") }.nextPageToken.isEmpty)
        #expect(KeysetPage([String](), size: 2).info(last: nil as String?) { PageCursor(sortKey: $0, id: "") }.nextPageToken.isEmpty)
    }

    /// A time-ordered cursor gives back its keys; one whose keys do not parse is refused like a
    /// token this service never issued, naming the field.
    @Test func timeKeysParseOrAreRefusedAsForeignTokens() throws {
        let id = "0b9d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
        let key = try PageCursor(sortKey: "1764159000123456", id: id).timeKey()
        #expect(key.micros == 1_764_159_000_123_456 && key.id.text == id)
        for bad in [PageCursor(sortKey: "yesterday", id: id), PageCursor(sortKey: "1", id: "row 7")] {
            do {
                _ = try bad.timeKey()
                Issue.record("\(bad) was accepted")
            } catch let error as DomainError {
                #expect(error.code == .invalidArgument)
                #expect(error.message == "page.page_token: is not a token this service issued; pass next_page_token from the previous page")
            }
        }
    }

    @Test func namesAreCollapsedAndBounded() throws {
        #expect(try FieldCheck.name("  Spring\n  mailer ", maxLength: 200) == "Spring mailer")
        for bad in ["   ", String(repeating: "x", count: 101)] {
            #expect(throws: DomainError.self) { try FieldCheck.name(bad, field: "list.name", maxLength: 100) }
        }
        do {
            _ = try FieldCheck.name("", field: "list.name", maxLength: 100)
        } catch let error as DomainError {
            #expect(error.message == "list.name: must be 1 to 100 characters")
        }
    }

    @Test func idsAreCheckedLoweredAndKeptOnce() throws {
        let a = "8F4C5A7E-0B1D-4C2E-9A3F-1B2C3D4E5F60"
        let b = "0b9d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
        #expect(try FieldCheck.ids([a, b, a.lowercased()], field: "lead_ids") == [a.lowercased(), b])
        #expect(try FieldCheck.ids([], field: "sender_number_ids") == [])
        func message(_ body: () throws -> [String]) -> String? {
            do {
                _ = try body()
                return nil
            } catch {
                return (error as? DomainError)?.message
            }
        }
        #expect(message { try FieldCheck.ids([], field: "lead_ids", required: true) } == "lead_ids: name at least one id")
        #expect(message { try FieldCheck.ids([a, b], field: "tag_ids", max: 1) } == "tag_ids: at most 1 ids per call")
        #expect(
            message { try FieldCheck.ids([a, "nope"], field: "lead_ids") } == "lead_ids[1]: must be an id (UUID) as returned by this API")
    }
}
