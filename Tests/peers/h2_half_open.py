#!/usr/bin/env python3
"""One request, then silence: by default its client side is never ended (HEADERS without
END_STREAM); with --end-stream it is a whole request.

    h2_half_open.py HOST PORT PATH [--wait SECONDS] [--end-stream]

Over h2c (prior knowledge; frames written by hand, h2raw.py), sends one GET for PATH and never
sends anything else. Reports, as JSON, what the server did within --wait
seconds (default 10): the response status, the RST_STREAM code for the stream, whether a GOAWAY
came, and whether the server closed the connection, with the seconds each took.
"""
import json
import sys
import time

from hpack import Decoder

from h2raw import END_HEADERS, END_STREAM, GOAWAY, HEADERS, RST_STREAM, FrameReader, connect, frame, request_block


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    wait = float(args[args.index("--wait") + 1]) if "--wait" in args else 10.0
    started = time.monotonic()
    sock = connect(host, port, timeout=wait)
    block = request_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", path.encode()), (b":authority", f"{host}:{port}".encode())])
    sock.sendall(frame(HEADERS, END_HEADERS | (END_STREAM if "--end-stream" in args else 0), 1, block))
    report = {}
    decoder = Decoder()
    reader = FrameReader(sock)
    for kind, _, stream, payload in reader.read_until(started + wait):
        if kind == HEADERS and stream == 1:
            report["status"] = dict(decoder.decode(payload)).get(":status")
        elif kind == RST_STREAM and stream == 1:
            report["reset"] = int.from_bytes(payload, "big")
            report["reset_after"] = round(time.monotonic() - started, 2)
        elif kind == GOAWAY:
            report["goaway"] = round(time.monotonic() - started, 2)
    if reader.closed_at is not None:
        report["closed"] = round(reader.closed_at - started, 2)
    print(json.dumps(report))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
