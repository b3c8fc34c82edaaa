import NIOCore

/// The PROXY protocol (HAProxy, versions 1 and 2): how a load balancer in front of wsgate tells it
/// the real client's address, and how wsgate tells a legacy TCP service the same.
/// Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
public enum ProxyProtocol {
    public enum Header: Equatable, Sendable {
        /// A proxied connection: the client's address and the address it connected to.
        case proxied(source: SocketAddress, destination: SocketAddress)
        /// `LOCAL` (v2) or `UNKNOWN` (v1): the proxy's own connection (a health check); use the socket's addresses.
        case local
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// v1 lines are at most 107 bytes; v2 headers here at most this (addresses plus TLVs a proxy
    /// may add: ALPN, authority, SSL details).
    static let maxV1Length = 107
    static let maxV2Length = 16 + 2048

    /// Reads one header from the front of `buffer`: nil when more bytes are needed (the buffer is
    /// then untouched), the header once complete (its bytes consumed).
    public static func parse(_ buffer: inout ByteBuffer) throws(ParseError) -> Header? {
        let view = buffer.readableBytesView
        guard let first = view.first else { return nil }
        if first == UInt8(ascii: "P") {
            return try self.parseV1(&buffer)
        }
        let compared = min(view.count, self.v2Signature.count)
        guard view.prefix(compared).elementsEqual(self.v2Signature.prefix(compared)) else {
            throw ParseError(description: "not a PROXY protocol header")
        }
        return try self.parseV2(&buffer)
    }

    private static func parseV1(_ buffer: inout ByteBuffer) throws(ParseError) -> Header? {
        let view = buffer.readableBytesView
        let prefix = Array("PROXY ".utf8)
        let compared = min(view.count, prefix.count)
        guard view.prefix(compared).elementsEqual(prefix.prefix(compared)) else { throw ParseError(description: "not a PROXY protocol header") }
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count >= self.maxV1Length { throw ParseError(description: "PROXY v1 line longer than \(self.maxV1Length) bytes") }
            return nil
        }
        let length = newline - view.startIndex + 1
        guard length <= self.maxV1Length, length >= 2, view[newline - 1] == UInt8(ascii: "\r") else {
            throw ParseError(description: "PROXY v1 line must end in CRLF within \(self.maxV1Length) bytes")
        }
        let line = String(decoding: view[view.startIndex..<(newline - 1)], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: length)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 2 else { throw ParseError(description: "PROXY v1 line without a protocol") }
        switch fields[1] {
        case "UNKNOWN":
            return .local
        case "TCP4", "TCP6":
            guard fields.count == 6 else { throw ParseError(description: "PROXY v1 \(fields[1]) needs 4 fields") }
            let isV6 = fields[1] == "TCP6"
            guard let source = self.address(String(fields[2]), port: fields[4], v6: isV6),
                  let destination = self.address(String(fields[3]), port: fields[5], v6: isV6)
            else { throw ParseError(description: "PROXY v1 addresses are invalid") }
            return .proxied(source: source, destination: destination)
        default:
            throw ParseError(description: "PROXY v1 protocol '\(fields[1])' is not TCP4, TCP6 or UNKNOWN")
        }
    }

    private static func address(_ ip: String, port: Substring, v6: Bool) -> SocketAddress? {
        // Ports are decimal without leading zeros or signs (the spec's grammar).
        // Only the literal forms: no zone index (`fe80::1%eth0`), which the resolver behind
        // SocketAddress would take and which the spec does not allow.
        let literal = v6 ? "0123456789abcdefABCDEF:." : "0123456789."
        guard let number = Int(port), (0...65535).contains(number), String(number) == port,
              ip.allSatisfy(literal.contains), ip.contains(":") == v6,
              let address = try? SocketAddress(ipAddress: ip, port: number) else { return nil }
        return address
    }

    private static func parseV2(_ buffer: inout ByteBuffer) throws(ParseError) -> Header? {
        guard buffer.readableBytes >= 16 else { return nil }
        let start = buffer.readerIndex
        guard let versionCommand = buffer.getInteger(at: start + 12, as: UInt8.self),
              let family = buffer.getInteger(at: start + 13, as: UInt8.self),
              let rawLength = buffer.getInteger(at: start + 14, endianness: .big, as: UInt16.self) else { return nil }
        let length = Int(rawLength)
        guard versionCommand >> 4 == 2 else { throw ParseError(description: "PROXY v2 header with version \(versionCommand >> 4)") }
        guard 16 + length <= self.maxV2Length else { throw ParseError(description: "PROXY v2 header of \(16 + length) bytes (limit \(self.maxV2Length))") }
        guard buffer.readableBytes >= 16 + length else { return nil }
        defer { buffer.moveReaderIndex(forwardBy: 16 + length) }
        switch versionCommand & 0x0F {
        case 0x0:
            return .local
        case 0x1:
            break
        default:
            throw ParseError(description: "PROXY v2 command \(versionCommand & 0x0F) is not LOCAL or PROXY")
        }
        let body = start + 16
        switch family {
        case 0x11:  // TCP over IPv4
            guard length >= 12, let source = buffer.getBytes(at: body, length: 4), let destination = buffer.getBytes(at: body + 4, length: 4),
                  let sourcePort = buffer.getInteger(at: body + 8, endianness: .big, as: UInt16.self),
                  let destinationPort = buffer.getInteger(at: body + 10, endianness: .big, as: UInt16.self) else {
                throw ParseError(description: "PROXY v2 TCP4 addresses truncated")
            }
            return .proxied(source: try self.v4(source, Int(sourcePort)), destination: try self.v4(destination, Int(destinationPort)))
        case 0x21:  // TCP over IPv6
            guard length >= 36, let source = buffer.getBytes(at: body, length: 16), let destination = buffer.getBytes(at: body + 16, length: 16),
                  let sourcePort = buffer.getInteger(at: body + 32, endianness: .big, as: UInt16.self),
                  let destinationPort = buffer.getInteger(at: body + 34, endianness: .big, as: UInt16.self) else {
                throw ParseError(description: "PROXY v2 TCP6 addresses truncated")
            }
            return .proxied(source: try self.v6(source, Int(sourcePort)), destination: try self.v6(destination, Int(destinationPort)))
        case 0x00:
            return .local  // UNSPEC: the proxy does not know; use the socket's
        default:
            throw ParseError(description: "PROXY v2 address family 0x\(String(family, radix: 16)) is not TCP")
        }
    }

