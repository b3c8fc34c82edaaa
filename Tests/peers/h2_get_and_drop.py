#!/usr/bin/env python3
"""An HTTP/2 client that starts a download and walks away.

    h2_get_and_drop.py HOST PORT PATH

Opens an h2c connection with a 16 KiB stream window and no WINDOW_UPDATEs, GETs PATH, reads until
the server has filled the window (so the server holds the rest of the body, waiting), then closes
the socket without a word. Prints "DROPPED after N bytes" or "ERROR: why".
"""
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def main(host: str, port: int, path: str) -> int:
    sock = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384})
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384})
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", f"{host}:{port}")], end_stream=True)
    sock.sendall(conn.data_to_send())
    received = 0
    while received < 16384:
        data = sock.recv(65536)
        if not data:
            print(f"ERROR: closed after {received} bytes")
            return 1
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                received += len(event.data)
            elif isinstance(event, h2.events.StreamEnded):
                print(f"ERROR: the whole body arrived ({received} bytes): nothing was held")
                return 1
        sock.sendall(conn.data_to_send())
    sock.close()
    print(f"DROPPED after {received} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
