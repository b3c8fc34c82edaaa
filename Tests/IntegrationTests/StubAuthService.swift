import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An authorisation service for `auth.http` tests: what it answers depends on the bearer token,
/// and it counts the calls per token (a cache hit makes none).
///
/// `alice`: 200 with `X-WSGate-User`. `json-<anything>`: 200 with a JSON body naming user bob, the
/// target in ``target`` and an `X-Tenant` header. `outside`: 200 naming a target outside the allow
/// list. `denied`: 401 with a body and `WWW-Authenticate`. `forbidden`: 403. `broken`: 500.
/// `hang`: no answer ever. `redirect`: 302 to `/login`, which answers 200 whoever asks (a client
/// that followed redirects would admit). `/jwks` answers ``jwks`` (an identity provider's keys).
final class StubAuthService: Sendable {
    let channel: Channel
    /// Accepted connections, closed by ``stop()`` with the listener (AsyncHTTPClient keeps its
    /// connections to the service open for a minute otherwise).
    private let accepted = NIOLockedValueBox<[Channel]>([])
    let calls = NIOLockedValueBox<[String: Int]>([:])
    /// What `json-*` tokens name as their target.
    let target = NIOLockedValueBox("")
    /// The JWKS document `/jwks` serves.
    let jwks = NIOLockedValueBox(#"{"keys": []}"#)
    /// Seen on the last call: the forwarded headers the service got.
    let lastHeaders = NIOLockedValueBox(HTTPHeaders())

    var port: Int { self.channel.localAddress?.port ?? 0 }

    private init(channel: Channel) {
        self.channel = channel
    }

    static func start(group: EventLoopGroup) async throws -> StubAuthService {
        let box = NIOLockedValueBox<StubAuthService?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.withLockedValue { $0 }?.accepted.withLockedValue { $0.append(channel) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(service: { box.withLockedValue { $0 } }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let service = StubAuthService(channel: channel)
        box.withLockedValue { $0 = service }
        return service
    }

    func count(_ token: String) -> Int { self.calls.withLockedValue { $0[token] ?? 0 } }

    func stop() {
        self.channel.close(promise: nil)
        for channel in self.accepted.withLockedValue({ $0 }) { channel.close(promise: nil) }
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let service: @Sendable () -> StubAuthService?

        init(service: @escaping @Sendable () -> StubAuthService?) {
            self.service = service
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = Self.unwrapInboundIn(data), let service = self.service() else { return }
            let token = head.headers.first(name: "authorization").map { String($0.dropFirst("Bearer ".count)) } ?? ""
            service.calls.withLockedValue { $0[token, default: 0] += 1 }
            service.lastHeaders.withLockedValue { $0 = head.headers }
            var headers = HTTPHeaders()
            let status: HTTPResponseStatus
            var body = ""
            switch token {
            case _ where head.uri == "/jwks":
                status = .ok
                headers.add(name: "Content-Type", value: "application/json")
                body = service.jwks.withLockedValue { $0 }
            case _ where head.uri == "/login":
                status = .ok
                headers.add(name: "X-WSGate-User", value: "whoever")
            case "redirect":
                status = .found
                headers.add(name: "Location", value: "/login")
            case "hang":
                return
            case "alice":
                status = .ok
                headers.add(name: "X-WSGate-User", value: "alice")
            case _ where token.hasPrefix("json-"):
                status = .ok
                headers.add(name: "Content-Type", value: "application/json")
                body = #"{"user": "bob", "target": "\#(service.target.withLockedValue { $0 })", "headers": {"X-Tenant": "t1"}, "expires_at": \#(Date().timeIntervalSince1970 + 600)}"#
            case "outside":
                status = .ok
                headers.add(name: "Content-Type", value: "application/json")
                body = #"{"user": "eve", "target": "127.0.0.2:1"}"#
            case "denied":
                status = .unauthorized
                headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"stub\"")
                body = "go away"
            case "forbidden":
                status = .forbidden
                body = "not you"
            default:
                status = .internalServerError
                body = "oops"
            }
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
