#!/usr/bin/env python3
"""One WebSocket over HTTP/2 (RFC 8441, Python `h2`) that reads some lines and then vanishes.

    h2_resume.py HOST PORT PATH SEND UNTIL

Opens an h2c connection, an extended CONNECT stream to PATH, sends SEND as a text message (unless
it is empty), reads text messages until one is "line UNTIL" (or a close), then drops the TCP
connection without a close frame, RST_STREAM or GOAWAY: what a client whose network went away
looks like to the gateway. Prints "LINES: <json list of the numbers read>" and, if the stream was
closed, "CLOSE: <code>".
"""
import json
import socket
import sys

import h2.events

from h2_websocket import parse_frames, receive, start_connection, ws_frame


def main() -> int:
    host, port, path, send, until = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    sock = socket.create_connection((host, port), timeout=20)
    conn = start_connection(sock)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", path),
                            (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")])
    sock.sendall(conn.data_to_send())
    numbers, buf, close, done = [], bytearray(), None, False
    while not done:
        for event in receive(sock, conn):
            if getattr(event, "stream_id", None) != sid:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(":status")
                if status != "200":
                    print(f"STATUS: {status}")
                    return 1
                if send:
                    conn.send_data(sid, ws_frame(1, send.encode()))
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
                buf += event.data
                for op, payload in parse_frames(buf):
                    if op == 1:
                        numbers.append(int(payload.decode().split()[1]))
                        done = done or numbers[-1] == until
                    elif op == 8:
                        close = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                        done = True
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    print("LINES: " + json.dumps(numbers), flush=True)
    if close is not None:
        print(f"CLOSE: {close}", flush=True)
    sock.close()  # no close frame, no RST_STREAM, no GOAWAY
    return 0


if __name__ == "__main__":
    sys.exit(main())
