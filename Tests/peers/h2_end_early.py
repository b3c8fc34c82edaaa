#!/usr/bin/env python3
"""A WebSocket over HTTP/2 whose client ends its side before the server has answered.

    h2_end_early.py HOST PORT PATH MESSAGE [--wait SECONDS]

Over one h2c connection (prior knowledge), sends in one write an extended CONNECT, a DATA frame
holding one masked binary WebSocket message MESSAGE, and END_STREAM on that DATA: the server reads
the client's whole side while it is still opening the backend. Then reads until the server ends or
resets the stream, or --wait seconds (default 10) pass. Prints one JSON object: the response status,
whether the server ended the stream ("ended"), its reset code if it reset it, and the seconds taken.
"""
import json
import os
import socket
import struct
import sys
import time

from hpack import Decoder

from h2raw import DATA, END_HEADERS, END_STREAM, HEADERS, RST_STREAM, FrameReader, connect, frame, request_block


def masked_binary(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x82, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main() -> int:
    args = sys.argv[1:]
    host, port, path, message = args[0], int(args[1]), args[2], args[3].encode()
    options = dict(zip(args[4::2], args[5::2]))
    wait = float(options.get("--wait", 10))
    sock = connect(host, port)
    block = request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"), (b":path", path.encode()),
                           (b":authority", f"{host}:{port}".encode()), (b"sec-websocket-version", b"13")])
    started = time.monotonic()
    sock.sendall(frame(HEADERS, END_HEADERS, 1, block) + frame(DATA, END_STREAM, 1, masked_binary(message)))
    result = {"status": None, "ended": False, "reset": None}
    decoder, reader = Decoder(), FrameReader(sock)
    sock.settimeout(0.2)
    while time.monotonic() - started < wait and not result["ended"] and result["reset"] is None:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        reader.feed(data)
        for kind, flags, stream, payload in reader.frames():
            if stream != 1:
                continue
            if kind == HEADERS:
                result["status"] = dict(decoder.decode(payload)).get(":status")
            if kind == RST_STREAM:
                result["reset"] = struct.unpack("!I", payload)[0]
            if kind in (HEADERS, DATA) and flags & END_STREAM:
                result["ended"] = True
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
