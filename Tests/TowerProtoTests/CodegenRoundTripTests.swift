import InteropProto
import Testing
import TowerProto
import TowerProtoRuntime

/// Every proto feature the generator supports, populated with values that stress each conversion.
func sampleEverything() -> Ctower_Testing_V1_Everything {
    var e = Ctower_Testing_V1_Everything()
    e.fInt32 = -123_456
    e.fInt64 = Int64.min + 1
    e.fUint32 = UInt32.max
    e.fUint64 = UInt64.max
    e.fSint32 = -7
    e.fSint64 = -9_007_199_254_740_993
    e.fFixed32 = 0xDEAD_BEEF
    e.fFixed64 = 0x0123_4567_89AB_CDEF
    e.fSfixed32 = -1
    e.fSfixed64 = Int64.max
    e.fFloat = 1.5
    e.fDouble = -2.25e-10
    e.fBool = true
    e.fString = "héllo ☺ 😈 \"quoted\" \\ \n"
    e.fBytes = [0, 1, 2, 0xFF, 0x80]
    e.fColor = .blue
    e.fInner = .init()
    e.fInner?.label = "inner"
    e.fInner?.weight = 42
    e.fMood = .grumpy
    e.rInt32 = [1, -2, 3]
    e.rInt64 = [Int64.max, Int64.min]
    e.rString = ["a", "", "ü"]
    e.rBytes = [[], [1], [2, 3]]
    e.rColor = [.red, .unrecognized(99), .green]
    var inner = Ctower_Testing_V1_Everything.Inner()
    inner.label = "x"
    e.rInner = [inner, .init()]
    e.rDouble = [0.5, -0.0, 1e300]
    e.rBool = [true, false, true]
    e.rUint64 = [0, UInt64.max]
    e.mStringString = ["k": "v", "": "empty key", "ñ": "ü"]
    e.mStringInner = ["one": inner]
    e.mInt64Int32 = [-5: 5, Int64.max: Int32.min]
    e.mBoolColor = [true: .red, false: .blue]
    e.choice = .cInner(inner)
    var ts = Google_Protobuf_Timestamp()
    ts.seconds = 1_795_000_000
    ts.nanos = 123_000_000
    e.wTimestamp = ts
    var d = Google_Protobuf_Duration()
    d.seconds = 90
    d.nanos = 500_000_000
    e.wDuration = d
    var mask = Google_Protobuf_FieldMask()
    mask.paths = ["lead.first_name", "tags"]
    e.wFieldMask = mask
    e.wEmpty = .init()
    e.wString = ""
    e.wInt64 = -3
    e.wBool = false
    e.wDouble = 3.5
    e.wUint32 = 7
    e.wBytes = [9, 9]
    e.rTimestamp = [ts, .init()]
    return e
}

@Suite("Generated messages round-trip through protobuf-c and proto3 JSON")
struct CodegenRoundTripTests {
    @Test func everyFieldSurvivesBinary() throws {
        let e = sampleEverything()
        let bytes = e.protobufBytes()
        #expect(!bytes.isEmpty)
        let decoded = try Ctower_Testing_V1_Everything(protobufBytes: bytes)
        #expect(decoded == e)
    }

    @Test func everyFieldSurvivesJSON() throws {
        let e = sampleEverything()
        let text = e.jsonString()
        let decoded = try Ctower_Testing_V1_Everything(jsonString: text)
        #expect(decoded == e)
    }

    @Test func defaultMessageEncodesToNothing() throws {
        let e = Ctower_Testing_V1_Everything()
        #expect(e.protobufBytes().isEmpty)
        #expect(e.jsonString() == "{}")
        #expect(try Ctower_Testing_V1_Everything(protobufBytes: []) == e)
    }

    @Test func wrappersKeepPresenceOfDefaultValues() throws {
        var e = Ctower_Testing_V1_Everything()
        e.wString = ""
        e.wBool = false
        let decoded = try Ctower_Testing_V1_Everything(protobufBytes: e.protobufBytes())
        #expect(decoded.wString == "")
        #expect(decoded.wBool == false)
        #expect(decoded.wInt64 == nil)
        #expect(e.jsonString() == #"{"wString":"","wBool":false}"#)
    }

    @Test func oneofCarriesEachCase() throws {
        let cases: [Ctower_Testing_V1_Everything.Choice] = [.cText(""), .cNumber(-1), .cColor(.unspecified), .cBlob([1]), .cInner(.init())]
        for c in cases {
            var e = Ctower_Testing_V1_Everything()
            e.choice = c
            #expect(try Ctower_Testing_V1_Everything(protobufBytes: e.protobufBytes()).choice == c)
            #expect(try Ctower_Testing_V1_Everything(jsonString: e.jsonString()).choice == c)
        }
    }

    @Test func recursiveMessagesNest() throws {
        var leaf = Ctower_Testing_V1_Tree()
        leaf.name = "leaf"
        var root = Ctower_Testing_V1_Tree()
        root.name = "root"
        root.children = [leaf, leaf]
        root.parentHint = leaf
        let decoded = try Ctower_Testing_V1_Tree(protobufBytes: root.protobufBytes())
        #expect(decoded == root)
        #expect(decoded.parentHint?.name == "leaf")
        #expect(try Ctower_Testing_V1_Tree(jsonString: root.jsonString()) == root)
    }

    @Test func unknownEnumValuesSurvive() throws {
        var e = Ctower_Testing_V1_Everything()
        e.fColor = .unrecognized(1234)
        let decoded = try Ctower_Testing_V1_Everything(protobufBytes: e.protobufBytes())
        #expect(decoded.fColor == .unrecognized(1234))
        #expect(decoded.fColor.rawValue == 1234)
        #expect(e.jsonString() == #"{"fColor":1234}"#)
    }

