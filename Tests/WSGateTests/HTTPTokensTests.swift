import NIOHTTP1
import Testing
@testable import WSGate

/// Token lists as RFC 9110 §5.6.1 writes them: any case, optional spaces and tabs, empty elements,
/// several fields with the same name.
@Suite struct HTTPTokensTests {
    @Test func listsEveryElementOfEveryFieldTrimmedWithEmptyOnesDropped() {
        let headers = HTTPHeaders([
            ("Sec-WebSocket-Protocol", " chat ,\tsuperchat,, "),
            ("Host", "a, b"),
            ("sec-websocket-protocol", "v2.mqtt"),
            ("SEC-WEBSOCKET-PROTOCOL", ""),
        ])
        #expect(HTTPTokens.list(headers, "sec-websocket-protocol") == ["chat", "superchat", "v2.mqtt"])
        #expect(HTTPTokens.list(headers, "connection").isEmpty)
    }

    @Test func keepsNonASCIIElementsWhole() {
        let headers = HTTPHeaders([("X-List", "é , ü\t,日本")])
        #expect(HTTPTokens.list(headers, "x-list") == ["é", "ü", "日本"])
    }

    @Test func findsATokenInAnyCaseInAnyField() {
        let headers = HTTPHeaders([("Connection", "keep-alive"), ("CONNECTION", "  Upgrade\t")])
        #expect(HTTPTokens.contains(headers, "connection", token: "upgrade"))
        #expect(HTTPTokens.contains(headers, "connection", token: "keep-alive"))
        #expect(!HTTPTokens.contains(headers, "connection", token: "close"))
        #expect(!HTTPTokens.contains(headers, "upgrade", token: "upgrade"))
    }

    @Test func matchesWholeElementsOnly() {
        let headers = HTTPHeaders([("Upgrade", "websocket2, xwebsocket, web socket")])
        #expect(!HTTPTokens.contains(headers, "upgrade", token: "websocket"))
        #expect(HTTPTokens.contains(HTTPHeaders([("Upgrade", "h2c,WebSocket")]), "upgrade", token: "websocket"))
    }

    @Test(arguments: ["", " ", "\t \t", ",", " , ,"])
    func blankValuesHoldNoElements(_ value: String) {
        #expect(HTTPTokens.list(HTTPHeaders([("Connection", value)]), "connection").isEmpty)
    }
}
