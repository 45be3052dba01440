import Foundation
import Testing

@testable import TowerStore

@Suite("SQL building and value codecs (no database)")
struct UnitTests {
    @Test("interpolated values become numbered parameters; raw text needs a label")
    func interpolation() {
        let county = "Travis'; --"
        let minimum = 50
        let filter: SQL = "county = \(county) AND score >= \(minimum)"
        let sql: SQL = "SELECT * FROM \(identifier: "le\"ads") WHERE \(filter) ORDER BY \(unsafeRaw: "created_at") LIMIT \(10)"
        #expect(sql.text == "SELECT * FROM \"le\"\"ads\" WHERE county = $1 AND score >= $2 ORDER BY created_at LIMIT $3")
        #expect(sql.bindings.count == 3)
        #expect(sql.description.contains("Travis") == false)
        let joined = SQL.join(["a = \(1)", "b = \(2)"], separator: " AND ")
        #expect(joined.text == "a = $1 AND b = $2")
        let none: Int? = nil
        let optional: SQL = "x = \(none)"
        #expect(optional.bindings == [.null(typeOID: PostgresType.int8)])
    }

    @Test("timestamps format and parse with offsets")
    func timestamps() {
        let date = Date(timeIntervalSince1970: 1_700_000_000.25)
        #expect(PostgresTimestamp.format(date) == "2023-11-14T22:13:20.250000Z")
        #expect(PostgresTimestamp.parse("2023-11-14 22:13:20.25+00") == date)
        #expect(PostgresTimestamp.parse("2023-11-15 03:43:20.25+05:30") == date)
        #expect(PostgresTimestamp.parse("2023-11-14 19:13:20.25-03") == date)
        #expect(PostgresTimestamp.parse("1969-12-31 23:59:59+00") == Date(timeIntervalSince1970: -1))
        #expect(PostgresTimestamp.parse("infinity") == nil)
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000000Z")
    }

    @Test("arrays and bytea")
    func arraysAndBytes() {
        #expect(["a", "b c", "q\"x", "back\\slash"].sqlBinding.textForm == #"{"a","b c","q\"x","back\\slash"}"#)
        #expect(PostgresArrayText.parse(#"{a,"b c","q\"x",NULL,"NULL"}"#) == ["a", "b c", "q\"x", nil, "NULL"])
        #expect(PostgresArrayText.parse("{}") == [])
        #expect([UInt8](byteaText: "\\x00ff10") == [0, 255, 16])
        #expect([UInt8](byteaText: "00ff") == nil)
    }

    @Test("COPY text rows escape and parse back")
    func copyText() {
        let rows: [[String?]] = [["a\tb", nil, "c\\d\ne"], ["", "x", "\r"]]
        var bytes: [UInt8] = []
        for row in rows { CopyText.appendRow(row, to: &bytes) }
        #expect(String(decoding: bytes, as: UTF8.self) == "a\\tb\t\\N\tc\\\\d\\ne\n\tx\t\\r\n")
        #expect(CopyText.parseRows(bytes) == rows)
    }

    @Test("PostgreSQL errors map to codes without echoing values")
    func errorMapping() {
        let unique = StoreError(server: .init(sqlState: "23505", primaryMessage: "duplicate key", constraint: "users_email_unique"))
        #expect(unique.code == .alreadyExists)
        #expect(unique.message == "a user with this e-mail address already exists")
        let syntax = StoreError(
            server: .init(sqlState: "22P02", primaryMessage: "invalid input syntax for type uuid: \"secret\""))
        #expect(syntax.code == .invalidValue)
        #expect(syntax.message.contains("secret") == false)
        #expect(syntax.message.contains("uuid"))
        let sameOrg = StoreError(
            server: .init(sqlState: "23503", constraint: "lead_phones_lead_same_org", table: "lead_phones"))
        #expect(sameOrg.message == "the lead does not exist in this org, or is still in use")
        #expect(StoreError(server: .init(sqlState: "57014"), taskCancelled: true).code == .cancelled)
        #expect(StoreError(server: .init(sqlState: "57014")).code == .timeout)
        #expect(StoreError(server: .init(sqlState: "57P01")).code == .unavailable)
        #expect(StoreError(server: .init(sqlState: "40001")).isRetryableConflict)
    }

    @Test("missing PostgreSQL binaries give the one-line install hint")
    func missingBinaries() {
        let error = #expect(throws: StoreError.self) {
            _ = try EmbeddedPostgres.findBinaries("/nonexistent", searchSystem: false)
        }
        #expect(
            error?.message
                == "PostgreSQL server binaries not found: install the Debian package postgresql (apt-get install postgresql)")
    }
}
