import Testing
import TowerProto

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

    @Test func anExplicitCustomEntryForAnExportColumnKeepsTheKey() throws {
        func entry(_ column: String, _ field: LeadField) -> ColumnMappingEntry {
            var entry = ColumnMappingEntry()
            entry.column = column
            entry.field = field
            return entry
        }
        let plan = try LeadServiceImpl.plan(
            headers: ["Phone 1", "Custom: Notes", "Remarks"],
            mapping: [entry("Phone 1", .phone1), entry("custom:  notes", .custom), entry("Remarks", .custom)])
        #expect(plan.columns.map(\.target) == [.field(.phone1, phoneKind: nil), .custom("notes"), .custom("Remarks")])
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
