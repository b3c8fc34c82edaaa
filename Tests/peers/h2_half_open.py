#!/usr/bin/env python3
"""A request whose client side is never ended: HEADERS without END_STREAM, then silence.

    h2_half_open.py HOST PORT PATH [--wait SECONDS]

Over h2c (prior knowledge; frames written by hand), sends one GET for PATH without END_STREAM and
never sends anything else. Reports, as JSON, what the server did within --wait seconds (default
10): the response status, the RST_STREAM code for the stream, whether a GOAWAY came, and whether
the server closed the connection, with the seconds each took.
"""
import json
import socket
import struct
import sys
import time

from hpack import Decoder


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def literal(name: bytes, value: bytes) -> bytes:
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    wait = float(args[args.index("--wait") + 1]) if "--wait" in args else 10.0
    started = time.monotonic()
    sock = socket.create_connection((host, port), timeout=wait)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    block = b"".join(literal(n, v) for n, v in [(b":method", b"GET"), (b":scheme", b"http"), (b":path", path.encode()),
                                                (b":authority", f"{host}:{port}".encode())])
    sock.sendall(frame(1, 0x4, 1, block))  # END_HEADERS, not END_STREAM
    report = {}
    decoder = Decoder()
    buffer = bytearray()
    deadline = started + wait
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            report["closed"] = round(time.monotonic() - started, 2)
            break
        buffer += data
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags, sid = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buffer[9:9 + length])
            del buffer[:9 + length]
            if kind == 4 and not flags & 1:
                sock.sendall(frame(4, 1, 0, b""))
            elif kind == 1 and sid == 1:
                report["status"] = dict(decoder.decode(payload)).get(":status")
            elif kind == 3 and sid == 1:
                report["reset"] = int.from_bytes(payload, "big")
                report["reset_after"] = round(time.monotonic() - started, 2)
            elif kind == 7:
                report["goaway"] = round(time.monotonic() - started, 2)
    print(json.dumps(report))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
