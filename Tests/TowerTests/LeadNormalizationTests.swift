import Testing
import Tower

@Suite("Lead normalization")
struct LeadNormalizationTests {
    @Test(arguments: [
        ("(512) 867-5309", "+15128675309"), ("512.867.5309", "+15128675309"), ("+1 512 867 5309", "+15128675309"),
        ("15128675309", "+15128675309"), ("512-867-5309 ext 44", "+15128675309"), ("512 867 5309 x2", "+15128675309"),
        ("  2125551234 ", "+12125551234"),
    ])
    func acceptsCommonShapes(_ raw: String, _ expected: String) {
        #expect(PhoneNumberNormalizer.normalize(raw) == .success(expected))
    }

    @Test(arguments: [
        ("", PhoneNumberNormalizer.Rejection.empty), ("867-5309", PhoneNumberNormalizer.Rejection.wrongLength),
        ("25128675309", .wrongLength),
        ("(112) 867-5309", .invalidAreaCode), ("(911) 867-5309", .serviceAreaCode), ("(512) 167-5309", .invalidExchange),
        ("(512) 411-5309", .serviceExchange), ("(512) 555-0123", .fictional), ("(800) 867-5309", .tollFreeOrPremium),
        ("call me", .empty),
    ])
    func rejectsWithAReason(_ raw: String, _ reason: PhoneNumberNormalizer.Rejection) {
        #expect(PhoneNumberNormalizer.normalize(raw) == .failure(reason))
    }

    @Test func namesAreCasedOnlyWhenTheFileShouts() {
        #expect(LeadFieldNormalizer.name("  JOHN   O'BRIEN ") == "John O'Brien")
        #expect(LeadFieldNormalizer.name("mary-jo mcdonald") == "Mary-Jo McDonald")
        #expect(LeadFieldNormalizer.name("DeShawn van der Berg") == "DeShawn van der Berg")
        #expect(LeadFieldNormalizer.name("JOSÉ NÚÑEZ") == "José Núñez")
    }

    @Test func statesBecomeUSPSCodes() {
        #expect(LeadFieldNormalizer.stateCode("tx") == "TX")
        #expect(LeadFieldNormalizer.stateCode("Texas") == "TX")
        #expect(LeadFieldNormalizer.stateCode("N. Carolina") == "NC")
        #expect(LeadFieldNormalizer.stateCode(" new   mexico ") == "NM")
        #expect(LeadFieldNormalizer.stateCode("Puerto Rico") == "PR")
        #expect(LeadFieldNormalizer.stateCode("Texxas") == nil)
        #expect(LeadFieldNormalizer.stateCode("XX") == nil)
    }

    @Test func countiesDropTheirSuffix() {
        #expect(LeadFieldNormalizer.county("TRAVIS COUNTY") == "Travis")
        #expect(LeadFieldNormalizer.county("st. landry parish") == "St. Landry")
        #expect(LeadFieldNormalizer.county("Matanuska-Susitna Borough") == "Matanuska-Susitna")
        #expect(LeadFieldNormalizer.county("County") == "County")
    }

    @Test func headersAreMappedToFields() {
        let headers = [
            "Owner First Name", "Owner Last Name", "Mailing Address", "Mailing City", "Mailing State", "Mailing Zip",
            "Property Address", "Property State", "County", "APN", "Lot Acres", "Phone 1", "Phone 2", "Cell", "Notes",
        ]
        let mapped = ColumnMapping.suggest(headers: headers)
        #expect(
            mapped == [
                .firstName, .lastName, .mailingAddress, .mailingCity, .mailingState, .mailingZip, .propertyAddress, .propertyState, .county,
                .apn, .acreage, .phone1, .phone2, .phone3, nil,
            ])
    }
}

@Suite("Lead row normalisation")
struct LeadRowNormalizerTests {
    static let plan = LeadImportPlan.suggested(
        headers: ["Owner Name", "Cell Phone", "Phone 2", "Phone 2 Type", "Mailing Zip", "Lot Acres", "Opt-in Date", "Notes"])

    @Test func cleansEveryFieldAndKeepsFreeText() {
        let row = LeadRowNormalizer(plan: Self.plan).normalize([
            "  MARY   O'BRIEN ", "(512) 867-5309", "512.867.5309", "", "7301", "1,250 acres", "05/01/2024", " line 1\n  line 2 ",
        ])
        #expect(row.ownerName == "Mary O'Brien")
        // The same number twice is one phone; the cell column's header says mobile.
        #expect(row.phones.map { "\($0.e164) \($0.type)" } == ["+15128675309 mobile"])
        #expect(row.mailingZip == "07301")
        #expect(row.acreage == "1250")
        #expect(row.consentTime == "2024-05-01T00:00:00Z")
        #expect(row.customFields.map(\.1) == ["line 1\n  line 2"])
        #expect(row.problems.isEmpty)
        #expect(row.isValid)
    }

    @Test func aTypeColumnOverridesTheHeaderAndBadValuesAreReported() {
        let row = LeadRowNormalizer(plan: Self.plan).normalize([
            "Ann", "555-0100", "214 867 5311", "LAND LINE", "abc", "-3", "2024-02-30", "",
        ])
        #expect(row.phones.map { "\($0.e164) \($0.type)" } == ["+12148675311 landline"])
        #expect(
            row.problems.map(\.column) == ["Mailing Zip", "Lot Acres", "Opt-in Date", "Cell Phone"])
        #expect(row.mailingZip == nil && row.acreage == nil && row.consentTime == nil)
    }

    @Test func anExplicitMappingNamesEachMistake() {
        let headers = ["Name", "Phone", "Phone"]
        func problems(_ requests: [LeadImportPlan.Request]) -> [String] {
            do {
                _ = try LeadImportPlan.resolve(headers: headers, requests: requests)
                return []
            } catch {
                return error.problems.map { "\($0.field): \($0.fix)" }
            }
        }
        let phone = LeadImportPlan.Target.field(.phone1, phoneKind: nil)
        #expect(
            problems([.init(column: "Phone", target: phone)]) == [
                "column_mapping[0].column: \"Phone\" names 2 columns of the header row; rename them so each header is unique"
            ])
        #expect(problems([.init(column: "Name", target: .custom("Name"))]).first?.hasPrefix("column_mapping: no column is mapped") == true)
        #expect(problems([.init(column: " name ", target: phone)]).isEmpty)
    }
}
