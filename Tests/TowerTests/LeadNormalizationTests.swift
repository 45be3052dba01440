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
