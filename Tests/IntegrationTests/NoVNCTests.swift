import Foundation
import NIOCore
import Testing

/// The main use case end to end: noVNC's own files (Debian's novnc) served by a `static:` route,
/// headless Chromium running them, and a real VNC server (TigerVNC's Xvnc, on a unix socket)
/// behind a unix: route. noVNC must reach its connected state, over HTTP/1.1 and over TLS (where
/// Chromium's WebSocket rides the page's HTTP/2 connection, RFC 8441).
@Suite(.timeLimit(.minutes(3))) struct NoVNCTests {
    @Test(arguments: [false, true])
    func noVNCConnectsToTigerVNC(tls: Bool) async throws {
        // TigerVNC's X server, its VNC listener on the unix socket only (no TCP port; the display
        // number is the first free one, `-displayfd`), no password.
        let vnc = try await UnixSocketService.start("/usr/bin/Xvnc", package: "tigervnc-standalone-server") { vnc in
            ["-displayfd", "1", "-rfbunixpath", vnc.socket, "-rfbport", "-1", "-nolisten", "tcp",
             "-SecurityTypes", "None", "-geometry", "800x600", "-depth", "24"]
        }
        defer { vnc.stop() }
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let tlsBlock = tls ? "\n    tls: {certificate: \"\(certificates.certificate())\", key: \"\(certificates.key())\"}" : ""
        let config = vnc.directory.appendingPathComponent("wsgate.yaml")
        try """
            listeners:
              - address: "127.0.0.1:0"\(tlsBlock)
            routes:
              - path: /websockify
                backend: "unix:\(vnc.socket)"
              - path: /
                static: {root: /usr/share/novnc}
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let origin = "\(tls ? "https" : "http")://localhost:\(gateway.port)"
        let run = try await Peers.run(try Peers.python, [Peers.script("chromium_novnc.py"), origin, "/websockify"], timeout: 90)
        #expect(run.output.contains("CONNECTED"), "\(run.output)\n\(gateway.log.suffix(2000))")

        try await eventually("the session's log line") { gateway.log.contains("session ended") }
        let line = gateway.log.split(separator: "\n").first { $0.contains("session ended") } ?? ""
        #expect(line.contains(tls ? "protocol=h2" : "protocol=http/1.1"), "\(line)")
        // noVNC's disconnect calls WebSocket.close() with no code: a close frame without one, 1005.
        #expect(line.contains("close_code=1005 closed_by=client"), "\(line)")
    }
}
