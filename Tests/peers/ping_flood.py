#!/usr/bin/env python3
"""A WebSocket client that pings and never reads, over HTTP/1.1 or one HTTP/2 stream.

    ping_flood.py HOST PORT PATH [--h2] [--megabytes N]

Completes the handshake, then sends N MB of masked 125-byte pings as fast as the gateway takes
them, reading nothing more (a small receive buffer, so the gateway's pongs back up at once).
Stops after N MB or 20 s; prints "sent N bytes of pings".
"""
import os
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def ping() -> bytes:
    mask = os.urandom(4)
    payload = os.urandom(125)
    return bytes([0x89, 0x80 | 125]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    over_h2 = "--h2" in args
    megabytes = int(args[args.index("--megabytes") + 1]) if "--megabytes" in args else 64
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.settimeout(10)
    batch = b"".join(ping() for _ in range(400))  # ~52 KB
    total = megabytes << 20
    sent = 0
    deadline = time.monotonic() + 20
    if not over_h2:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        if not head.startswith(b"HTTP/1.1 101"):
            print(f"FAIL {head!r}")
            return 1
        sock.settimeout(2)
        while sent < total and time.monotonic() < deadline:
            try:
                sock.sendall(batch)
            except (socket.timeout, OSError):
                break  # the gateway stopped reading (or closed): that is its answer
            sent += len(batch)
    else:
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        enabled = False
        while not enabled:
            for event in conn.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    enabled = enabled or (setting is not None and setting.new_value == 1)
            sock.sendall(conn.data_to_send())
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", path),
                                (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")])
        sock.sendall(conn.data_to_send())
        status = None
        while status is None:
            for event in conn.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(":status")
            sock.sendall(conn.data_to_send())
        if status != "200":
            print(f"FAIL status {status}")
            return 1
        # Keep sending while the gateway's windows allow; read only what h2 needs to learn of new
        # window (WINDOW_UPDATEs come with the gateway's other frames), never acknowledging DATA.
        sock.settimeout(0.5)
        while sent < total and time.monotonic() < deadline:
            piece = batch[:16000]  # under the default SETTINGS_MAX_FRAME_SIZE
            room = conn.local_flow_control_window(sid)
            if room < len(piece):
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                conn.receive_data(data)  # DATA is taken in but never acknowledged: its window closes
                continue
            conn.send_data(sid, piece)
            try:
                sock.sendall(conn.data_to_send())
            except (socket.timeout, OSError):
                break
            sent += len(piece)
    print(f"sent {sent} bytes of pings")
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
