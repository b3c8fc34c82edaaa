#!/usr/bin/env python3
"""A WebSocket client that pings and never reads.

    ping_flood.py HOST PORT PATH [--megabytes N]

Completes the handshake, then sends N MB of masked 125-byte pings as fast as the gateway takes
them, reading nothing more (a small receive buffer, so the gateway's pongs back up at once).
Stops after N MB or 20 s; prints "sent N bytes of pings".
"""
import os
import socket
import struct
import sys
import time


def ping() -> bytes:
    mask = os.urandom(4)
    payload = os.urandom(125)
    return bytes([0x89, 0x80 | 125]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    megabytes = int(args[args.index("--megabytes") + 1]) if "--megabytes" in args else 64
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.settimeout(10)
    batch = b"".join(ping() for _ in range(400))  # ~52 KB
    total = megabytes << 20
    sent = 0
    deadline = time.monotonic() + 20
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
    print(f"sent {sent} bytes of pings")
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
