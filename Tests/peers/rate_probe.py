#!/usr/bin/env python3
"""Floods a rate-limited route and measures what reaches its backend, all in this one process so
the timing does not depend on the test process (which stalls under load).

    rate_probe.py (--h1 | --h2) HOST PORT PATH --backend UNIX_SOCKET [--rate N] [--size BYTES]
                  [--seconds S] [--pid GATEWAY_PID] [--leave WAIT]

Listens on UNIX_SOCKET as the route's backend (a `unix:` route), then opens one WebSocket to the
gateway — HTTP/1.1, or an RFC 8441 stream over h2c prior knowledge — and offers N binary messages a
second of BYTES bytes each for S seconds, never queueing more than 64 KiB of its own: when the
gateway stops reading, the kernel's buffers fill and the offer goes unsent. Each message carries
its sequence number; the backend checks that every one arrives whole and in order.

Prints one JSON object: sent, received, in_order (bool), and the steady rates seen by the backend
— messages_per_second and bytes_per_second — counted over a window from 1.5 s after the first
arrival to 1.5 s before the flood ends (the first second's burst left out). With --pid, also the
gateway's resident set at 1 s into the flood and at its end (rss_start, rss_end, in bytes).
With --leave, the client then closes its socket with its buffers still full and the probe waits
up to WAIT seconds for the gateway to close the backend connection: backend_closed_after is the
time from the client's close to the backend's end of stream (null if it did not come).
"""
import json
import os
import select
import socket
import struct
import sys
import threading
import time

import h2.events

from h2_websocket import start_connection

OUTGOING_LIMIT = 64 * 1024


def masked_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x82, 0x80 | n])
    elif n < 65536:
        header = bytes([0x82, 0x80 | 126]) + struct.pack("!H", n)
    else:
        header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return header + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def message(seq: int, size: int) -> bytes:
    return struct.pack("!Q", seq) + bytes([seq & 0xFF]) * (size - 8)


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Backend(threading.Thread):
    """The route's backend: reads the gateway's bytes as messages of `size` and notes when each came."""

    def __init__(self, path: str, size: int):
        super().__init__(daemon=True)
        self.size = size
        self.arrivals = []
        self.in_order = True
        self.ended = threading.Event()
        self.ended_at = None
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)

    def run(self):
        conn, _ = self.server.accept()
        pending = bytearray()
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                self.ended_at = time.monotonic()
                self.ended.set()
                return
            now = time.monotonic()
            pending += data
            while len(pending) >= self.size:
                record = bytes(pending[:self.size])
                del pending[:self.size]
                seq = struct.unpack("!Q", record[:8])[0]
                if seq != len(self.arrivals) or record != message(seq, self.size):
                    self.in_order = False
                self.arrivals.append(now)


class Offer:
    """What is due: `rate` messages a second from `started`, of which `made` were framed."""

    def __init__(self, rate: int, size: int):
        self.rate, self.size = rate, size
        self.started = time.monotonic()
        self.made = 0

    def due(self) -> int:
        return int((time.monotonic() - self.started) * self.rate) - self.made

    def frame_into(self, outgoing: bytearray):
        """Frames what is due (1,000 at most per call), while the client's own queue has room."""
        for _ in range(min(self.due(), 1000)):
            if len(outgoing) >= OUTGOING_LIMIT:
                return
            outgoing += masked_frame(message(self.made, self.size))
            self.made += 1


def flood_http1(host, port, path, offer, until):
    sock = socket.create_connection((host, port), timeout=10)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode())
    sock.setblocking(False)
    outgoing = bytearray()
    offer.started = time.monotonic()
    while time.monotonic() < until:
        offer.frame_into(outgoing)
        if outgoing:
            try:
                sent = sock.send(outgoing)
                del outgoing[:sent]
            except BlockingIOError:
                pass
        select.select([], [sock] if outgoing else [], [], 0.002)
    return sock


def flood_http2(host, port, path, offer, until):
    sock = socket.create_connection((host, port), timeout=10)
    conn = start_connection(sock)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                            (":path", path), (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")])
    sock.sendall(conn.data_to_send())
    status = None
    while status is None:
        for event in conn.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
                status = dict(event.headers).get(":status")
        sock.sendall(conn.data_to_send())
    if status != "200":
        raise ConnectionError(f"status {status}")
    sock.setblocking(False)
    outgoing = bytearray()
    offer.started = time.monotonic()
    while time.monotonic() < until:
        offer.frame_into(outgoing)
        # DATA only as far as the stream's and connection's windows let it (the gateway holds back
        # its WINDOW_UPDATEs while the session is throttled).
        room = min(conn.local_flow_control_window(sid), len(outgoing))
        while room > 0:
            chunk = min(room, conn.max_outbound_frame_size)
            conn.send_data(sid, bytes(outgoing[:chunk]))
            del outgoing[:chunk]
            room -= chunk
        data = conn.data_to_send()
        if data:
            sock.setblocking(True)
            sock.sendall(data)
            sock.setblocking(False)
        readable, _, _ = select.select([sock], [], [], 0.002)
        if readable:
            received = sock.recv(65536)
            if not received:
                raise ConnectionError("connection closed")
            conn.receive_data(received)
    return sock


def steady_rates(arrivals, size, flood_end):
    if not arrivals:
        return 0.0, 0.0, 0.0
    start = arrivals[0] + 1.5
    end = flood_end - 1.5
    window = end - start
    if window <= 0:
        return 0.0, 0.0, window
    count = sum(1 for t in arrivals if start <= t < end)
    return count / window, count * size / window, window


def main() -> int:
    args = sys.argv[1:]
    mode, host, port, path = args[0], args[1], int(args[2]), args[3]
    options = dict(zip(args[4::2], args[5::2]))
    rate = int(options.get("--rate", "10000"))
    size = int(options.get("--size", "1024"))
    seconds = float(options.get("--seconds", "8"))
    pid = int(options["--pid"]) if "--pid" in options else None
    backend = Backend(options["--backend"], size)
    backend.start()
    offer = Offer(rate, size)
    result = {}
    rss = {}

    def sample_rss(key, delay):
        time.sleep(delay)
        rss[key] = resident_bytes(pid)
    if pid is not None:
        threading.Thread(target=sample_rss, args=("rss_start", 1.0), daemon=True).start()
    flood = flood_http1 if mode == "--h1" else flood_http2
    until = time.monotonic() + seconds
    sock = flood(host, port, path, offer, until)
    flood_end = time.monotonic()
    if pid is not None:
        rss["rss_end"] = resident_bytes(pid)
    messages_rate, bytes_rate, window = steady_rates(list(backend.arrivals), size, flood_end)
    result.update({"sent": offer.made, "received": len(backend.arrivals), "in_order": backend.in_order,
                   "messages_per_second": round(messages_rate, 2), "bytes_per_second": round(bytes_rate),
                   "window": round(window, 3)})
    result.update(rss)
    left = time.monotonic()
    sock.close()
    if "--leave" in options:
        backend.ended.wait(float(options["--leave"]))
        result["backend_closed_after"] = None if backend.ended_at is None else round(backend.ended_at - left, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
