#!/usr/bin/env python3
"""RFC 8441 client for the integration tests: WebSockets over one HTTP/2 connection (Python `h2`).

    h2_websocket.py HOST PORT [--tls CAFILE] [--header NAME:VALUE]... [--flood PATH BYTES] PATH...

Opens one connection (h2c prior knowledge, or TLS with ALPN h2), waits for the server's
SETTINGS_ENABLE_CONNECT_PROTOCOL, then one extended CONNECT stream per PATH, all at once. On each
stream it sends a masked text message "hello <path>", reads the echo, then runs the closing
handshake with code 1000. Prints one JSON object per stream and a last line "OK N" or "FAIL ...".
With --flood, one more stream sends a single BYTES-long binary message as fast as HTTP/2 flow control
lets it; the run ends when the other streams are done, and reports how much of it got through.
"""
import json
import os
import socket
import ssl
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def ws_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frames(buf: bytearray):
    frames = []
    while len(buf) >= 2:
        op, n = buf[0] & 0x0F, buf[1] & 0x7F
        off = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < off + n:
            break
        frames.append((op, bytes(buf[off:off + n])))
        del buf[:off + n]
    return frames


def receive(sock, conn):
    """The events of one read from the server, with what h2 owes it (ACKs, window updates) sent."""
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("connection closed")
    events = conn.receive_data(data)
    sock.sendall(conn.data_to_send())
    return events


def start_connection(sock):
    """An h2 client connection on `sock`, once the server's SETTINGS_ENABLE_CONNECT_PROTOCOL is in
    force (RFC 8441 §3: no extended CONNECT before it)."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    enabled = False
    while not enabled:
        for event in receive(sock, conn):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                enabled = enabled or (setting is not None and setting.new_value == 1)
    return conn


def main() -> int:
    args = sys.argv[1:]
    host, port = args[0], int(args[1])
    cafile = None
    flood = None
    rest = args[2:]
    if rest[0] == "--tls":
        cafile, rest = rest[1], rest[2:]
    extra = []
    authority = f"{host}:{port}"
    if rest[0] == "--authority":
        authority, rest = rest[1], rest[2:]
    while rest[0] == "--header":
        name, _, value = rest[1].partition(":")
        extra.append((name.strip().lower(), value.strip()))
        rest = rest[2:]
    if rest[0] == "--flood":
        flood, rest = (rest[1], int(rest[2])), rest[3:]
    paths = rest
    sock = socket.create_connection((host, port), timeout=10)
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            print(f"FAIL ALPN selected {sock.selected_alpn_protocol()!r}")
            return 1
    conn = start_connection(sock)

    def pump():
        return receive(sock, conn)

    streams = {}
    for path in paths:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https" if cafile else "http"),
                                (":path", path), (":authority", authority), ("sec-websocket-version", "13")] + extra)
        streams[sid] = {"path": path, "status": None, "buf": bytearray(), "echo": None, "close": None, "ended": False}
    flood_state = None
    if flood:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https" if cafile else "http"),
                                (":path", flood[0]), (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")])
        flood_state = {"id": sid, "open": False, "sent": 0, "total": flood[1]}
    sock.sendall(conn.data_to_send())

    def push_flood():
        if not flood_state or not flood_state["open"]:
            return
        sid = flood_state["id"]
        if flood_state["sent"] == 0:
            n = flood_state["total"]
            conn.send_data(sid, bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n) + b"\0\0\0\0")
        while flood_state["sent"] < flood_state["total"]:
            room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, flood_state["total"] - flood_state["sent"])
            if room <= 0:
                break
            conn.send_data(sid, b"\x5a" * room)
            flood_state["sent"] += room

    def done():
        return all(s["ended"] or (s["status"] is not None and s["status"] != "200") or s["close"] is not None for s in streams.values())

    while not done():
        for event in pump():
            if flood_state and getattr(event, "stream_id", None) == flood_state["id"]:
                if isinstance(event, h2.events.ResponseReceived):
                    flood_state["open"] = dict(event.headers).get(":status") == "200"
                continue
            stream = streams.get(getattr(event, "stream_id", None))
            if stream is None:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                stream["status"] = dict(event.headers).get(":status")
                if stream["status"] == "200":
                    conn.send_data(event.stream_id, ws_frame(1, f"hello {stream['path']}".encode()))
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                stream["buf"] += event.data
                for op, payload in parse_frames(stream["buf"]):
                    if op in (1, 2) and stream["echo"] is None:
                        stream["echo"] = payload.decode()
                        conn.send_data(event.stream_id, ws_frame(8, struct.pack("!H", 1000)))
                    elif op == 8:
                        stream["close"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                stream["ended"] = True
        push_flood()
        sock.sendall(conn.data_to_send())

    ok = True
    for sid, s in streams.items():
        print(json.dumps({"stream": sid, "path": s["path"], "status": s["status"], "echo": s["echo"], "close": s["close"]}))
        ok = ok and s["status"] is not None
    if flood_state:
        print(json.dumps({"flood": flood[0], "open": flood_state["open"], "sent": flood_state["sent"], "total": flood_state["total"]}))
    print(f"OK {len(streams)}" if ok else "FAIL")
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
