import NIOCore
import NIOHTTP1
import Testing
@testable import WSGate

@Suite struct ProxyProtocolTests {
    func parse(_ bytes: [UInt8]) throws -> (ProxyProtocol.Header?, Int) {
        var buffer = ByteBuffer(bytes: bytes)
        let header = try ProxyProtocol.parse(&buffer)
        return (header, buffer.readableBytes)
    }

    @Test func v1Lines() throws {
        let line = Array("PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET".utf8)
        let (header, rest) = try self.parse(line)
        #expect(header == .proxied(source: try SocketAddress(ipAddress: "203.0.113.7", port: 51000), destination: try SocketAddress(ipAddress: "192.0.2.1", port: 443)))
        #expect(rest == 3)
        #expect(try self.parse(Array("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n".utf8)).0 == .proxied(source: try SocketAddress(ipAddress: "2001:db8::1", port: 1), destination: try SocketAddress(ipAddress: "2001:db8::2", port: 2)))
        #expect(try self.parse(Array("PROXY UNKNOWN ffff::1 whatever\r\n".utf8)).0 == .local)
        // Every prefix of a valid line asks for more bytes, without consuming any.
        for end in 1..<(line.count - 3) {
            let (partial, left) = try self.parse(Array(line[..<end]))
            #expect(partial == nil && left == end)
        }
    }

    @Test(arguments: [
        "PROXY TCP4 203.0.113.7 192.0.2.1 51000\r\n",  // missing port
        "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",  // family mismatch
        "PROXY TCP4 203.0.113.7 192.0.2.1 051000 443\r\n",  // leading zero
        "PROXY TCP4 203.0.113.7 192.0.2.1 70000 443\r\n",
        "PROXY UDP4 1.1.1.1 1.1.1.1 1 1\r\n",
        "PROXY TCP4 1.1.1.1 1.1.1.1 1 1\n",  // LF only
        "PROXY TCP6 2001:db8::%1 1:db8::2 1 65530\r\n",  // zone index (found by fuzzing)
        "GET / HTTP/1.1\r\n",
    ])
    func invalidV1(_ text: String) {
        #expect(throws: ProxyProtocol.ParseError.self) { try self.parse(Array(text.utf8)) }
    }

    @Test func overlongV1IsRefusedWithoutANewline() {
        #expect(throws: ProxyProtocol.ParseError.self) { try self.parse(Array(("PROXY TCP4 " + String(repeating: "1", count: 200)).utf8)) }
    }

    @Test func v2RoundTripsThroughTheEncoder() throws {
        for (source, destination) in [
            (try SocketAddress(ipAddress: "203.0.113.7", port: 51000), try SocketAddress(ipAddress: "192.0.2.1", port: 443)),
            (try SocketAddress(ipAddress: "2001:db8::7", port: 1), try SocketAddress(ipAddress: "2001:db8::1", port: 65535)),
        ] {
            for version in [ProxyProtocol.Version.v1, .v2] {
                var buffer = ByteBuffer()
                ProxyProtocol.encode(version, source: source, destination: destination, into: &buffer)
                buffer.writeString("rest")
                let header = try ProxyProtocol.parse(&buffer)
                #expect(header == .proxied(source: source, destination: destination), "\(version)")
                #expect(buffer.readableBytes == 4)
            }
        }
        var local = ByteBuffer()
        ProxyProtocol.encode(.v2, source: nil, destination: nil, into: &local)
        #expect(try ProxyProtocol.parse(&local) == .local)
    }

    @Test func v2WithTLVsAndPartialInput() throws {
        var full = ByteBuffer()
        full.writeBytes(ProxyProtocol.v2Signature)
        full.writeBytes([0x21, 0x11])
        full.writeInteger(UInt16(12 + 7), endianness: .big)
        full.writeBytes([198, 51, 100, 9, 10, 0, 0, 1, 0x13, 0x88, 0x01, 0xBB])
        full.writeBytes([0x01, 0x00, 0x04, 0x68, 0x32, 0x00, 0x00])  // ALPN TLV, skipped
        let bytes = Array(full.readableBytesView)
        for end in 1..<bytes.count {
            #expect(try self.parse(Array(bytes[..<end])).0 == nil)
        }
        #expect(try self.parse(bytes).0 == .proxied(source: try SocketAddress(ipAddress: "198.51.100.9", port: 5000), destination: try SocketAddress(ipAddress: "10.0.0.1", port: 443)))
    }

    @Test func v2Refusals() {
        var header = ProxyProtocol.v2Signature + [0x31, 0x11, 0, 12] + [UInt8](repeating: 0, count: 12)  // version 3
        #expect(throws: ProxyProtocol.ParseError.self) { try self.parse(header) }
        header = ProxyProtocol.v2Signature + [0x21, 0x11, 0, 4, 1, 2, 3, 4]  // truncated TCP4 block
        #expect(throws: ProxyProtocol.ParseError.self) { try self.parse(header) }
        header = ProxyProtocol.v2Signature + [0x21, 0x11, 0xFF, 0xFF]  // longer than the limit
        #expect(throws: ProxyProtocol.ParseError.self) { try self.parse(header) }
    }
}

@Suite struct ForwardedForTests {
    let trusted = [IPNetwork(parsing: "10.0.0.0/8")!, IPNetwork(parsing: "127.0.0.1")!]

    func client(peer: String, _ chain: String?) -> String? {
        var headers = HTTPHeaders()
        if let chain { headers.add(name: "X-Forwarded-For", value: chain) }
        return ForwardedFor.client(peer: try? SocketAddress(ipAddress: peer, port: 1), headers: headers, trusted: self.trusted)?.ipAddress
    }

    @Test func chainIsReadFromTheRightUpToTheFirstUntrustedHop() {
        #expect(self.client(peer: "10.1.1.1", "203.0.113.7") == "203.0.113.7")
        #expect(self.client(peer: "10.1.1.1", "1.1.1.1, 203.0.113.7, 10.2.2.2") == "203.0.113.7")  // 1.1.1.1 was written by the client
        #expect(self.client(peer: "10.1.1.1", "10.3.3.3, 10.2.2.2") == "10.3.3.3")
        #expect(self.client(peer: "10.1.1.1", "[2001:db8::1]:443") == "2001:db8::1")
        #expect(self.client(peer: "10.1.1.1", nil) == "10.1.1.1")
        #expect(self.client(peer: "10.1.1.1", "garbage, 203.0.113.7") == "203.0.113.7")
        #expect(self.client(peer: "10.1.1.1", "203.0.113.7, garbage") == "10.1.1.1")
    }

    @Test func untrustedPeersCannotClaimAnotherAddress() {
        #expect(self.client(peer: "198.51.100.1", "203.0.113.7") == "198.51.100.1")
    }
}
