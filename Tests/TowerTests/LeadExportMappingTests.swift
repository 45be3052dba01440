import Testing

@testable import Tower

/// How an export's header row maps back on import, and how the export writes header fields.
@Suite("Lead export mapping")
struct LeadExportMappingTests {
    @Test func exportColumnsMapBackWithoutTakingAFieldsSlot() {
        let headers = [
            "First Name", "Phone 1", "Custom: Phone note", "Phone 1 Type", "Tags", "Score", "Lead Status", "Lead ID", "Custom: Notes",
            "custom:Source", "Custom:", "Notes", "Cell",
        ]
        let plan = LeadImportPlan.suggested(headers: headers)
        #expect(
            plan.columns.map(\.target) == [
                .field(.firstName, phoneKind: nil), .field(.phone1, phoneKind: nil), .custom("Phone note"),
                .field(.phone1Type, phoneKind: nil), .ignore, .ignore, .ignore, .ignore, .custom("Notes"), .custom("Source"),
                .custom("Custom:"), .custom("Notes"), .field(.phone2, phoneKind: .mobile),
            ])
    }

    @Test func customKeyStripsOnlyTheExportPrefix() {
        #expect(LeadImportPlan.customKey(header: "Custom: Lead Source") == "Lead Source")
        #expect(LeadImportPlan.customKey(header: "CUSTOM: a") == "a")
        #expect(LeadImportPlan.customKey(header: "Customer") == "Customer")
        #expect(LeadImportPlan.customKey(header: "Custom:") == "Custom:")
    }

    @Test func headerFieldsAreQuotedOnlyWhenTheyMustBe() {
        #expect(LeadServiceImpl.csvField("Custom: Notes") == "Custom: Notes")
        #expect(LeadServiceImpl.csvField("a, \"b\"") == "\"a, \"\"b\"\"\"")
        #expect(LeadServiceImpl.csvField("two\nlines") == "\"two\nlines\"")
        #expect(LeadServiceImpl.csvField(" padded") == "\" padded\"")
    }
}
