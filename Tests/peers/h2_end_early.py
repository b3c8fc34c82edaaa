#!/usr/bin/env python3
"""A WebSocket over HTTP/2 whose client ends its side (END_STREAM) after one message.

    h2_end_early.py HOST PORT PATH MESSAGE [--wait SECONDS] [--after-open]

Over one h2c connection (prior knowledge), sends an extended CONNECT and a DATA frame holding one
masked binary WebSocket message MESSAGE, with END_STREAM on that DATA. By default all in one write,
so the server reads the client's whole side while it is still opening the backend; with
--after-open, the DATA goes once the server's 200 has arrived. Then reads until the server ends or
resets the stream, or --wait seconds (default 10) pass. Prints one JSON object: the response
status, whether the server ended the stream ("ended"), its reset code if it reset it, and the
seconds taken.
"""
import json
import os
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
    wait = float(args[args.index("--wait") + 1]) if "--wait" in args else 10.0
    after_open = "--after-open" in args
    sock = connect(host, port)
    block = request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"), (b":path", path.encode()),
                           (b":authority", f"{host}:{port}".encode()), (b"sec-websocket-version", b"13")])
    started = time.monotonic()
    request = frame(HEADERS, END_HEADERS, 1, block)
    last = frame(DATA, END_STREAM, 1, masked_binary(message))
    sock.sendall(request if after_open else request + last)
    result = {"status": None, "ended": False, "reset": None}
    decoder, reader = Decoder(), FrameReader(sock)
    for kind, flags, stream, payload in reader.read_until(started + wait):
        if stream != 1:
            continue
        if kind == HEADERS:
            result["status"] = dict(decoder.decode(payload)).get(":status")
            if after_open and result["status"] == "200":
                sock.sendall(last)
        if kind == RST_STREAM:
            result["reset"] = struct.unpack("!I", payload)[0]
        if kind in (HEADERS, DATA) and flags & END_STREAM:
            result["ended"] = True
        if result["ended"] or result["reset"] is not None:
            break
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
