import Foundation
import Hummingbird
import Testing

@testable import Remas

/// The JSON parser request bodies, Grafana's replies, templates and imported rows go through.
@Suite struct JSONParserTests {
    /// Request bodies used to go through Foundation's JSONDecoder: the parser reads them to the same values.
    @Test(arguments: [
        #"{"id":null,"name":"cl","description":null,"tag_ids":[],"start_time":"2030-01-01T10:00:00","end_time":"2030-01-01T11:00:00","resource_allocations":[{"node_id":1,"resource_id":2,"amount":3}]}"#,
        #"{"a": 1, "b": -0, "c": 2.5, "d": 1e3, "e": 1.0, "f": 9223372036854775807, "g": 9223372036854775808, "h": -1.5E-3}"#,
        #"{"s": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/", "u": "žluťoučký kůň"}"#,
        #"[true, false, null, "", [], {}, [[[]]]]"#, #"  "text"  "#, "12", "-7", "0.1",
    ])
    func readsBodiesAsJSONDecoderDid(_ text: String) throws {
        let ours = try JSONValue.parse(ByteBuffer(string: text))
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        // Both forms of a whole number (1e3 and 1000) read the same through BodyFields (`intValue`).
        func normalized(_ v: JSONValue) -> JSONValue {
            switch v {
            case .double(let d) where Int64(exactly: d) != nil: return .int(Int64(exactly: d)!)
            case .array(let a): return .array(a.map(normalized))
            case .object(let o): return .object(o.mapValues(normalized))
            default: return v
            }
        }
        #expect(normalized(ours) == normalized(foundation))
    }

    /// One difference, on purpose: a repeated key keeps its last value, as the original's Python `json` does
    /// (JSONDecoder kept the first).
    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try JSONValue.parse(ByteBuffer(string: #"{"amount": 1, "amount": 2}"#))["amount"] == .int(2))
    }

    /// Not JSON, not UTF-8, or a number no field can hold: 422 with the detail the API always gave.
    @Test(arguments: [Array(#"{"name": "a"#.utf8), [0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D], Array("[1e400]".utf8)])
    func refusesBadBodiesWith422(_ bytes: [UInt8]) {
        do {
            _ = try JSONValue.parse(ByteBuffer(bytes: bytes))
            Issue.record("parsed")
        } catch let error as AppError {
            #expect(error.status == .unprocessableContent)
            #expect(error.detail == "JSON decode error: the request body is not valid JSON")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func parsesWhatFoundationParses() throws {
        let text = #" {"a": [1, -2, 3.5, 1e3, -0.25E-2, true, false, null], "s": "q\"b\\s\/n\n\t\u00e9\ud83d\ude00", "o": {}, "e": [], "big": 9007199254740993} "#
        let value = try JSONValue.parse(text: Array(text.utf8))
        #expect(value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .double(-0.0025), .bool(true), .bool(false), .null]))
        #expect(value["s"] == .string("q\"b\\s/n\n\té😀"))
        #expect(value["o"] == .object([:]) && value["e"] == .array([]))
        #expect(value["big"] == .int(9_007_199_254_740_993))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\u{01}\"", "\"\\ud800\"", "tru", "[1] 2", "{\"a\":1,}"])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue.parse(text: Array(text.utf8)) }
    }
}
