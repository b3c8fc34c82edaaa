#!/usr/bin/env python3
"""Latency of shared sessions against ordinary ones, and what one stuck viewer does to it.

    scripts/bench-share.py [--wsgate PATH] [--clients 100] [--seconds 10] [--rate 50] [--line-bytes 1000]

Starts a line service (every connection gets a `t=<monotonic ns>` line of LINE_BYTES at RATE per
second, all at the same moments) and
wsgate (PATH, default the release build if there is one, else the debug build) on loopback with
two routes to it: /plain (one service connection per client) and /shared (`share:`, 256 KiB
queue). Then, for SECONDS each, measures how late the lines arrive (now minus the time in the
line, one clock: everything runs in this process) at:

  1. CLIENTS clients of /plain             (the unshared case: CLIENTS service connections)
  2. CLIENTS clients of one /shared session (1 service connection: an owner and CLIENTS-1 viewers)
  3. as 2, plus one viewer that never reads (it must be dropped, not slow the others down)

and prints p50/p99/max per case, the lines received, the ratios of 3 to 1, and whether the stuck
viewer was dropped. Loopback only; bounded in clients and time.
"""
import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets

KEY = "YmVuY2gtc2hhcmUta2V5LTEyMzQ1Njc4"


WRITERS = set()


async def service(reader, writer):
    """A connection of the line service: the ticker writes to it; it ends when the gateway closes it."""
    WRITERS.add(writer)
    try:
        while await reader.read(65536):
            pass
    finally:
        WRITERS.discard(writer)
        writer.close()


async def ticker(rate, width):
    """One clock for every connection: each gets its line at the same moment, so a client process
    reading many sessions sees the same bursts whether they are shared or not."""
    interval = 1.0 / rate
    while True:
        line = f"t={time.monotonic_ns()} "
        data = (line + "." * max(0, width - len(line)) + "\n").encode()
        for writer in list(WRITERS):
            if writer.transport.get_write_buffer_size() < (1 << 20):  # a stalled connection is skipped, not buffered
                writer.write(data)
        await asyncio.sleep(interval)


def start_wsgate(binary, service_port):
    config = f"""
listeners:
  - address: "127.0.0.1:0"
routes:
  - path: /plain
    backend: "tcp://127.0.0.1:{service_port}"
    framing: lines
    message_type: text
  - path: /shared
    backend: "tcp://127.0.0.1:{service_port}"
    framing: lines
    message_type: text
    share: {{key: query, viewers: read_only, max_viewers: 1000, queue: 256KiB}}
"""
    path = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    path.write(config)
    path.close()
    process = subprocess.Popen([binary, "--config", path.name, "--log-level", "info"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    port = None
    log = []
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        found = re.search(r"address=127\.0\.0\.1:(\d+).*listening|listening.*address=127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1) or found.group(2))
    if port is None:
        process.kill()
        sys.exit("wsgate did not start:\n" + "".join(log))
    os.unlink(path.name)
    # Keep reading its log: a full pipe would stop the gateway at its next line.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, port


async def listen(url, delays, stop, **options):
    async with websockets.connect(url, max_size=None, compression=None, **options) as socket_:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(socket_.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            now = time.monotonic_ns()
            if isinstance(message, str) and message.startswith("t="):
                delays.append((now - int(message[2:].split(" ", 1)[0])) / 1e6)


async def stuck_viewer(port):
    """A viewer that completes its handshake and never reads again (a small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (f"GET /shared?share={KEY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1024)
    return sock


def dropped(sock):
    """Whether the gateway closed the stuck viewer's connection (read what is left, then EOF)."""
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return True
    except (socket.timeout, OSError):
        return False


def summary(name, delays):
    if not delays:
        return f"| {name} | – | – | – | 0 |", None
    ordered = sorted(delays)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"| {name} | {p50:.2f} | {p99:.2f} | {ordered[-1]:.2f} | {len(ordered)} |", (p50, p99)


async def case(port, path, clients, seconds, stuck=False):
    delays, stop = [], asyncio.Event()
    urls = [f"ws://127.0.0.1:{port}{path}" for _ in range(clients)]
    tasks = [asyncio.create_task(listen(urls[0], delays, stop))]
    await asyncio.sleep(0.2)  # the first client of a shared session is its owner
    tasks += [asyncio.create_task(listen(url, delays, stop)) for url in urls[1:]]
    blocked = await stuck_viewer(port) if stuck else None
    await asyncio.sleep(1)  # warm up
    delays.clear()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return delays, blocked


async def main():
    parser = argparse.ArgumentParser()
    release = ".build/release/wsgate"
    parser.add_argument("--wsgate", default=release if os.path.exists(release) else ".build/debug/wsgate")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--line-bytes", type=int, default=1000)
    args = parser.parse_args()
    args.clients = max(2, min(args.clients, 1000))
    args.seconds = max(1, min(args.seconds, 120))

    server = await asyncio.start_server(service, "127.0.0.1", 0)
    clock = asyncio.create_task(ticker(args.rate, args.line_bytes))
    service_port = server.sockets[0].getsockname()[1]
    process, port = start_wsgate(args.wsgate, service_port)
    try:
        plain, _ = await case(port, "/plain", args.clients, args.seconds)
        shared, _ = await case(port, f"/shared?share={KEY}", args.clients, args.seconds)
        with_stuck, blocked = await case(port, f"/shared?share={KEY}", args.clients, args.seconds, stuck=True)
        was_dropped = await asyncio.get_running_loop().run_in_executor(None, dropped, blocked)
    finally:
        process.terminate()
        process.wait(timeout=30)
        clock.cancel()
        server.close()
    print(f"wsgate {args.wsgate}: {args.clients} clients, {args.rate:g} lines/s of {args.line_bytes} bytes per session, {args.seconds:g} s per case\n")
    print("| case | p50 ms | p99 ms | max ms | lines |")
    print("|---|---|---|---|---|")
    rows = [summary(f"{args.clients} clients, each its own session", plain), summary(f"{args.clients} clients sharing one session", shared),
            summary(f"{args.clients} sharing + 1 stuck viewer", with_stuck)]
    for row, _ in rows:
        print(row)
    base, stuck = rows[0][1], rows[2][1]
    if base and stuck:
        print(f"\nstuck-viewer case / unshared case: p50 {stuck[0] / base[0]:.2f}x, p99 {stuck[1] / base[1]:.2f}x")
    print(f"stuck viewer dropped: {'yes' if was_dropped else 'NO'}")
    return 0 if was_dropped and base and stuck else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
