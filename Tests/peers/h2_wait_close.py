#!/usr/bin/env python3
"""One WebSocket over HTTP/2 (RFC 8441, h2c prior knowledge, Python `h2`) that sends nothing and
waits for the server to close it.

    h2_wait_close.py HOST PORT PATH [--header NAME:VALUE]... [--timeout SECONDS]

Waits for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL, opens the stream, answers pings, and when
a close frame arrives answers it and prints {"status", "code", "reason", "seconds", "closed_at"} as
JSON, where seconds count from the 200 and closed_at is the wall-clock time (epoch seconds). A refused stream prints its status; no close within the timeout prints
code null and reason "timeout".
"""
import json
import socket
import struct
import sys
import time

import h2.events

from h2_websocket import parse_frames, receive, start_connection, ws_frame


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    rest = args[3:]
    extra, timeout = [], 30.0
    while rest:
        if rest[0] == "--header":
            name, _, value = rest[1].partition(":")
            extra.append((name.strip().lower(), value.strip()))
        elif rest[0] == "--timeout":
            timeout = float(rest[1])
        rest = rest[2:]
    sock = socket.create_connection((host, port), timeout=10)
    deadline = time.monotonic() + timeout
    conn = start_connection(sock)

    def pump():
        """One read's events; None once the deadline has passed."""
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            return receive(sock, conn)
        except socket.timeout:
            return None
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                            (":path", path), (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")] + extra)
    sock.sendall(conn.data_to_send())
    status, opened, buf = None, None, bytearray()
    result = {"status": None, "code": None, "reason": "timeout", "seconds": None, "closed_at": None}
    while time.monotonic() < deadline:
        events = pump()
        if events is None:
            break
        for event in events:
            if getattr(event, "stream_id", None) != sid:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(":status")
                result["status"] = status
                opened = time.monotonic()
                if status != "200":
                    print(json.dumps(result))
                    return 0
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
                buf += event.data
                for op, payload in parse_frames(buf):
                    if op == 9:
                        conn.send_data(sid, ws_frame(10, payload))
                    elif op == 8:
                        result["code"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                        result["reason"] = payload[2:].decode(errors="replace")
                        result["seconds"] = round(time.monotonic() - opened, 3)
                        result["closed_at"] = time.time()
                        conn.send_data(sid, ws_frame(8, payload[:2]))
                        sock.sendall(conn.data_to_send())
                        print(json.dumps(result))
                        return 0
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                result["reason"] = "stream ended without a close frame"
                print(json.dumps(result))
                return 0
        sock.sendall(conn.data_to_send())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