    private static func v4(_ bytes: [UInt8], _ port: Int) throws(ParseError) -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: bytes.map(String.init).joined(separator: "."), port: port)
        } catch {
            throw ParseError(description: "PROXY v2 IPv4 address invalid")
        }
    }

    private static func v6(_ bytes: [UInt8], _ port: Int) throws(ParseError) -> SocketAddress {
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        do {
            return try SocketAddress(ipAddress: groups.joined(separator: ":"), port: port)
        } catch {
            throw ParseError(description: "PROXY v2 IPv6 address invalid")
        }
    }

    // MARK: Writing (to TCP backends)

    public enum Version: String, Sendable, Equatable {
        case v1
        case v2
    }

    /// The TLV type (in PROXY v2's custom range, 0xE0–0xEF) carrying the authenticated user, UTF-8.
    public static let userTLVType: UInt8 = 0xE0

    /// The header announcing `source` (the client) connected to `destination`; `LOCAL`/`UNKNOWN`
    /// when either is unknown or they are of different families. v2 carries `tlvs` after the
    /// addresses (v1 has no room for them); each value is cut to 1 KiB.
    public static func encode(_ version: Version, source: SocketAddress?, destination: SocketAddress?, tlvs: [(type: UInt8, value: [UInt8])] = [],
                              into buffer: inout ByteBuffer) {
        var extensions = ByteBuffer()
        for tlv in tlvs {
            let value = tlv.value.prefix(1024)
            extensions.writeInteger(tlv.type)
            extensions.writeInteger(UInt16(value.count), endianness: .big)
            extensions.writeBytes(value)
        }
        switch version {
        case .v1:
            if let source, let destination, let s = source.ipAddress, let d = destination.ipAddress, let sp = source.port, let dp = destination.port,
               s.contains(":") == d.contains(":") {
                buffer.writeString("PROXY \(s.contains(":") ? "TCP6" : "TCP4") \(s) \(d) \(sp) \(dp)\r\n")
            } else {
                buffer.writeString("PROXY UNKNOWN\r\n")
            }
        case .v2:
            buffer.writeBytes(self.v2Signature)
            switch (source, destination) {
            case (.v4(let s)?, .v4(let d)?):
                self.writeV2Addresses(family: 0x11, s.address.sin_addr, d.address.sin_addr,
                                      ports: (UInt16(bigEndian: s.address.sin_port), UInt16(bigEndian: d.address.sin_port)), extensions: extensions, into: &buffer)
            case (.v6(let s)?, .v6(let d)?):
                self.writeV2Addresses(family: 0x21, s.address.sin6_addr, d.address.sin6_addr,
                                      ports: (UInt16(bigEndian: s.address.sin6_port), UInt16(bigEndian: d.address.sin6_port)), extensions: extensions, into: &buffer)
            default:
                buffer.writeInteger(UInt8(0x20))  // LOCAL
                buffer.writeInteger(UInt8(0x00))
                buffer.writeInteger(UInt16(extensions.readableBytes), endianness: .big)
                buffer.writeImmutableBuffer(extensions)
            }
        }
    }

    /// PROXY command, `family`, then both addresses (raw, network order) and both ports.
    private static func writeV2Addresses<Address>(family: UInt8, _ source: Address, _ destination: Address, ports: (UInt16, UInt16), extensions: ByteBuffer,
                                                  into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0x21))
        buffer.writeInteger(family)
        buffer.writeInteger(UInt16(2 * MemoryLayout<Address>.size + 4 + extensions.readableBytes), endianness: .big)
        withUnsafeBytes(of: source) { _ = buffer.writeBytes($0) }
        withUnsafeBytes(of: destination) { _ = buffer.writeBytes($0) }
        buffer.writeInteger(ports.0, endianness: .big)
        buffer.writeInteger(ports.1, endianness: .big)
        buffer.writeImmutableBuffer(extensions)
    }
}
