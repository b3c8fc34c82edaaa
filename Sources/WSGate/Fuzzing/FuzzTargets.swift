import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Entry points for `wsgate-fuzz`: each takes arbitrary bytes and drives one parser the network
/// (or an operator) feeds, checking invariants on the way. A crash, a hang or a failed
/// precondition is a bug.
///
/// The traps here (`precondition`, `fatalError`, force unwraps) are the fuzzer's oracle: only the
/// `wsgate-fuzz` binary calls this code, never the gateway, so no peer can reach them.
@_spi(Fuzzing)
public enum FuzzTargets {
    public static let names = ["handshake", "frames", "config", "proxy-protocol"]

    public static func run(_ name: String, _ data: UnsafeRawBufferPointer) {
        switch name {
        case "handshake": self.handshake(data)
        case "frames": self.frames(data)
        case "config": self.config(data)
        case "proxy-protocol": self.proxyProtocol(data)
        default: fatalError("unknown fuzz target \(name)")
        }
    }

    /// A routing table that exercises every handshake check: origins, auth sources, dynamic targets.
    static let routes: RouteTable = {
        var open = RouteConfiguration(path: "/", backend: .tcp(host: "127.0.0.1", port: 1), subprotocols: ["binary", "chat"])
        open.origins = .allowList(["https://app.example.com", "*.example.org"])
        open.compression.enabled = true
        var secured = RouteConfiguration(path: "/secure", match: .exact, backend: .webSocket(host: "127.0.0.1", port: 2, path: "/b", query: "k=v"))
        secured.auth = AuthSettings(method: .bearerTokens(file: "/dev/null"))
        var dynamic = RouteConfiguration(path: "/vnc", backend: .dynamic)
        var targets = DynamicTargets()
        targets.tokenFile = "/dev/null"
        targets.tokenLocation = .host
        targets.allowed = [vncTargets]
        dynamic.targets = targets
        return RouteTable([open, secured, dynamic])
    }()

    static let trusted = [IPNetwork(parsing: "127.0.0.0/8")!]
    static let vncTargets = TargetPattern(parsing: "10.0.0.0/8:5900-5999")!

    /// Request heads through NIO's parser, then the handshake rules, credential stripping, origin
    /// and forwarding checks, over HTTP/1.1 and as HTTP/2 header lists.
    static func handshake(_ data: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        guard (try? channel.writeInbound(ByteBuffer(bytes: data))) != nil else { return }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            guard case .head(let head) = part else { continue }
            for secure in [false, true] {
                if case .upgrade(let request) = HandshakeValidator.decide(head, routes: self.routes, secure: secure) {
                    precondition(request.head.headers["authorization"].isEmpty || request.route.configuration.auth == nil)
                    if let token = request.targetToken {
                        _ = self.vncTargets.matches(host: token, port: 5900)
                    }
                    _ = RouteTable.backendTarget(clientTarget: request.head.uri, route: request.route.configuration, backendPath: "/b", backendQuery: "k=v")
                    _ = BackendRequestHeaders.make(client: request.head, clientAddress: nil, keepsForwardingHeaders: secure, clientUsesTLS: secure,
                                                   backendHost: "127.0.0.1", backendPort: 2, key: "dGhlIHNhbXBsZSBub25jZQ==", subprotocols: request.subprotocols)
                }
            }
            _ = ForwardedFor.client(peer: try? SocketAddress(ipAddress: "127.0.0.1", port: 1), headers: head.headers, trusted: self.trusted)
            var pairs: [(name: String, value: String)] = [(":method", "CONNECT"), (":protocol", "websocket"), (":path", head.uri), (":authority", "gw")]
            for (name, value) in head.headers { pairs.append((name.lowercased(), value)) }
            _ = HTTP2RequestValidator.decide(pairs, routes: self.routes, secure: true)
        }
    }

    /// Frames from a peer, with the decoder's options and the read sizes taken from the first bytes;
    /// compressed messages are inflated (bounded) as the relay does.
    static func frames(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 2 else { return }
        let options = data[0]
        let chunk = Int(data[1]) + 1
        let configuration = FrameDecoder.Configuration(
            maxMessageBytes: options & 0x08 != 0 ? 1 << 20 : 256, validatesUTF8: options & 0x01 != 0,
            keepsMasked: options & 0x02 != 0, allowsCompression: options & 0x04 != 0,
            maxFrameBytes: options & 0x10 != 0 ? 64 : nil
        )
        var decoder = FrameDecoder(role: options & 0x20 != 0 ? .server : .client, configuration: configuration)
        let inflater = configuration.allowsCompression ? MessageInflater(windowBits: 15, resetsEachMessage: options & 0x40 != 0) : nil
        var output = ByteBuffer()
        var input = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: data[2...]))
        while input.readableBytes > 0 {
            var piece = input.readSlice(length: min(chunk, input.readableBytes))!
            do {
                while let event = try decoder.next(from: &piece) {
                    switch event {
                    case .payload(let payload) where decoder.messageIsCompressed:
                        // As the relay does: bounded output chunks, at most 1 MiB per payload here.
                        var compressed = payload
                        for _ in 0..<256 {
                            output.clear()
                            output.reserveCapacity(4096)
                            if try inflater?.inflate(&compressed, into: &output) ?? true { break }
                        }
                    case .close(let code, _):
                        if let code { precondition(code.rawValue >= 1000) }
                    default:
                        break
                    }
                }
            } catch {
                return  // a protocol error ends the connection, as on the wire
            }
        }
    }

    static func config(_ data: UnsafeRawBufferPointer) {
        _ = try? ConfigurationLoader.parse(yaml: String(decoding: data, as: UTF8.self))
    }

    /// Parses a header fed in two pieces (split by the first byte); a parsed header must survive
    /// being written and read again.
    static func proxyProtocol(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let split = min(Int(first), data.count - 1)
        var buffer = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: data[1..<(1 + split)]))
        var header: ProxyProtocol.Header?
        do {
            header = try ProxyProtocol.parse(&buffer)
            if header == nil {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: data[(1 + split)...]))
                header = try ProxyProtocol.parse(&buffer)
            }
        } catch {
            return
        }
        guard case .proxied(let source, let destination) = header else { return }
        for version in [ProxyProtocol.Version.v1, .v2] {
            var encoded = ByteBuffer()
            ProxyProtocol.encode(version, source: source, destination: destination, into: &encoded)
            let again = try? ProxyProtocol.parse(&encoded)
            precondition(again == header, "PROXY \(version) round trip changed \(String(describing: header)) into \(String(describing: again))")
        }
    }
}
