import Testing
@testable import WSGate

@Suite struct DeflateNegotiationTests {
    static let on: CompressionSettings = {
        var settings = CompressionSettings()
        settings.enabled = true
        return settings
    }()

    func negotiate(_ header: String..., settings: CompressionSettings = Self.on) -> DeflateParameters? {
        DeflateNegotiation.negotiate(header, settings: settings)
    }

    @Test func plainOfferIsAcceptedAsIs() throws {
        let accepted = try #require(negotiate("permessage-deflate"))
        #expect(accepted.responseHeader == "permessage-deflate")
        #expect(accepted.serverWindowBits == 15 && accepted.clientWindowBits == 15)
        #expect(!accepted.serverNoContextTakeover && !accepted.clientNoContextTakeover)
    }

    @Test func browserOfferWithBareClientMaxWindowBits() throws {
        let accepted = try #require(negotiate("permessage-deflate; client_max_window_bits"))
        #expect(accepted.responseHeader == "permessage-deflate")
        var small = Self.on
        small.clientWindowBits = 10
        let limited = try #require(negotiate("permessage-deflate; client_max_window_bits", settings: small))
        #expect(limited.responseHeader == "permessage-deflate; client_max_window_bits=10")
        #expect(limited.clientWindowBits == 10)
    }

    @Test func clientMaxWindowBitsNotOfferedIsNeverAnswered() throws {
        var small = Self.on
        small.clientWindowBits = 9
        let accepted = try #require(negotiate("permessage-deflate", settings: small))
        #expect(accepted.responseHeader == "permessage-deflate")
        #expect(accepted.clientWindowBits == 15)  // the client may use any window
    }

    @Test func eachParameter() throws {
        #expect(try #require(negotiate("permessage-deflate; server_no_context_takeover")).responseHeader
            == "permessage-deflate; server_no_context_takeover")
        #expect(try #require(negotiate("permessage-deflate; client_no_context_takeover")).responseHeader
            == "permessage-deflate; client_no_context_takeover")
        let server = try #require(negotiate("permessage-deflate; server_max_window_bits=10"))
        #expect(server.responseHeader == "permessage-deflate; server_max_window_bits=10")
        #expect(server.serverWindowBits == 10)
        let client = try #require(negotiate("permessage-deflate; client_max_window_bits=12"))
        #expect(client.responseHeader == "permessage-deflate; client_max_window_bits=12")
        #expect(client.clientWindowBits == 12)
        let quoted = try #require(negotiate("permessage-deflate; server_max_window_bits=\"11\""))
        #expect(quoted.serverWindowBits == 11)
    }

    @Test func combinedParametersAndRouteSettings() throws {
        var settings = Self.on
        settings.windowBits = 12
        settings.serverNoContextTakeover = true
        let accepted = try #require(negotiate("permessage-deflate; client_no_context_takeover; server_max_window_bits=14; client_max_window_bits", settings: settings))
        #expect(accepted.responseHeader == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12")
        #expect(accepted.serverWindowBits == 12 && accepted.serverNoContextTakeover && accepted.clientNoContextTakeover)
    }

    @Test(arguments: [
        "permessage-deflate; foo",  // unknown parameter
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // repeated
        "permessage-deflate; server_no_context_takeover=1",  // value where none is allowed
        "permessage-deflate; server_max_window_bits",  // value required
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=8",  // zlib cannot compress with 8 bits: declined
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=\"12",
        "x-webkit-deflate-frame",
    ])
    func malformedOrUnacceptableOffersAreDeclined(offer: String) {
        #expect(negotiate(offer) == nil)
    }

    @Test func firstAcceptableOfferWinsAcrossElementsAndHeaderLines() throws {
        let accepted = try #require(negotiate("permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=8",
                                             "permessage-deflate; client_max_window_bits=9, permessage-deflate"))
        #expect(accepted.responseHeader == "permessage-deflate; client_max_window_bits=9")
    }

    @Test func disabledRouteNegotiatesNothing() {
        var off = Self.on
        off.enabled = false
        #expect(negotiate("permessage-deflate", settings: off) == nil)
    }

    @Test func backendAnswers() throws {
        #expect(try DeflateNegotiation.backendAccepted([]).get() == nil)
        let plain = try #require(try DeflateNegotiation.backendAccepted(["permessage-deflate"]).get())
        #expect(plain == BackendDeflate())
        let full = try #require(try DeflateNegotiation.backendAccepted(["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"]).get())
        #expect(full.backendResetsEachMessage && full.gatewayResetsEachMessage && full.backendWindowBits == 10)
        for bad in ["permessage-deflate; client_max_window_bits=10",  // not offered, so not allowed back
                    "permessage-deflate; foo", "permessage-deflate; server_max_window_bits=20",
                    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                    "x-webkit-deflate-frame", "permessage-deflate, permessage-deflate"] {
            guard case .failure = DeflateNegotiation.backendAccepted([bad]) else {
                Issue.record("accepted a bad answer: \(bad)")
                continue
            }
        }
    }
}
