#!/usr/bin/env python3
"""A minimal authorisation service for wsgate's `auth: {http: {url: ...}}` — standard library only.

    python3 examples/auth_service.py [PORT]     # default 9191; 0 picks a free port (printed)

wsgate GETs it once per WebSocket handshake with the headers listed in `forward_headers`
(Authorization and Cookie by default) plus X-Forwarded-Uri, X-Forwarded-For, X-Forwarded-Host.
Answer 2xx to admit (optionally naming the user, a target and headers for the backend), 401 or
403 to refuse (status and body go to the client). Anything else, or no answer within `timeout`,
and wsgate answers 503: it fails closed.

Route it with, for example:

    routes:
      - path: /term
        backend: ws://127.0.0.1:9000/
        auth: {http: {url: "http://127.0.0.1:9191/check", timeout: 2s, cache: 30s}}
        backend_identity: {header: X-WSGate-User}
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Replace with a lookup in your session store, an introspection call, ...
USERS = {"Bearer alice-token": "alice", "Bearer bob-token": "bob"}


class Check(BaseHTTPRequestHandler):
    def do_GET(self):
        user = USERS.get(self.headers.get("Authorization", ""))
        if user is None:
            body = b"unknown token\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="example"')
        else:
            # user: logged and passed to the backend; expires_at: the session ends then (1008).
            body = json.dumps({"user": user, "headers": {"X-Team": "ops"}, "expires_at": time.time() + 3600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        sys.stderr.write("auth: %s %s\n" % (self.headers.get("X-Forwarded-Uri", "?"), format % args))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9191), Check)
    print(f"auth service on http://127.0.0.1:{server.server_address[1]}/check", flush=True)
    server.serve_forever()
