#!/usr/bin/env python3
"""Rapid reset of WebSocket streams: extended CONNECTs cancelled as soon as they are sent.

    h2_connect_reset.py HOST PORT PATH [--streams N] [--mode same-write|after-read] [--delay SECONDS]

Over one h2c connection (prior knowledge; the server's SETTINGS, with ENABLE_CONNECT_PROTOCOL,
acknowledged first), opens N extended CONNECT streams to PATH and resets each (RST_STREAM CANCEL):
`same-write` puts each HEADERS and its RST_STREAM in one write; `after-read` sends the HEADERS,
waits 2 ms (--delay) so the server reads it alone, then resets. Frames are written by hand (h2raw.py).
Prints "sent N" and the count of responses by status.
"""
import json
import socket
import struct
import sys
import time
from collections import Counter

from hpack import Decoder

from h2raw import CANCEL, END_HEADERS, HEADERS, RST_STREAM, FrameReader, connect, frame, request_block


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    options = dict(zip(args[3::2], args[4::2]))
    count, mode = int(options.get("--streams", 300)), options.get("--mode", "same-write")
    delay = float(options.get("--delay", 0.002))
    sock = connect(host, port)
    block = request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"), (b":path", path.encode()),
                           (b":authority", f"{host}:{port}".encode()), (b"sec-websocket-version", b"13")])
    for i in range(count):
        stream = 1 + 2 * i
        headers, reset = frame(HEADERS, END_HEADERS, stream, block), frame(RST_STREAM, 0, stream, struct.pack("!I", CANCEL))
        if mode == "same-write":
            sock.sendall(headers + reset)
        else:
            sock.sendall(headers)
            time.sleep(delay)
            sock.sendall(reset)
    # Whatever the server answered before it saw the resets.
    statuses = Counter()
    decoder = Decoder()
    reader = FrameReader(sock)
    sock.settimeout(1)
    try:
        while data := sock.recv(65536):
            reader.feed(data)
            for kind, _, _, payload in reader.frames():
                if kind == HEADERS:
                    statuses[dict(decoder.decode(payload)).get(":status")] += 1
    except socket.timeout:
        pass
    print(f"sent {count}")
    print(json.dumps(statuses))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