    @Test func garbageBytesAreRejected() {
        // Field 1 as a length-delimited value longer than the buffer.
        #expect(throws: ProtoDecodingError.self) { try Ctower_Testing_V1_Everything(protobufBytes: [0x0A, 0x50, 0x01]) }
        // Truncated varint.
        #expect(throws: ProtoDecodingError.self) { try Ctower_Testing_V1_Everything(protobufBytes: [0x08, 0xFF]) }
    }
}

@Suite("proto3 JSON mapping")
struct JSONMappingTests {
    @Test func canonicalForms() throws {
        var e = Ctower_Testing_V1_Everything()
        e.fInt64 = 5
        e.fBytes = [0xFB, 0xFF]
        e.fColor = .green
        e.fDouble = .infinity
        var ts = Google_Protobuf_Timestamp()
        ts.seconds = 0
        ts.nanos = 10_000_000
        e.wTimestamp = ts
        var d = Google_Protobuf_Duration()
        d.seconds = -1
        d.nanos = -500_000_000
        e.wDuration = d
        var mask = Google_Protobuf_FieldMask()
        mask.paths = ["user.display_name", "id"]
        e.wFieldMask = mask
        let json = e.jsonValue()
        #expect(json["fInt64"] == .string("5"))
        #expect(json["fBytes"] == .string("+/8="))
        #expect(json["fColor"] == .string("COLOR_GREEN"))
        #expect(json["fDouble"] == .string("Infinity"))
        #expect(json["wTimestamp"] == .string("1970-01-01T00:00:00.010Z"))
        #expect(json["wDuration"] == .string("-1.500s"))
        #expect(json["wFieldMask"] == .string("user.displayName,id"))
    }

    @Test func acceptsOriginalFieldNamesAndNumericStrings() throws {
        let e = try Ctower_Testing_V1_Everything(
            jsonString: #"{"f_int32": "12", "fInt64": 7, "f_color": 2, "fBool": true, "m_int64_int32": {"-4": 4}}"#)
        #expect(e.fInt32 == 12)
        #expect(e.fInt64 == 7)
        #expect(e.fColor == .green)
        #expect(e.fBool)
        #expect(e.mInt64Int32 == [-4: 4])
    }

    @Test func unknownFieldIsNamed() {
        do {
            _ = try Ctower_Testing_V1_Everything(jsonString: #"{"fInt32": 1, "nope": 2}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("\"nope\""))
        }
    }

    @Test func wrongTypeNamesTheField() {
        do {
            _ = try Ctower_Testing_V1_Everything(jsonString: #"{"fInt32": "many"}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("fInt32"))
        }
    }

    @Test func outOfRangeIntegerIsRejected() {
        #expect(throws: ProtoDecodingError.self) { try Ctower_Testing_V1_Everything(jsonString: #"{"fInt32": 2147483648}"#) }
        #expect(throws: ProtoDecodingError.self) { try Ctower_Testing_V1_Everything(jsonString: #"{"fUint32": -1}"#) }
    }

    @Test func twoOneofMembersAreRejected() {
        #expect(throws: ProtoDecodingError.self) { try Ctower_Testing_V1_Everything(jsonString: #"{"cText": "a", "cNumber": "1"}"#) }
    }

    @Test func timestampsParseWithOffsetsAndFractions() throws {
        #expect(try WellKnownJSON.parseTimestamp("2026-11-26T09:15:00Z") == (1_795_684_500, 0))
        #expect(try WellKnownJSON.parseTimestamp("2026-11-26T10:15:00.5+01:00") == (1_795_684_500, 500_000_000))
        #expect(try WellKnownJSON.parseTimestamp("0001-01-01T00:00:00Z").0 == -62_135_596_800)
        #expect(WellKnownJSON.formatTimestamp(seconds: 1_795_684_500, nanos: 1) == "2026-11-26T09:15:00.000000001Z")
        #expect(WellKnownJSON.formatTimestamp(seconds: -1, nanos: 0) == "1969-12-31T23:59:59Z")
        #expect(throws: ProtoDecodingError.self) { try WellKnownJSON.parseTimestamp("2026-13-01T00:00:00Z") }
        #expect(throws: ProtoDecodingError.self) { try WellKnownJSON.parseTimestamp("2026-11-26 09:15:00") }
    }

    @Test func durationsParse() throws {
        #expect(try WellKnownJSON.parseDuration("1.5s") == (1, 500_000_000))
        #expect(try WellKnownJSON.parseDuration("-0.000001s") == (0, -1000))
        #expect(throws: ProtoDecodingError.self) { try WellKnownJSON.parseDuration("1.5") }
        #expect(throws: ProtoDecodingError.self) { try WellKnownJSON.parseDuration("1.1234567891s") }
    }

    @Test func base64AcceptsPaddedUnpaddedAndURLSafe() {
        #expect(Base64.decode("+/8=") == [0xFB, 0xFF])
        #expect(Base64.decode("+/8") == [0xFB, 0xFF])
        #expect(Base64.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64.decode("a") == nil)
        #expect(Base64.decode("ab$d") == nil)
        #expect(Base64.encode([0xFB, 0xFF], padded: false) == "+/8")
    }

    @Test func jsonParserRejectsHostileInput() {
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(String(repeating: "[", count: 1000)) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(#"{"a": 1,}"#) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(#""\ud800""#) }
        #expect((try? JSONValue.parse(#""\ud83d\ude08""#)) == .string("😈"))
    }
}
