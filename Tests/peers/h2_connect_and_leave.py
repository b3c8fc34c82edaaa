#!/usr/bin/env python3
"""WebSocket streams whose client leaves while their backends are being opened.

    h2_connect_and_leave.py HOST PORT PATH [--connections N] [--seed S]

N times: an h2c connection (prior knowledge; the server's SETTINGS, with ENABLE_CONNECT_PROTOCOL,
acknowledged first) opens 2-20 extended CONNECT streams to PATH in one write, resetting about half
of them in the same write; then, after 0-200 ms, the connection is closed — half the time with a
reset (SO_LINGER 0), half with a FIN. Frames are written by hand (h2raw.py). Prints "left N".
"""
import random
import socket
import struct
import sys
import time

from h2raw import CANCEL, END_HEADERS, HEADERS, RST_STREAM, connect, frame, request_block


def main() -> int:
    args = sys.argv[1:]
    host, port, path = args[0], int(args[1]), args[2]
    options = dict(zip(args[3::2], args[4::2]))
    count, rng = int(options.get("--connections", 100)), random.Random(int(options.get("--seed", 1)))
    block = request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"), (b":path", path.encode()),
                           (b":authority", f"{host}:{port}".encode()), (b"sec-websocket-version", b"13")])
    for _ in range(count):
        sock = connect(host, port)
        out = b""
        for i in range(rng.randint(2, 20)):
            stream = 1 + 2 * i
            out += frame(HEADERS, END_HEADERS, stream, block)
            if rng.random() < 0.5:
                out += frame(RST_STREAM, 0, stream, struct.pack("!I", CANCEL))
        sock.sendall(out)
        time.sleep(rng.random() * 0.2)
        if rng.random() < 0.5:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    print(f"left {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
